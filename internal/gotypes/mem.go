package gotypes

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// errBadAddr reports a read outside the file-backed part of every PT_LOAD
// segment. It is an internal sentinel: callers wrap it with what they were
// decoding.
var errBadAddr = errors.New("address not backed by the file")

// chunkSize is the granularity of the read cache. Type data is scattered
// over a few MB of .rodata/.data.rel.ro; caching whole segments would make
// Open pay for the text segment, per-read syscalls would make the type walk
// slow.
const chunkSize = 64 << 10

// maxRead bounds any single read so that a corrupt length can never make us
// allocate or copy much.
const maxRead = 1 << 20

type segment struct {
	vaddr, filesz, off uint64
}

// memory is a read-only view of the file's loaded image at link-time virtual
// addresses, with pointers fixed up by the dynamic relocations that the
// loader would apply (PIE and externally linked binaries keep the pointer
// value in RELA addends, the file bytes are zero there).
type memory struct {
	r      io.ReaderAt
	order  binary.ByteOrder
	segs   []segment
	chunks map[uint64][]byte // key: file offset of the chunk

	relOff []uint64 // sorted relocation sites
	relVal []uint64 // link-time pointer value stored at relOff[i]
}

func newMemory(f *elf.File, r io.ReaderAt) (*memory, error) {
	m := &memory{r: r, order: f.ByteOrder, chunks: make(map[uint64][]byte)}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz > 0 {
			m.segs = append(m.segs, segment{vaddr: p.Vaddr, filesz: p.Filesz, off: p.Off})
		}
	}
	if len(m.segs) == 0 {
		// No program headers (unusual, e.g. a relocatable object): fall back
		// to the allocated sections.
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS && s.Size > 0 {
				m.segs = append(m.segs, segment{vaddr: s.Addr, filesz: s.Size, off: s.Offset})
			}
		}
	}
	if len(m.segs) == 0 {
		return nil, errors.New("no loadable segments")
	}
	if err := m.loadRelocs(f); err != nil {
		return nil, err
	}
	return m, nil
}

// loadRelocs records the value every RELATIVE/ABS64 dynamic relocation
// stores. RELR and REL relocations keep the addend in the file bytes, so
// plain reads already give the link-time value for them.
func (m *memory) loadRelocs(f *elf.File) error {
	var relative, abs64 uint32
	switch f.Machine {
	case elf.EM_X86_64:
		relative, abs64 = uint32(elf.R_X86_64_RELATIVE), uint32(elf.R_X86_64_64)
	case elf.EM_AARCH64:
		relative, abs64 = uint32(elf.R_AARCH64_RELATIVE), uint32(elf.R_AARCH64_ABS64)
	default:
		return nil
	}
	if f.Class != elf.ELFCLASS64 {
		return nil
	}
	var tables [][]byte
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return fmt.Errorf("read %s: %w", s.Name, err)
		}
		tables = append(tables, data)
	}
	if len(f.Sections) == 0 {
		// Section headers stripped (sstrip): the dynamic table still
		// tells the loader where the relocations are.
		data, err := m.dynRela(f)
		if err != nil {
			return err
		}
		tables = append(tables, data)
	}
	var syms []elf.Symbol
	symsLoaded := false
	for _, data := range tables {
		for i := 0; i+24 <= len(data); i += 24 {
			off := m.order.Uint64(data[i:])
			info := m.order.Uint64(data[i+8:])
			addend := m.order.Uint64(data[i+16:])
			typ, sym := uint32(info), info>>32
			switch typ {
			case relative:
				m.relOff = append(m.relOff, off)
				m.relVal = append(m.relVal, addend)
			case abs64:
				if !symsLoaded {
					syms, _ = f.DynamicSymbols()
					symsLoaded = true
				}
				// DynamicSymbols drops the null symbol 0.
				if sym == 0 || sym > uint64(len(syms)) {
					continue
				}
				m.relOff = append(m.relOff, off)
				m.relVal = append(m.relVal, syms[sym-1].Value+addend)
			}
		}
	}
	if !slices.IsSorted(m.relOff) {
		idx := make([]int, len(m.relOff))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return m.relOff[idx[a]] < m.relOff[idx[b]] })
		off := make([]uint64, len(idx))
		val := make([]uint64, len(idx))
		for i, j := range idx {
			off[i], val[i] = m.relOff[j], m.relVal[j]
		}
		m.relOff, m.relVal = off, val
	}
	return nil
}

// maxRela bounds the relocation table read through the dynamic section.
const maxRela = 256 << 20

