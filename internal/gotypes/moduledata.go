package gotypes

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// mdLayout gives the byte offsets of the runtime.moduledata fields we read.
// The struct is defined in runtime/symtab.go and written by
// cmd/link/internal/ld/symtab.go. Until Go 1.26 fields were only inserted;
// Go 1.27 also removed the typelinks and itablinks slices. The layouts are
// told apart by the data (see readModuledata), the Go version only orders
// the tries.
type mdLayout struct {
	name                 string
	minMinor             int // first Go 1.x minor version using it
	text, etext          int
	types, etypes        int
	textsectmap          int
	typelinks, itablinks int // slices, Go 1.18-1.26; 0 when absent
	// Go 1.27+: typelink descriptors lie between types+ptrSize and
	// types+typedesclen, itabs between types+itaboffset and that plus
	// itabsize, each walked by its own size. 0 when absent.
	typedesclen, itaboffset, itabsize int
}

var mdLayouts = []mdLayout{
	// Go 1.27 inserted typedesclen after types and itaboffset/itabsize
	// after etypes, and dropped typelinks and itablinks.
	{name: "go1.27", minMinor: 27, text: 176, etext: 184, types: 296, typedesclen: 304, etypes: 312,
		itaboffset: 320, itabsize: 328, textsectmap: 360},
	// Go 1.26 added epclntab after gofunc.
	{name: "go1.26", minMinor: 26, text: 176, etext: 184, types: 296, etypes: 304, textsectmap: 336, typelinks: 360, itablinks: 384},
	// Go 1.20 added covctrs/ecovctrs before end.
	{name: "go1.20", minMinor: 20, text: 176, etext: 184, types: 296, etypes: 304, textsectmap: 328, typelinks: 352, itablinks: 376},
	// Go 1.18 added rodata and gofunc after etypes.
	{name: "go1.18", minMinor: 18, text: 176, etext: 184, types: 280, etypes: 288, textsectmap: 312, typelinks: 336, itablinks: 360},
}

// newestMinor is the newest Go 1.x release whose layouts this package
// knows. Binaries of newer releases are read only when a known layout fits
// them in every check, the walks of typelink descriptors and itabs
// included; otherwise errors name their version.
const newestMinor = 27

// moduledata holds the fields of runtime.firstmoduledata this package uses.
type moduledata struct {
	addr          uint64
	layout        string
	pclntab       uint64
	text, etext   uint64
	types, etypes uint64
	typelinks     slice // Go 1.18-1.26
	itablinks     slice // Go 1.18-1.26
	// Go 1.27+ (contiguous is set): offsets from types.
	contiguous                        bool
	typedesclen, itaboffset, itabsize uint64
}

type slice struct{ ptr, len uint64 }

// goMinor parses "go1.26.8" (or "go1.26rc1", "devel ...") into 26, or -1.
func goMinor(v string) int {
	v, ok := strings.CutPrefix(v, "go1.")
	if !ok {
		return -1
	}
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(v[:end])
	if err != nil {
		return -1
	}
	return n
}

