package gotypes

import (
	"fmt"
)

// DataRefs returns the addresses of the pointer-sized words of the binary's
// .data section that hold addr once the binary is loaded: the statically
// initialized variables that point at addr, a type descriptor for one (the
// type word of an interface field). In PIE binaries those words are dynamic
// relocations; otherwise their values are in the file.
func (b *Binary) DataRefs(addr uint64) ([]uint64, error) {
	sec := b.f.Section(".data")
	if sec == nil {
		return nil, fmt.Errorf("data references to %#x: no .data section", addr)
	}
	lo, hi := sec.Addr, sec.Addr+sec.Size
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	relocated := false
	for i, site := range b.m.relOff {
		if site < lo || site+8 > hi {
			continue
		}
		relocated = true
		if b.m.relVal[i] == addr {
			out = append(out, site)
		}
	}
	if relocated || sec.Size == 0 {
		return out, nil
	}
	const maxData = 256 << 20
	if sec.Size > maxData {
		return nil, fmt.Errorf("data references to %#x: .data of %d bytes", addr, sec.Size)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("data references to %#x: %w", addr, err)
	}
	for off := (8 - lo%8) % 8; off+8 <= uint64(len(data)); off += 8 {
		if b.m.order.Uint64(data[off:]) == addr {
			out = append(out, lo+off)
		}
	}
	return out, nil
}
