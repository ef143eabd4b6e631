package probes

import (
	"debug/elf"
	"errors"
	"os"
	"syscall"
)

type segment struct{ off, vaddr uint64 }

// execSegments returns the file offset and virtual address of each
// executable PT_LOAD segment of f.
func execSegments(f *elf.File) ([]segment, error) {
	var out []segment
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			out = append(out, segment{off: p.Off, vaddr: p.Vaddr})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no executable segment")
	}
	return out, nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