// findModuledata locates runtime.firstmoduledata. Go 1.26 gives it its own
// .go.module section; otherwise use the symbol table, else scan writable data
// for a pointer to the pclntab header, which is moduledata's first field.
func findModuledata(f *elf.File, m *memory, goVersion string) (*moduledata, error) {
	pclns := pclntabCandidates(f, m)
	if len(pclns) == 0 {
		return nil, errors.New("no .gopclntab found: not a Go binary or an unsupported layout")
	}
	// Report why each layout, the one of the binary's Go version first,
	// did not fit the first candidate.
	var firstErr error
	try := func(addr uint64) *moduledata {
		var errs []error
		for _, l := range orderLayouts(goVersion) {
			md, err := readModuledata(m, addr, l, pclns)
			if err == nil {
				return md
			}
			errs = append(errs, err)
		}
		if firstErr == nil {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			firstErr = errors.New(strings.Join(msgs, "; "))
		}
		return nil
	}
	if s := f.Section(".go.module"); s != nil {
		if md := try(s.Addr); md != nil {
			return md, nil
		}
	}
	// Reading the symbol table costs milliseconds on large binaries: only
	// when the section is missing (Go < 1.26).
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if s.Name == "runtime.firstmoduledata" {
				if md := try(s.Value); md != nil {
					return md, nil
				}
			}
		}
	}
	// Scan: moduledata starts with a pointer to the pclntab header.
	for _, pcln := range pclns {
		for _, site := range m.relocsTo(pcln) {
			if md := try(site); md != nil {
				return md, nil
			}
		}
		var want [8]byte
		m.order.(binary.AppendByteOrder).AppendUint64(want[:0], pcln)
		for _, s := range writableRanges(f) {
			for a := s[0]; a+8 <= s[0]+s[1]; a += 8 {
				b, err := m.bytes(a, 8)
				if err != nil {
					break
				}
				if string(b) == string(want[:]) {
					if md := try(a); md != nil {
						return md, nil
					}
				}
			}
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no candidate found")
	}
	if minor := goMinor(goVersion); minor > newestMinor {
		return nil, fmt.Errorf("locate runtime.firstmoduledata: %s is newer than Go 1.%d, the newest layout known here, and none fits: %w",
			goVersion, newestMinor, firstErr)
	}
	return nil, fmt.Errorf("locate runtime.firstmoduledata: %w", firstErr)
}

// writableRanges returns (address, size) of the writable data sections, or
// of the writable segments when section headers are gone.
func writableRanges(f *elf.File) [][2]uint64 {
	var out [][2]uint64
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_WRITE != 0 && s.Flags&elf.SHF_ALLOC != 0 {
			out = append(out, [2]uint64{s.Addr, s.Size})
		}
	}
	if len(f.Sections) == 0 {
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 {
				out = append(out, [2]uint64{p.Vaddr, p.Filesz})
			}
		}
	}
	return out
}

// orderLayouts puts the layout matching the binary's Go version first.
func orderLayouts(goVersion string) []mdLayout {
	minor := goMinor(goVersion)
	out := make([]mdLayout, 0, len(mdLayouts))
	for _, l := range mdLayouts {
		if minor >= l.minMinor {
			out = append(out, l)
			break
		}
	}
	for _, l := range mdLayouts {
		if len(out) == 0 || l.name != out[0].name {
			out = append(out, l)
		}
	}
	return out
}

// pclntabCandidates returns the address of the pclntab header: the
// .gopclntab section, the runtime.pclntab symbol, or (section headers
// stripped) any 8-aligned Go 1.18+ pclntab magic in a read-only segment.
func pclntabCandidates(f *elf.File, m *memory) []uint64 {
	if s := f.Section(".gopclntab"); s != nil {
		return []uint64{s.Addr}
	}
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if s.Name == "runtime.pclntab" {
				return []uint64{s.Value}
			}
		}
	}
	var out []uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_W != 0 || p.Flags&elf.PF_X != 0 {
			continue
		}
		for a := p.Vaddr &^ 7; a+16 <= p.Vaddr+p.Filesz && len(out) < 16; a += 8 {
			b, err := m.bytes(a, 8)
			if err != nil {
				continue
			}
			magic := m.order.Uint32(b)
			if (magic == 0xfffffff1 || magic == 0xfffffff0) && b[4] == 0 && b[5] == 0 &&
				(b[6] == 1 || b[6] == 2 || b[6] == 4) && b[7] == 8 {
				out = append(out, a)
			}
		}
	}
	return out
}

