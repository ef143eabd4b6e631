package symbolize

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// image is an ELF file held in memory (usually mapped) with its loadable
// segments, so virtual addresses can be read without copying.
type image struct {
	data  []byte
	f     *elf.File
	loads []*elf.Prog
}

// newImage parses the ELF headers of data. debug/elf reads only headers
// here; section contents are sliced from data directly.
func newImage(data []byte) (*image, error) {
	if len(data) < 4 || !bytes.Equal(data[:4], []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("not an ELF file: %w", ErrNotGo)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	if f.ByteOrder != binary.LittleEndian {
		return nil, fmt.Errorf("big-endian ELF: %w", ErrUnsupported)
	}
	im := &image{data: data, f: f}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			im.loads = append(im.loads, p)
		}
	}
	return im, nil
}

// section returns the file bytes of the named section, which must be stored
// uncompressed in the file.
func (im *image) section(name string) (*elf.Section, []byte, bool) {
	s := im.f.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, nil, false
	}
	if s.Offset > uint64(len(im.data)) || s.Size > uint64(len(im.data))-s.Offset {
		return nil, nil, false
	}
	return s, im.data[s.Offset : s.Offset+s.Size], true
}

// read returns n bytes of the file at virtual address vaddr.
func (im *image) read(vaddr, n uint64) ([]byte, bool) {
	for _, p := range im.loads {
		if vaddr < p.Vaddr || vaddr-p.Vaddr >= p.Filesz {
			continue
		}
		rel := vaddr - p.Vaddr
		if n > p.Filesz-rel {
			return nil, false
		}
		off := p.Off + rel
		if off > uint64(len(im.data)) || n > uint64(len(im.data))-off {
			return nil, false
		}
		return im.data[off : off+n], true
	}
	return nil, false
}

// rest returns the file bytes from vaddr to the end of its segment.
func (im *image) rest(vaddr uint64) []byte {
	for _, p := range im.loads {
		if vaddr < p.Vaddr || vaddr-p.Vaddr >= p.Filesz {
			continue
		}
		off := p.Off + vaddr - p.Vaddr
		end := p.Off + p.Filesz
		if off > uint64(len(im.data)) || end > uint64(len(im.data)) {
			return nil
		}
		return im.data[off:end]
	}
	return nil
}

// word reads a pointer-sized little-endian word at vaddr.
func (im *image) word(vaddr uint64, ptrSize int) (uint64, bool) {
	b, ok := im.read(vaddr, uint64(ptrSize))
	if !ok {
		return 0, false
	}
	if ptrSize == 8 {
		return binary.LittleEndian.Uint64(b), true
	}
	return uint64(binary.LittleEndian.Uint32(b)), true
}

// vaddrOf maps a file offset to the virtual address it is loaded at.
func (im *image) vaddrOf(off uint64) (uint64, bool) {
	for _, p := range im.loads {
		if off >= p.Off && off-p.Off < p.Filesz {
			return p.Vaddr + off - p.Off, true
		}
	}
	return 0, false
}

// fileOffset maps a virtual address to its offset in the file.
func (im *image) fileOffset(vaddr uint64) (uint64, bool) {
	for _, p := range im.loads {
		if vaddr >= p.Vaddr && vaddr-p.Vaddr < p.Filesz {
			return p.Off + vaddr - p.Vaddr, true
		}
	}
	return 0, false
}

// symbol returns the value of the named symbol from .symtab, scanning the
// raw table: elf.File.Symbols would allocate every symbol of the binary.
func (im *image) symbol(name string) (uint64, bool) {
	_, tab, ok := im.section(".symtab")
	if !ok || im.f.Class != elf.ELFCLASS64 {
		return 0, false
	}
	_, strtab, ok := im.section(".strtab")
	if !ok {
		return 0, false
	}
	const symSize = 24 // Elf64_Sym
	for p := 0; p+symSize <= len(tab); p += symSize {
		s, ok := cstring(strtab, uint64(binary.LittleEndian.Uint32(tab[p:])))
		if ok && string(s) == name {
			return binary.LittleEndian.Uint64(tab[p+8:]), true
		}
	}
	return 0, false
}

// moduledata holds the fields of runtime.moduledata this package needs.
type moduledata struct {
	text, minpc, maxpc uint64
	findfunctab        uint64
	gofunc             uint64
	layout             string // name of the mdLayout that fit
}

// mdLayout gives the word indexes of the runtime.moduledata fields past
// text that tell layouts apart (runtime/symtab.go; the linker writes them
// in cmd/link/internal/ld/symtab.go). Everything up to text (word 22) is
// the same in Go 1.18 to 1.27.
type mdLayout struct {
	name                 string
	types, etypes        int
	typedesclen          int // Go 1.27+: end of the typelink descriptors, from types; 0 if absent
	itaboffset, itabsize int // Go 1.27+: the itabs, from types; 0 if absent
	rodata, gofunc       int
}

