package symbolize

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
)

// Process symbolizes runtime addresses of a running process. It maps them
// to file addresses through the process's mappings of its executable, which
// differ for position-independent executables.
type Process struct {
	pid  int
	bin  *Binary
	maps []mapping
}

// mapping is one mapping of the executable file.
type mapping struct {
	start, end, off uint64
}

// OpenProcess opens the executable of process pid through /proc/PID/exe,
// from c when c is not nil, and reads its mappings from /proc/PID/maps.
func OpenProcess(pid int, c *Cache) (*Process, error) {
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	var b *Binary
	var err error
	if c != nil {
		b, err = c.Binary(exe)
	} else {
		b, err = Open(exe, Options{})
	}
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	st, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("process %d: stat %s: no inode", pid, exe)
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	proc, err := fs.Proc(pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	pm, err := proc.ProcMaps()
	if err != nil {
		return nil, fmt.Errorf("process %d: read maps: %w", pid, err)
	}
	p := &Process{pid: pid, bin: b}
	// Match by device and inode, not by path: the path in maps is relative
	// to the process's mount namespace. Overlay file systems report another
	// device in maps than stat does, so fall back to the inode alone.
	for _, sameDev := range []bool{true, false} {
		for _, m := range pm {
			if m.Inode == sys.Ino && m.Offset >= 0 && (!sameDev || m.Dev == uint64(sys.Dev)) {
				p.maps = append(p.maps, mapping{start: uint64(m.StartAddr), end: uint64(m.EndAddr), off: uint64(m.Offset)})
			}
		}
		if len(p.maps) > 0 {
			break
		}
	}
	if len(p.maps) == 0 {
		return nil, fmt.Errorf("process %d: executable (inode %d) not found in /proc/%d/maps", pid, sys.Ino, pid)
	}
	return p, nil
}

// PID returns the process ID.
func (p *Process) PID() int { return p.pid }

// Binary returns the process's executable.
func (p *Process) Binary() *Binary { return p.bin }

// FileAddr converts a runtime address of the process to a file (link-time)
// address of its executable.
func (p *Process) FileAddr(runtimeAddr uint64) (uint64, bool) {
	for _, m := range p.maps {
		if runtimeAddr >= m.start && runtimeAddr < m.end {
			return p.bin.im.vaddrOf(runtimeAddr - m.start + m.off)
		}
	}
	return 0, false
}

// RuntimeAddr converts a file address to the process's runtime address.
func (p *Process) RuntimeAddr(fileAddr uint64) (uint64, bool) {
	off, ok := p.bin.im.fileOffset(fileAddr)
	if !ok {
		return 0, false
	}
	for _, m := range p.maps {
		if off >= m.off && off-m.off < m.end-m.start {
			return m.start + off - m.off, true
		}
	}
	return 0, false
}

// Lookup symbolizes a runtime address of the process; see Binary.Lookup.
func (p *Process) Lookup(runtimeAddr uint64, isReturn bool) ([]Frame, error) {
	a := runtimeAddr
	if isReturn {
		a-- // convert the address that is looked up, not the return address
	}
	fa, ok := p.FileAddr(a)
	if !ok {
		return nil, fmt.Errorf("process %d: %#x not in its executable's mappings: %w", p.pid, runtimeAddr, ErrNoFunc)
	}
	return p.bin.Lookup(fa, false)
}