func readModuledata(m *memory, addr uint64, l mdLayout, pclns []uint64) (*moduledata, error) {
	md := &moduledata{addr: addr, layout: l.name}
	var err error
	rd := func(off int) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = m.ptr(addr + uint64(off))
		return v
	}
	md.pclntab = rd(0)
	md.text, md.etext = rd(l.text), rd(l.etext)
	md.types, md.etypes = rd(l.types), rd(l.etypes)
	tsm := slice{rd(l.textsectmap), rd(l.textsectmap + 8)}
	tsmCap := rd(l.textsectmap + 16)
	var tlCap, ilCap uint64
	if l.typedesclen != 0 {
		md.contiguous = true
		md.typedesclen, md.itaboffset, md.itabsize = rd(l.typedesclen), rd(l.itaboffset), rd(l.itabsize)
	} else {
		md.typelinks = slice{rd(l.typelinks), rd(l.typelinks + 8)}
		tlCap = rd(l.typelinks + 16)
		md.itablinks = slice{rd(l.itablinks), rd(l.itablinks + 8)}
		ilCap = rd(l.itablinks + 16)
	}
	if err != nil {
		return nil, fmt.Errorf("moduledata at %#x (%s layout): %w", addr, l.name, err)
	}
	bad := func(what string) error {
		return fmt.Errorf("moduledata at %#x (%s layout): implausible %s", addr, l.name, what)
	}
	okPcln := false
	for _, p := range pclns {
		okPcln = okPcln || p == md.pclntab
	}
	n := md.etypes - md.types
	switch {
	case !okPcln:
		return nil, bad("pcHeader pointer")
	case md.text == 0 || md.text > md.etext:
		return nil, bad("text range")
	case md.types == 0 || md.types > md.etypes || n > 1<<31:
		return nil, bad("types range")
	case tsm.len != tsmCap || tsm.len > 1<<16:
		return nil, bad("textsectmap")
	case md.contiguous && (md.typedesclen < 8 || md.typedesclen > n):
		return nil, bad("typedesclen")
	case md.contiguous && (md.itaboffset < md.typedesclen || md.itaboffset > n || md.itabsize > n-md.itaboffset || md.itabsize%8 != 0):
		return nil, bad("itab range")
	case !md.contiguous && (md.typelinks.len != tlCap || md.typelinks.len > 1<<24):
		return nil, bad("typelinks")
	case !md.contiguous && (md.itablinks.len != ilCap || md.itablinks.len > 1<<24):
		return nil, bad("itablinks")
	}
	if _, ok := m.fileOff(md.types, 1); !ok {
		return nil, bad("types address")
	}
	if md.typelinks.len > 0 {
		if _, ok := m.fileOff(md.typelinks.ptr, 4*md.typelinks.len); !ok {
			return nil, bad("typelinks address")
		}
	}
	if md.itablinks.len > 0 {
		if _, ok := m.fileOff(md.itablinks.ptr, 8*md.itablinks.len); !ok {
			return nil, bad("itablinks address")
		}
	}
	// Layouts differ by inserted words, so a wrong layout can still pass the
	// checks above with shifted slices (Go 1.18's typelinks read as Go
	// 1.26's textsectmap). Decoding the first typelink and the first itab's
	// interface type settles it.
	rs := newRtypes(m, md, "")
	var first, firstItab uint64
	if md.contiguous {
		if md.typedesclen > 8 {
			first = md.types + 8
		}
		if md.itabsize > 0 {
			firstItab = md.types + md.itaboffset
		}
	} else {
		if md.typelinks.len > 0 {
			off, err := m.u32(md.typelinks.ptr)
			if err != nil {
				return nil, bad("typelinks[0]")
			}
			if first = rs.off(int32(off)); first == 0 {
				return nil, bad("typelinks[0] type")
			}
		}
		if md.itablinks.len > 0 {
			if firstItab, err = m.ptr(md.itablinks.ptr); err != nil {
				return nil, bad("itablinks[0]")
			}
		}
	}
	if first != 0 {
		if _, err := rs.header(first); err != nil {
			return nil, bad("first typelink type")
		}
	}
	if firstItab != 0 {
		inter, err := rs.typePtr(firstItab)
		if err != nil || inter == 0 {
			return nil, bad("first itab's interface type")
		}
		if r, err := rs.header(inter); err != nil || r.kind != reflect.Interface {
			return nil, bad("first itab's interface type")
		}
	}
	return md, nil
}
