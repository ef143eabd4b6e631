package discover

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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

// stat reads /proc/PID/stat; errVanished when the process is gone or a zombie.
func (r procReader) stat(pid int) (procfs.ProcStat, error) {
	proc, err := r.fs.Proc(pid)
	if err != nil {
		if isGone(err) {
			return procfs.ProcStat{}, errVanished
		}
		return procfs.ProcStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, err := proc.Stat()
	if err != nil {
		if isGone(err) {
			return procfs.ProcStat{}, errVanished
		}
		return procfs.ProcStat{}, fmt.Errorf("read %s: %w", filepath.Join(r.root, strconv.Itoa(pid), "stat"), err)
	}
	if st.State == "Z" || st.State == "X" {
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
	p := &Process{PID: pid, StartTime: st.Starttime, procRoot: r.root}
	if st.Flags&pfKthread != 0 {
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
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return lines, nil
}