// mdLayouts are tried in order; a layout fits when the words it names are
// consistent (see moduledataAt), and no two layouts fit the same data.
var mdLayouts = []mdLayout{
	// Go 1.27 inserted typedesclen after types and itaboffset/itabsize
	// after etypes, and dropped the typelinks and itablinks slices (which
	// lie past gofunc, so they do not move the fields read here).
	{name: "go1.27", types: 37, typedesclen: 38, etypes: 39, itaboffset: 40, itabsize: 41, rodata: 42, gofunc: 43},
	// Go 1.20 inserted covctrs/ecovctrs before end.
	{name: "go1.20", types: 37, etypes: 38, rodata: 39, gofunc: 40},
	// Go 1.18 added rodata and gofunc.
	{name: "go1.18", types: 35, etypes: 36, rodata: 37, gofunc: 38},
}

// newestLayoutMinor is the newest Go 1.x release whose moduledata layout
// this package knows.
const newestLayoutMinor = 27

// findModuledata locates runtime.firstmoduledata: the .go.module section of
// Go 1.26+, else the runtime.firstmoduledata symbol, else a scan of the
// writable data for the pointer to the pclntab that starts the structure.
// A candidate counts only when its funcnametab pointer matches the header
// and one of the known layouts fits it. It fails when a candidate was found
// but no layout fits: a binary of a newer Go than this package knows.
func (im *image) findModuledata(t *pclntab, pclnAddr uint64) (moduledata, error) {
	var found bool // a candidate whose header pointers matched
	try := func(addr uint64) (moduledata, bool) {
		md, hdr, ok := im.moduledataAt(t, pclnAddr, addr)
		found = found || hdr
		return md, ok
	}
	if s, _, ok := im.section(".go.module"); ok {
		if md, ok := try(s.Addr); ok {
			return md, nil
		}
	}
	if a, ok := im.symbol("runtime.firstmoduledata"); ok {
		if md, ok := try(a); ok {
			return md, nil
		}
	}
	if md, ok := im.scanModuledata(t, pclnAddr, try); ok {
		return md, nil
	}
	if found {
		return moduledata{}, fmt.Errorf("runtime.moduledata fits no layout of Go 1.18-1.%d (a newer Go, or corrupt): %w", newestLayoutMinor, ErrUnsupported)
	}
	return moduledata{}, errors.New("runtime.moduledata not found")
}

// scanModuledata searches the writable PROGBITS sections for moduledata,
// trying each word that points at the pclntab.
func (im *image) scanModuledata(t *pclntab, pclnAddr uint64, try func(uint64) (moduledata, bool)) (moduledata, bool) {
	ps := uint64(t.ptrSize)
	for _, s := range im.f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_WRITE == 0 {
			continue
		}
		_, b, ok := im.section(s.Name)
		if !ok {
			continue
		}
		for p := uint64(0); p+ps <= uint64(len(b)); p += ps {
			var w uint64
			if ps == 8 {
				w = binary.LittleEndian.Uint64(b[p:])
			} else {
				w = uint64(binary.LittleEndian.Uint32(b[p:]))
			}
			if w != pclnAddr {
				continue
			}
			if md, ok := try(s.Addr + p); ok {
				return md, true
			}
		}
	}
	return moduledata{}, false
}

// moduledataAt decodes a moduledata candidate at addr. hdr reports that its
// pclntab and funcnametab pointers match the pclntab; ok that a layout fits.
func (im *image) moduledataAt(t *pclntab, pclnAddr, addr uint64) (md moduledata, hdr, ok bool) {
	ps := t.ptrSize
	w := func(i int) uint64 {
		v, _ := im.word(addr+uint64(i*ps), ps)
		return v
	}
	funcnameOff := uint64(len(t.data) - len(t.funcnametab))
	if w(0) != pclnAddr || w(1) != pclnAddr+funcnameOff {
		return moduledata{}, false, false
	}
	// Word indexes: pcHeader 0, six slices 1-18, findfunctab 19, minpc 20,
	// maxpc 21, text 22; the rest depends on the layout.
	md = moduledata{text: w(22), findfunctab: w(19), minpc: w(20), maxpc: w(21)}
	if md.text == 0 || md.minpc < md.text || md.maxpc <= md.minpc {
		return moduledata{}, true, false
	}
	for _, l := range mdLayouts {
		// The Go 1.18 pclntab magic goes with the Go 1.18 layout only.
		if t.go118 != (l.name == "go1.18") {
			continue
		}
		types, etypes, rodata := w(l.types), w(l.etypes), w(l.rodata)
		// rodata starts the read-only data, which holds the type
		// descriptors (in their own section from Go 1.27 on), so it is
		// at or before types.
		if types == 0 || etypes < types || etypes-types > 1<<31 || rodata == 0 || rodata > types {
			continue
		}
		if l.typedesclen != 0 {
			n, off, size := w(l.typedesclen), w(l.itaboffset), w(l.itabsize)
			if n > etypes-types || off > etypes-types || size > etypes-types-off || off < n {
				continue
			}
		}
		gofunc := w(l.gofunc)
		if _, ok := im.read(gofunc, 1); !ok {
			continue
		}
		md.gofunc, md.layout = gofunc, l.name
		return md, true, true
	}
	return moduledata{}, true, false
}

