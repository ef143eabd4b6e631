package symbolize

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
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
}

// findModuledata locates runtime.firstmoduledata: the .go.module section of
// Go 1.26+, else the runtime.firstmoduledata symbol, else a scan of the
// writable data for the pointer to the pclntab that starts the structure.
// A candidate counts only when its funcnametab pointer matches the header.
func (im *image) findModuledata(t *pclntab, pclnAddr uint64) (moduledata, bool) {
	if s, _, ok := im.section(".go.module"); ok {
		if md, ok := im.moduledataAt(t, pclnAddr, s.Addr); ok {
			return md, true
		}
	}
	if a, ok := im.symbol("runtime.firstmoduledata"); ok {
		if md, ok := im.moduledataAt(t, pclnAddr, a); ok {
			return md, true
		}
	}
	return im.scanModuledata(t, pclnAddr)
}

// scanModuledata searches the writable PROGBITS sections for moduledata.
func (im *image) scanModuledata(t *pclntab, pclnAddr uint64) (moduledata, bool) {
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
			if md, ok := im.moduledataAt(t, pclnAddr, s.Addr+p); ok {
				return md, true
			}
		}
	}
	return moduledata{}, false
}

// moduledataAt validates and decodes a moduledata candidate at addr.
func (im *image) moduledataAt(t *pclntab, pclnAddr, addr uint64) (moduledata, bool) {
	ps := t.ptrSize
	w := func(i int) uint64 {
		v, _ := im.word(addr+uint64(i*ps), ps)
		return v
	}
	funcnameOff := uint64(len(t.data) - len(t.funcnametab))
	if w(0) != pclnAddr || w(1) != pclnAddr+funcnameOff {
		return moduledata{}, false
	}
	// Word indexes: pcHeader 0, six slices 1-18, findfunctab 19, minpc 20,
	// maxpc 21, text 22, ... types 37 (35 before Go 1.20 added covctrs),
	// etypes, rodata, gofunc.
	md := moduledata{text: w(22), findfunctab: w(19), minpc: w(20), maxpc: w(21), gofunc: w(40)}
	if t.go118 {
		md.gofunc = w(38)
	}
	if md.text == 0 || w(20) < md.text || w(21) <= w(20) {
		return moduledata{}, false
	}
	return md, true
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