// dynRela reads the DT_RELA table of a file without section headers,
// found through PT_DYNAMIC (elf.File.DynValue needs section headers).
func (m *memory) dynRela(f *elf.File) ([]byte, error) {
	var rela, relasz uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_DYNAMIC {
			continue
		}
		if p.Filesz > maxRela {
			return nil, fmt.Errorf("PT_DYNAMIC of %d bytes: too large", p.Filesz)
		}
		d := make([]byte, p.Filesz)
		if _, err := m.r.ReadAt(d, int64(p.Off)); err != nil {
			return nil, fmt.Errorf("read PT_DYNAMIC: %w", err)
		}
		for i := 0; i+16 <= len(d); i += 16 {
			tag, val := elf.DynTag(m.order.Uint64(d[i:])), m.order.Uint64(d[i+8:])
			switch tag {
			case elf.DT_NULL:
				i = len(d)
			case elf.DT_RELA:
				rela = val
			case elf.DT_RELASZ:
				relasz = val
			}
		}
	}
	if rela == 0 || relasz == 0 {
		return nil, nil // static binary
	}
	if relasz > maxRela {
		return nil, fmt.Errorf("DT_RELASZ %d: too large", relasz)
	}
	off, ok := m.fileOff(rela, relasz)
	if !ok {
		return nil, fmt.Errorf("DT_RELA %#x+%d: %w", rela, relasz, errBadAddr)
	}
	data := make([]byte, relasz)
	if _, err := m.r.ReadAt(data, int64(off)); err != nil {
		return nil, fmt.Errorf("read DT_RELA: %w", err)
	}
	return data, nil
}

// fileOff maps a virtual address range to a file offset.
func (m *memory) fileOff(addr, n uint64) (uint64, bool) {
	for _, s := range m.segs {
		if addr >= s.vaddr && addr-s.vaddr < s.filesz && n <= s.filesz-(addr-s.vaddr) {
			return s.off + (addr - s.vaddr), true
		}
	}
	return 0, false
}

func (m *memory) chunk(key uint64) ([]byte, error) {
	if c, ok := m.chunks[key]; ok {
		return c, nil
	}
	c := make([]byte, chunkSize)
	n, err := m.r.ReadAt(c, int64(key))
	if n == 0 && err != nil {
		return nil, err
	}
	c = c[:n]
	m.chunks[key] = c
	return c, nil
}

// bytes returns n bytes at addr. The result may alias the cache: callers must
// not modify it.
func (m *memory) bytes(addr, n uint64) ([]byte, error) {
	if n > maxRead {
		return nil, fmt.Errorf("read of %d bytes at %#x: too large", n, addr)
	}
	off, ok := m.fileOff(addr, n)
	if !ok || off > 1<<62 {
		return nil, fmt.Errorf("%#x+%d: %w", addr, n, errBadAddr)
	}
	if n == 0 {
		return nil, nil
	}
	key := off &^ (chunkSize - 1)
	c, err := m.chunk(key)
	if err != nil {
		return nil, fmt.Errorf("read at file offset %#x: %w", off, err)
	}
	in := off - key
	if in+n <= uint64(len(c)) {
		return c[in : in+n], nil
	}
	out := make([]byte, 0, n)
	for uint64(len(out)) < n {
		if in >= uint64(len(c)) {
			return nil, fmt.Errorf("read at file offset %#x: %w", off, io.ErrUnexpectedEOF)
		}
		take := min(n-uint64(len(out)), uint64(len(c))-in)
		out = append(out, c[in:in+take]...)
		key += chunkSize
		in = 0
		if uint64(len(out)) < n {
			if c, err = m.chunk(key); err != nil {
				return nil, fmt.Errorf("read at file offset %#x: %w", key, err)
			}
		}
	}
	return out, nil
}

func (m *memory) u8(addr uint64) (uint8, error) {
	b, err := m.bytes(addr, 1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (m *memory) u16(addr uint64) (uint16, error) {
	b, err := m.bytes(addr, 2)
	if err != nil {
		return 0, err
	}
	return m.order.Uint16(b), nil
}

func (m *memory) u32(addr uint64) (uint32, error) {
	b, err := m.bytes(addr, 4)
	if err != nil {
		return 0, err
	}
	return m.order.Uint32(b), nil
}

func (m *memory) u64(addr uint64) (uint64, error) {
	b, err := m.bytes(addr, 8)
	if err != nil {
		return 0, err
	}
	return m.order.Uint64(b), nil
}

// ptr reads a pointer-sized word as the loader would leave it at link-time
// addresses: the relocation's value when one targets addr, else the file
// bytes.
func (m *memory) ptr(addr uint64) (uint64, error) {
	if i, ok := slices.BinarySearch(m.relOff, addr); ok {
		return m.relVal[i], nil
	}
	return m.u64(addr)
}

// relocsTo returns the sites of relocations whose value is v.
func (m *memory) relocsTo(v uint64) []uint64 {
	var out []uint64
	for i, x := range m.relVal {
		if x == v {
			out = append(out, m.relOff[i])
		}
	}
	return out
}