// goBuildID returns the Go build ID from the .note.go.buildid section.
func (im *image) goBuildID() string {
	_, b, ok := im.section(".note.go.buildid")
	if !ok || len(b) < 16 {
		return ""
	}
	nameSz := binary.LittleEndian.Uint32(b)
	descSz := binary.LittleEndian.Uint32(b[4:])
	if nameSz != 4 || string(b[12:15]) != "Go\x00" || uint64(descSz) > uint64(len(b)-16) {
		return ""
	}
	return string(b[16 : 16+descSz])
}

// gnuBuildID returns the GNU build ID in hex, if the linker wrote one.
func (im *image) gnuBuildID() string {
	_, b, ok := im.section(".note.gnu.build-id")
	if !ok || len(b) < 16 {
		return ""
	}
	nameSz := binary.LittleEndian.Uint32(b)
	descSz := binary.LittleEndian.Uint32(b[4:])
	start := 12 + uint64((nameSz+3)&^3)
	if start+uint64(descSz) > uint64(len(b)) {
		return ""
	}
	return hex.EncodeToString(b[start : start+uint64(descSz)])
}

// Module is a Go module linked into a binary.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version,omitempty"`
	Sum     string `json:"sum,omitempty"`
	// Replace is the module that replaced this one, if any.
	Replace *Module `json:"replace,omitempty"`
}

// BuildInfo describes how a binary was built: its Go version and modules
// (from the build info the Go linker embeds) and facts read from the ELF.
type BuildInfo struct {
	GoVersion    string            `json:"go_version"`
	Path         string            `json:"path,omitempty"` // main package path
	Main         Module            `json:"main"`
	Deps         []Module          `json:"deps,omitempty"`
	Settings     map[string]string `json:"settings,omitempty"`
	BuildID      string            `json:"build_id,omitempty"`
	Stripped     bool              `json:"stripped"` // no .symtab
	PIE          bool              `json:"pie"`
	TrimPath     bool              `json:"trimpath"`
	CGO          bool              `json:"cgo"`
	ExternalLink bool              `json:"external_link"`
	DWARF        bool              `json:"dwarf"`
	PclntabSize  int               `json:"pclntab_size"`
	Funcs        int               `json:"funcs"`
	TextStart    uint64            `json:"text_start"`
	// TextSource says where TextStart came from: "moduledata",
	// "runtime.text", "pcheader" or ".text" (the last may be wrong).
	TextSource string `json:"text_source"`
}

// readBuildInfo fills the build-info part of BuildInfo. A binary without
// build info (built by an old toolchain, or not by go build) still loads.
func (im *image) readBuildInfo(bi *BuildInfo) {
	info, err := buildinfo.Read(bytes.NewReader(im.data))
	if err == nil {
		bi.GoVersion = info.GoVersion
		bi.Path = info.Path
		bi.Main = module(&info.Main)
		for _, d := range info.Deps {
			bi.Deps = append(bi.Deps, module(d))
		}
		bi.Settings = make(map[string]string, len(info.Settings))
		for _, s := range info.Settings {
			bi.Settings[s.Key] = s.Value
		}
	}
	bi.BuildID = im.goBuildID()
	bi.Stripped = im.f.Section(".symtab") == nil
	bi.PIE = im.f.Type == elf.ET_DYN
	bi.TrimPath = bi.Settings["-trimpath"] == "true"
	bi.CGO = bi.Settings["CGO_ENABLED"] == "1"
	bi.DWARF = im.f.Section(".debug_info") != nil || im.f.Section(".zdebug_info") != nil
	ld := bi.Settings["-ldflags"]
	bi.ExternalLink = strings.Contains(ld, "linkmode=external") || strings.Contains(ld, "linkmode external") ||
		im.f.Section(".comment") != nil
}

func module(m *debug.Module) Module {
	if m == nil {
		return Module{}
	}
	out := Module{Path: m.Path, Version: m.Version, Sum: m.Sum}
	if m.Replace != nil {
		r := module(m.Replace)
		out.Replace = &r
	}
	return out
}
