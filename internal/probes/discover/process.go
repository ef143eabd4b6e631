package discover

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/procfs"
)

// pfKthread is PF_KTHREAD from include/linux/sched.h, the task flag of
// kernel threads (field 9 of /proc/PID/stat).
const pfKthread = 0x00200000

var (
	// errVanished: the process exited (or became a zombie) before we read it.
	errVanished = errors.New("process vanished")
	// errKernelThread: a kernel thread, which has no executable to probe.
	errKernelThread = errors.New("kernel thread")
)

// procReader reads candidate processes from a procfs mount.
type procReader struct {
	root string
	fs   procfs.FS
}

func newProcReader(root string) (procReader, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return procReader{}, fmt.Errorf("open procfs at %s: %w", root, err)
	}
	return procReader{root: root, fs: pfs}, nil
}

// isGone reports whether err means the process no longer exists.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// procStat holds the fields of /proc/PID/stat discovery needs.
type procStat struct {
	state     byte   // field 3: R, S, D, Z, X, ...
	flags     uint64 // field 9: PF_* task flags
	startTime uint64 // field 22: start time in clock ticks since boot
}

var errBadStat = errors.New("malformed stat")

// parseStat parses the contents of /proc/PID/stat. It is written here rather
// than taken from procfs.Proc.Stat for two reasons: that parser panics when a
// ')' precedes the '(' (found by FuzzProcReader), and it scans all 52 fields
// with fmt.Fscan where the rescan needs three of them for every process.
func parseStat(data []byte) (procStat, error) {
	// comm (field 2) may hold spaces and parentheses: it ends at the last ')'.
	l, r := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if l < 0 || r < l {
		return procStat{}, fmt.Errorf("%w: no (comm)", errBadStat)
	}
	f := bytes.Fields(data[r+1:]) // f[0] is field 3
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("%w: %d fields after comm, want at least 20", errBadStat, len(f))
	}
	if len(f[0]) != 1 || !isLetter(f[0][0]) {
		return procStat{}, fmt.Errorf("%w: state %q", errBadStat, f[0])
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("%w: flags: %w", errBadStat, err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("%w: starttime: %w", errBadStat, err)
	}
	return procStat{state: f[0][0], flags: flags, startTime: start}, nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// stat reads /proc/PID/stat; errVanished when the process is gone or a zombie.
func (r procReader) stat(pid int) (procStat, error) {
	path := filepath.Join(r.root, strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(path)
	if err != nil {
		if isGone(err) {
			return procStat{}, errVanished
		}
		return procStat{}, fmt.Errorf("read %s: %w", path, err)
	}
	st, err := parseStat(data)
	if err != nil {
		return procStat{}, fmt.Errorf("read %s: %w", path, err)
	}
	if st.state == 'Z' || st.state == 'X' {
		return st, errVanished
	}
	return st, nil
}

// read builds the Process for pid. It returns errVanished when the process
// is gone; for kernel threads errKernelThread and for other failures after
// the stat the error with a Process holding only PID and StartTime.
func (r procReader) read(pid int) (*Process, error) {
	st, err := r.stat(pid)
	if err != nil {
		return nil, err
	}
	p := &Process{PID: pid, StartTime: st.startTime, procRoot: r.root}
	if st.flags&pfKthread != 0 {
		return p, errKernelThread
	}
	proc, err := r.fs.Proc(pid)
	if err != nil {
		return nil, errVanished
	}
	// procfs maps ENOENT to "": the process exited after its stat was read
	// (kernel threads were handled above).
	exe, err := proc.Executable()
	switch {
	case err != nil && isGone(err):
		return nil, errVanished
	case err != nil:
		return p, fmt.Errorf("read %s: %w", p.BinaryPath(), err)
	case exe == "":
		return nil, errVanished
	}
	p.Exe = exe
	env := &envCache{}
	p.env = env
	p.Environ = func() ([]string, error) {
		return env.get(func() ([]string, error) {
			e, err := proc.Environ()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", filepath.Join(r.root, strconv.Itoa(pid), "environ"), err)
			}
			return e, nil
		})
	}
	p.CgroupPaths = sync.OnceValues(func() ([]string, error) {
		return readLines(filepath.Join(r.root, strconv.Itoa(pid), "cgroup"))
	})
	return p, nil
}

// envCache reads the environment once and remembers whether it was read
// and empty, which the Watcher uses to retry right after an exec.
type envCache struct {
	mu   sync.Mutex
	done bool
	env  []string
	err  error
}

func (c *envCache) get(read func() ([]string, error)) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.env, c.err = read()
		c.done = true
	}
	return c.env, c.err
}

// unreadable returns the error of a read that failed for another reason
// than the process being gone, e.g. a missing CAP_SYS_PTRACE.
func (c *envCache) unreadable() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil && !isGone(c.err) {
		return c.err
	}
	return nil
}

// emptyAfterRead reports whether the environment was read and was empty
// without error.
func (c *envCache) emptyAfterRead() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done && c.err == nil && len(c.env) == 0
}

// readLines returns the non-empty lines of a small procfs file. It reads
// directly rather than through procfs.Proc.Cgroups because the contract of
// Process.CgroupPaths is the raw lines, which procfs would parse and drop.
func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var lines []string
	for l := range strings.Lines(string(data)) {
		if l = strings.TrimRight(l, "\n"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
