package gotypes

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// This file builds small synthetic Go images (moduledata, type descriptors,
// itabs) laid out like cmd/link lays them out, wrapped in a minimal ELF
// file. They are the seeds of the fuzz target and the base of the corrupt
// input tests: real binaries are megabytes, too big to mutate efficiently.

const (
	synthPcln    = 0x1000
	synthModule  = 0x2000
	synthTypes   = 0x10000
	synthText    = 0x400000
	synthFun     = 0x400100
	synthRelaMax = 1 << 12
)

type synthSection struct {
	name  string
	typ   elf.SectionType
	flags elf.SectionFlag
	addr  uint64
	data  []byte
}

// writeELF lays out an ELF64 x86-64 executable with one PT_LOAD per
// allocated section.
func writeELF(sections []synthSection) []byte {
	le := binary.LittleEndian
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	nameOff := make([]uint32, len(sections))
	for i, s := range sections {
		nameOff[i] = uint32(shstr.Len())
		shstr.WriteString(s.name)
		shstr.WriteByte(0)
	}
	shstrOff := uint32(shstr.Len())
	shstr.WriteString(".shstrtab\x00")

	var nload int
	for _, s := range sections {
		if s.flags&elf.SHF_ALLOC != 0 && s.typ == elf.SHT_PROGBITS {
			nload++
		}
	}
	phoff := uint64(64)
	dataOff := phoff + uint64(56*nload)
	offs := make([]uint64, len(sections))
	cur := dataOff
	for i, s := range sections {
		cur = (cur + 7) &^ 7
		offs[i] = cur
		cur += uint64(len(s.data))
	}
	shstrFileOff := cur
	cur += uint64(shstr.Len())
	shoff := (cur + 7) &^ 7
	shnum := len(sections) + 2

	out := make([]byte, shoff+uint64(64*shnum))
	copy(out, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(out[16:], uint16(elf.ET_EXEC))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[32:], phoff)
	le.PutUint64(out[40:], shoff)
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], uint16(nload))
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], uint16(shnum))
	le.PutUint16(out[62:], uint16(shnum-1))

	ph := out[phoff:]
	for i, s := range sections {
		copy(out[offs[i]:], s.data)
		if s.flags&elf.SHF_ALLOC == 0 || s.typ != elf.SHT_PROGBITS {
			continue
		}
		le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
		flags := elf.PF_R
		if s.flags&elf.SHF_WRITE != 0 {
			flags |= elf.PF_W
		}
		le.PutUint32(ph[4:], uint32(flags))
		le.PutUint64(ph[8:], offs[i])
		le.PutUint64(ph[16:], s.addr)
		le.PutUint64(ph[24:], s.addr)
		le.PutUint64(ph[32:], uint64(len(s.data)))
		le.PutUint64(ph[40:], uint64(len(s.data)))
		le.PutUint64(ph[48:], 1)
		ph = ph[56:]
	}
	copy(out[shstrFileOff:], shstr.Bytes())
	sh := out[shoff+64:] // section 0 is SHT_NULL
	for i, s := range sections {
		le.PutUint32(sh[0:], nameOff[i])
		le.PutUint32(sh[4:], uint32(s.typ))
		le.PutUint64(sh[8:], uint64(s.flags))
		le.PutUint64(sh[16:], s.addr)
		le.PutUint64(sh[24:], offs[i])
		le.PutUint64(sh[32:], uint64(len(s.data)))
		le.PutUint64(sh[48:], 8)
		if s.typ == elf.SHT_RELA {
			le.PutUint64(sh[56:], 24)
		}
		sh = sh[64:]
	}
	le.PutUint32(sh[0:], shstrOff)
	le.PutUint32(sh[4:], uint32(elf.SHT_STRTAB))
	le.PutUint64(sh[24:], shstrFileOff)
	le.PutUint64(sh[32:], uint64(shstr.Len()))
	return out
}

// synthImage assembles a types section the way the linker does: names,
// then descriptors addressed by nameOff/typeOff relative to its start.
type synthImage struct {
	buf   []byte
	names map[string]uint32
	le    binary.ByteOrder
}

func newSynthImage() *synthImage {
	return &synthImage{names: make(map[string]uint32), le: binary.LittleEndian}
}

func (im *synthImage) align8() {
	for len(im.buf)%8 != 0 {
		im.buf = append(im.buf, 0)
	}
}

// name appends an abi.Name and returns its offset.
func (im *synthImage) name(s string, flags byte) uint32 {
	key := string(rune(flags)) + s
	if o, ok := im.names[key]; ok {
		return o
	}
	o := uint32(len(im.buf))
	im.buf = append(im.buf, flags)
	im.buf = binary.AppendUvarint(im.buf, uint64(len(s)))
	im.buf = append(im.buf, s...)
	im.names[key] = o
	return o
}

// reserve appends n zero bytes (8-aligned) and returns their offset.
func (im *synthImage) reserve(n int) uint32 {
	im.align8()
	o := uint32(len(im.buf))
	im.buf = append(im.buf, make([]byte, n)...)
	return o
}

func (im *synthImage) put64(off uint32, v uint64) { im.le.PutUint64(im.buf[off:], v) }
func (im *synthImage) put32(off uint32, v uint32) { im.le.PutUint32(im.buf[off:], v) }
func (im *synthImage) put16(off uint32, v uint16) { im.le.PutUint16(im.buf[off:], v) }

// header fills an abi.Type at off.
func (im *synthImage) header(off uint32, size uint64, tflag uint8, kind reflect.Kind, str string) {
	im.put64(off, size)
	im.buf[off+offTFlag] = tflag
	im.buf[off+offKind] = uint8(kind)
	im.put32(off+offStr, im.name(str, 0))
}

func addr(off uint32) uint64 { return synthTypes + uint64(off) }

// synthSeed is a valid image: int, main.S{a int; b *main.S; Embedded},
// *main.S, main.I{M()}, func(), []int, [2]int, an itab (main.I, *main.S).
type synthSeed struct {
	module, types []byte
	intT, s, ptrS uint32
	iface, fn     uint32
	itab          uint32
}

func buildSeed() synthSeed { return buildSeedLayout(mdLayouts[0]) }

// buildSeedLayout builds the seed with moduledata in layout l.
func buildSeedLayout(l mdLayout) synthSeed {
	im := newSynthImage()
	// Reserve descriptors first so that offsets are known for cross refs.
	// Go 1.27 lays the typelink descriptors (*main.S with its method,
	// []int, [2]int) out one after the other from offset 8, and the itabs
	// at the end; older layouts list them in typelinks and itablinks.
	contiguous := l.typedesclen != 0
	var intT, s, ptrS, iface, fn, slice, arr, emb, fields, imethods, itab, typelinks, itablinks, methods, typedesclen uint32
	if contiguous {
		im.reserve(8)
		ptrS = im.reserve(56 + uncommonTypeSize + methodSize) // PtrType, uncommon type, method
		methods = ptrS + 56 + uncommonTypeSize
		slice = im.reserve(56)
		arr = im.reserve(72)
		typedesclen = uint32(len(im.buf))
		intT = im.reserve(abiTypeSize)
		s = im.reserve(80 + uncommonTypeSize)
		iface = im.reserve(80 + uncommonTypeSize)
		fn = im.reserve(56)
		emb = im.reserve(80 + uncommonTypeSize)
		fields = im.reserve(3 * structFieldSize)
		imethods = im.reserve(imethodSize)
		itab = im.reserve(32)
	} else {
		intT = im.reserve(abiTypeSize)
		s = im.reserve(80 + uncommonTypeSize)
		ptrS = im.reserve(56 + uncommonTypeSize) // PtrType, then its uncommon type
		iface = im.reserve(80 + uncommonTypeSize)
		fn = im.reserve(56)
		slice = im.reserve(56)
		arr = im.reserve(72)
		emb = im.reserve(80 + uncommonTypeSize) // main.E struct{} embedded in S
		fields = im.reserve(3 * structFieldSize)
		imethods = im.reserve(imethodSize)
		itab = im.reserve(32)
		typelinks = im.reserve(4 * 3)
		itablinks = im.reserve(8)
		methods = im.reserve(methodSize) // (*main.S).M
	}

	im.header(intT, 8, tflagNamed, reflect.Int, "int")

	im.header(s, 24, tflagNamed|tflagUncommon, reflect.Struct, "main.S")
	im.put32(s+offPtrToThis, ptrS)
	im.put64(s+48, addr(im.name("main", 0)))
	im.put64(s+offStructFields, addr(fields))
	im.put64(s+offStructFields+8, 3)
	im.put64(s+offStructFields+16, 3)
	im.put32(s+80, im.name("main", 0)) // uncommon.PkgPath
	for i, f := range []struct {
		name  string
		flags byte
		typ   uint32
		off   uint64
	}{{"a", 0, intT, 0}, {"b", 0, ptrS, 8}, {"E", 1 | nameFlagEmbedded, emb, 16}} {
		fo := fields + uint32(i*structFieldSize)
		im.put64(fo, addr(im.name(f.name, f.flags)))
		im.put64(fo+8, addr(f.typ))
		im.put64(fo+16, f.off)
	}

	im.header(emb, 8, tflagNamed|tflagUncommon, reflect.Struct, "main.E")
	im.put32(emb+80, im.name("main", 0))
	// main.E's single field reuses int at offset 0.
	efield := im.reserve(structFieldSize)
	im.put64(emb+offStructFields, addr(efield))
	im.put64(emb+offStructFields+8, 1)
	im.put64(emb+offStructFields+16, 1)
	im.put64(efield, addr(im.name("x", 0)))
	im.put64(efield+8, addr(intT))

	im.header(ptrS, 8, tflagUncommon|tflagExtraStar, reflect.Pointer, "**main.S")
	im.put64(ptrS+offElem, addr(s))
	// The method table follows the uncommon type, at a positive Moff.
	unc := ptrS + 56
	im.put32(unc, im.name("main", 0))
	im.put16(unc+4, 1)
	im.put16(unc+6, 1)
	im.put32(unc+8, methods-unc)
	im.put32(methods, im.name("M", 1))
	im.put32(methods+4, fn)
	im.put32(methods+8, uint32(synthFun-synthText))
	im.put32(methods+12, uint32(synthFun-synthText))

	im.header(iface, 16, tflagNamed|tflagUncommon, reflect.Interface, "main.I")
	im.put64(iface+48, addr(im.name("main", 0)))
	im.put64(iface+offStructFields, addr(imethods))
	im.put64(iface+offStructFields+8, 1)
	im.put64(iface+offStructFields+16, 1)
	im.put32(iface+80, im.name("main", 0))
	im.put32(imethods, im.name("M", 1))
	im.put32(imethods+4, fn)

	im.header(fn, 8, 0, reflect.Func, "func()")
	im.header(slice, 24, 0, reflect.Slice, "[]int")
	im.put64(slice+offElem, addr(intT))
	im.header(arr, 16, 0, reflect.Array, "[2]int")
	im.put64(arr+offElem, addr(intT))
	im.put64(arr+offArraySlice, addr(slice))
	im.put64(arr+offArrayLen, 2)

	im.put64(itab, addr(iface))
	im.put64(itab+8, addr(ptrS))
	im.put64(itab+24, synthFun)
	if !contiguous {
		for i, t := range []uint32{ptrS, slice, arr} {
			im.put32(typelinks+uint32(4*i), t)
		}
		im.put64(itablinks, addr(itab))
	}
	im.align8()

	md := make([]byte, 0x250)
	le := binary.LittleEndian
	le.PutUint64(md[0:], synthPcln)
	le.PutUint64(md[l.text:], synthText)
	le.PutUint64(md[l.etext:], synthText+0x1000)
	le.PutUint64(md[l.types:], synthTypes)
	le.PutUint64(md[l.etypes:], synthTypes+uint64(len(im.buf)))
	if contiguous {
		le.PutUint64(md[l.typedesclen:], uint64(typedesclen))
		le.PutUint64(md[l.itaboffset:], uint64(itab))
		le.PutUint64(md[l.itabsize:], 32)
	} else {
		le.PutUint64(md[l.typelinks:], addr(typelinks))
		le.PutUint64(md[l.typelinks+8:], 3)
		le.PutUint64(md[l.typelinks+16:], 3)
		le.PutUint64(md[l.itablinks:], addr(itablinks))
		le.PutUint64(md[l.itablinks+8:], 1)
		le.PutUint64(md[l.itablinks+16:], 1)
	}
	return synthSeed{module: md, types: im.buf, intT: intT, s: s, ptrS: ptrS, iface: iface, fn: fn, itab: itab}
}

func synthELF(module, types, rela []byte) []byte {
	return synthELFModule(".go.module", module, types, rela)
}

// synthELFModule puts moduledata in a section named moduleSect: Go 1.26
// has .go.module, older versions keep it in .noptrdata.
func synthELFModule(moduleSect string, module, types, rela []byte) []byte {
	pcln := make([]byte, 64)
	binary.LittleEndian.PutUint32(pcln, 0xfffffff1)
	pcln[6], pcln[7] = 1, 8
	secs := []synthSection{
		{name: ".gopclntab", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC, addr: synthPcln, data: pcln},
		{name: moduleSect, typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE, addr: synthModule, data: module},
		{name: ".rodata", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC, addr: synthTypes, data: types},
	}
	if len(rela) > 0 {
		secs = append(secs, synthSection{name: ".rela.dyn", typ: elf.SHT_RELA, flags: elf.SHF_ALLOC, addr: 0x3000, data: rela})
	}
	return writeELF(secs)
}

func openSynth(t testing.TB, file []byte) (*Binary, error) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	return NewFromELF(f, bytes.NewReader(file))
}

func TestSyntheticImage(t *testing.T) {
	seed := buildSeed()
	b, err := openSynth(t, synthELF(seed.module, seed.types, nil))
	if err != nil {
		t.Fatal(err)
	}
	names, err := b.TypeNames()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*main.S", "[2]int", "[]int", "func()", "int", "main.E", "main.I", "main.S"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("TypeNames = %q, want %q", names, want)
	}
	for _, tc := range []struct {
		typ, path string
		want      uint64
	}{
		{"main.S", "a", 0}, {"main.S", "b", 8}, {"*main.S", "E.x", 16}, {"main.S", "E", 16},
	} {
		got, err := b.FieldOffset(tc.typ, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("FieldOffset(%s, %s) = %d, %v; want %d", tc.typ, tc.path, got, err, tc.want)
		}
	}
	offs, err := b.FieldOffsets("main.S", "b.E.x")
	if err != nil || len(offs) != 2 || offs[0] != 8 || offs[1] != 16 {
		t.Errorf("FieldOffsets(main.S, b.E.x) = %v, %v; want [8 16]", offs, err)
	}
	if _, err := b.FieldOffset("main.S", "b.a"); !errors.Is(err, ErrPointerHop) {
		t.Errorf("FieldOffset across a pointer: %v, want ErrPointerHop", err)
	}
	if _, err := b.FieldOffset("main.S", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FieldOffset of a missing field: %v, want ErrNotFound", err)
	}
	if _, err := b.Type("main.Nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Type of a missing type: %v, want ErrNotFound", err)
	}
	st, err := b.Type("main.S")
	if err != nil {
		t.Fatal(err)
	}
	if st.Addr != addr(seed.s) || st.Size != 24 || st.Kind != reflect.Struct || len(st.Fields) != 3 ||
		!st.Fields[2].Embedded || st.Fields[1].Type.Elem != st {
		t.Errorf("Type(main.S) = %+v", st)
	}
	its, err := b.Itabs()
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != 1 || its[0].Interface != "main.I" || its[0].Type != "*main.S" || its[0].Addr != addr(seed.itab) ||
		len(its[0].Fun) != 1 || its[0].Fun[0] != synthFun {
		t.Errorf("Itabs = %+v", its)
	}
	ms, err := b.Methods("*main.S")
	if err != nil || len(ms) != 1 || ms[0].Name != "M" || ms[0].Tfn != synthFun || ms[0].Type == nil || ms[0].Type.Kind != reflect.Func {
		t.Errorf("Methods(*main.S) = %+v, %v", ms, err)
	}
}

// TestModuledataLayouts finds moduledata of every supported layout without
// knowing the Go version, in .go.module and by scanning .noptrdata (Go <
// 1.26), at an offset inside the section.
func TestModuledataLayouts(t *testing.T) {
	for _, l := range mdLayouts {
		for _, sect := range []string{".go.module", ".noptrdata"} {
			t.Run(l.name+sect, func(t *testing.T) {
				seed := buildSeedLayout(l)
				module := seed.module
				if sect == ".noptrdata" {
					// Other data first: the scan must find the pointer to
					// the pclntab header, not assume an offset.
					module = append(make([]byte, 0x40), module...)
				}
				b, err := openSynth(t, synthELFModule(sect, module, seed.types, nil))
				if err != nil {
					t.Fatal(err)
				}
				if b.md.layout != l.name {
					t.Errorf("layout %s, want %s", b.md.layout, l.name)
				}
				its, err := b.Itabs()
				if err != nil || len(its) != 1 || its[0].Type != "*main.S" {
					t.Errorf("Itabs = %+v, %v", its, err)
				}
			})
		}
	}
}

// TestSyntheticRelocations moves every pointer of the seed into RELA
// relocations and zeroes the file bytes, as a PIE linker does.
func TestSyntheticRelocations(t *testing.T) {
	seed := buildSeed()
	types := bytes.Clone(seed.types)
	module := bytes.Clone(seed.module)
	var rela []byte
	le := binary.LittleEndian
	move := func(buf []byte, base uint64, off int) {
		v := le.Uint64(buf[off:])
		le.PutUint64(buf[off:], 0)
		rela = le.AppendUint64(rela, base+uint64(off))
		rela = le.AppendUint64(rela, uint64(elf.R_X86_64_RELATIVE))
		rela = le.AppendUint64(rela, v)
	}
	l := mdLayouts[0]
	for _, off := range []int{0, l.text, l.etext, l.types, l.etypes, l.typelinks, l.itablinks} {
		move(module, synthModule, off)
	}
	// Every 8-byte word of the types section holding an address inside it
	// or the text is a pointer (names and small integers are not).
	for off := 0; off+8 <= len(types); off += 8 {
		v := le.Uint64(types[off:])
		if (v >= synthTypes && v < synthTypes+uint64(len(types))) || v == synthFun {
			move(types, synthTypes, off)
		}
	}
	b, err := openSynth(t, synthELF(module, types, rela))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.FieldOffsets("main.S", "b.E.x")
	if err != nil || len(got) != 2 || got[1] != 16 {
		t.Errorf("FieldOffsets through relocations = %v, %v", got, err)
	}
	its, err := b.Itabs()
	if err != nil || len(its) != 1 || its[0].Fun[0] != synthFun || its[0].Type != "*main.S" {
		t.Errorf("Itabs through relocations = %+v, %v", its, err)
	}
}

// TestCorruptImages damages the seed in targeted ways; each must give an
// error (never a panic, never a wrong answer).
func TestCorruptImages(t *testing.T) {
	for _, l := range mdLayouts[:2] { // Go 1.27's and Go 1.26's
		t.Run(l.name, func(t *testing.T) { testCorruptImages(t, l) })
	}
}

func testCorruptImages(t *testing.T, l mdLayout) {
	le := binary.LittleEndian
	s0 := buildSeedLayout(l)
	contiguous := l.typedesclen != 0
	for _, tc := range []struct {
		name    string
		only    string // "slices" or "contiguous": the layouts the case applies to
		corrupt func(s *synthSeed)
		check   func(t *testing.T, b *Binary, openErr error)
	}{
		{
			name: "typedesclen inside a descriptor",
			only: "contiguous",
			// The walk must end exactly at typedesclen.
			corrupt: func(s *synthSeed) { le.PutUint64(s.module[l.typedesclen:], le.Uint64(s.module[l.typedesclen:])-8) },
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.TypeNames(); err == nil || !strings.Contains(err.Error(), "overruns typedesclen") {
					t.Errorf("TypeNames: %v, want an overrun error", err)
				}
			},
		},
		{
			name:    "itabsize past the last itab",
			only:    "contiguous",
			corrupt: func(s *synthSeed) { le.PutUint64(s.module[l.itabsize:], 48) },
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if its, err := b.Itabs(); err == nil {
					t.Errorf("Itabs = %+v, want an error", its)
				}
			},
		},
		{
			name:    "moduledata len != cap",
			only:    "slices",
			corrupt: func(s *synthSeed) { le.PutUint64(s.module[l.itablinks+16:], 5) },
			check: func(t *testing.T, b *Binary, err error) {
				if err == nil || !strings.Contains(err.Error(), "itablinks") {
					t.Errorf("open: %v, want an itablinks error", err)
				}
			},
		},
		{
			name:    "types range outside the file",
			corrupt: func(s *synthSeed) { le.PutUint64(s.module[l.types:], 0x7000000) },
			check: func(t *testing.T, b *Binary, err error) {
				if err == nil {
					t.Error("open succeeded")
				}
			},
		},
		{
			name: "huge field count",
			corrupt: func(s *synthSeed) {
				le.PutUint64(s.types[s.s+offStructFields+8:], 1<<40)
			},
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.FieldOffset("main.S", "a"); err == nil || !strings.Contains(err.Error(), "length 1099511627776") {
					t.Errorf("FieldOffset: %v, want a field count error", err)
				}
				if n, err := b.Dropped(); n != 1 || err != nil {
					t.Errorf("Dropped() = %d, %v; want 1", n, err)
				}
			},
		},
		{
			name: "pointer to itself",
			corrupt: func(s *synthSeed) {
				// *main.S loses its name and points to itself: an
				// infinitely long canonical name.
				s.types[s.ptrS+offTFlag] = 0
				le.PutUint64(s.types[s.ptrS+offElem:], addr(s.ptrS))
			},
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.RuntimeType(addr(s0.ptrS)); err == nil || !strings.Contains(err.Error(), "too deep") {
					t.Errorf("RuntimeType: %v, want nesting error", err)
				}
			},
		},
		{
			name:    "itab interface is not an interface",
			corrupt: func(s *synthSeed) { le.PutUint64(s.types[s.itab:], addr(s.intT)) },
			check: func(t *testing.T, b *Binary, err error) {
				// The first itab also validates the moduledata layout.
				if err == nil || !strings.Contains(err.Error(), "first itab's interface type") {
					t.Errorf("open: %v, want a first itab error", err)
				}
			},
		},
		{
			name: "name length past the section",
			corrupt: func(s *synthSeed) {
				o := le.Uint32(s.types[s.intT+offStr:])
				s.types[o+1] = 0xff
				s.types[o+2] = 0x7f
			},
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.RuntimeType(addr(s0.intT)); err == nil {
					t.Error("RuntimeType of a type with a broken name succeeded")
				}
			},
		},
		{
			name:    "bad kind",
			corrupt: func(s *synthSeed) { s.types[s.fn+offKind] = 31 },
			check: func(t *testing.T, b *Binary, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.RuntimeType(addr(s0.fn)); err == nil || !strings.Contains(err.Error(), "kind 31") {
					t.Errorf("RuntimeType: %v", err)
				}
			},
		},
	} {
		if tc.only == "slices" && contiguous || tc.only == "contiguous" && !contiguous {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			s := buildSeedLayout(l)
			s.module, s.types = bytes.Clone(s.module), bytes.Clone(s.types)
			tc.corrupt(&s)
			b, err := openSynth(t, synthELF(s.module, s.types, nil))
			tc.check(t, b, err)
		})
	}
}

// FuzzImage feeds arbitrary moduledata, types sections and relocations
// through every exported lookup.
func FuzzImage(f *testing.F) {
	seed := buildSeed()
	f.Add(seed.module, seed.types, []byte(nil))
	f.Add(seed.module[:100], seed.types[:len(seed.types)/2], []byte(nil))
	old := buildSeedLayout(mdLayouts[1]) // Go 1.26's typelinks and itablinks
	f.Add(old.module, old.types, []byte(nil))
	f.Fuzz(func(t *testing.T, module, types, rela []byte) {
		if len(rela) > synthRelaMax || len(types) > 1<<20 {
			return
		}
		b, err := openSynth(t, synthELF(module, types, rela))
		if err != nil {
			return
		}
		exercise(t, b, synthTypes, uint64(len(types)))
	})
}

// exercise calls every lookup on b; only panics and inconsistencies fail.
func exercise(t *testing.T, b *Binary, types, n uint64) {
	names, err := b.TypeNames()
	if err == nil {
		for i, name := range names {
			if i == 200 {
				break
			}
			ty, err := b.Type(name)
			if errors.Is(err, ErrNotFound) {
				t.Fatalf("TypeNames lists %q but Type says not found: %v", name, err)
			}
			if err == nil && len(ty.Fields) > 0 {
				b.FieldOffsets(name, ty.Fields[0].Name)
			}
			b.Methods(name)
		}
	}
	b.Itabs()
	for off := uint64(0); off < n && off < 4096; off += 8 {
		b.RuntimeType(types + off)
	}
}

// FuzzELF feeds arbitrary files (seeded with synthetic Go images, with and
// without relocations) through NewFromELF and every lookup.
func FuzzELF(f *testing.F) {
	seed := buildSeed()
	f.Add(synthELF(seed.module, seed.types, nil))
	f.Add(synthELFModule(".noptrdata", seed.module, seed.types, nil))
	old := buildSeedLayout(mdLayouts[1])
	f.Add(synthELF(old.module, old.types, nil))
	f.Fuzz(func(t *testing.T, file []byte) {
		if len(file) > 1<<20 {
			return
		}
		ef, err := elf.NewFile(bytes.NewReader(file))
		if err != nil {
			return
		}
		b, err := NewFromELF(ef, bytes.NewReader(file))
		if err != nil {
			return
		}
		exercise(t, b, synthTypes, 4096)
	})
}

// TestNewerGoThatDoesNotFit checks that a binary of a Go release newer
// than the layouts known here gets errors naming its version, both when no
// moduledata layout fits and when the typelink walk fails.
func TestNewerGoThatDoesNotFit(t *testing.T) {
	const future = "go1.99.1"
	le := binary.LittleEndian
	l := mdLayouts[0]

	seed := buildSeed()
	module := bytes.Clone(seed.module)
	le.PutUint64(module[l.etypes:], synthTypes-8) // fits no layout
	file := synthELF(module, seed.types, nil)
	f, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMemory(f, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := findModuledata(f, m, future); err == nil || !strings.Contains(err.Error(), future+" is newer than Go 1.27") {
		t.Errorf("findModuledata: %v; want an error naming %s", err, future)
	}

	module = bytes.Clone(seed.module)
	le.PutUint64(module[l.typedesclen:], le.Uint64(module[l.typedesclen:])-8) // walk overruns
	b, err := openSynth(t, synthELF(module, seed.types, nil))
	if err != nil {
		t.Fatal(err)
	}
	b.goVersion = future // synthetic images carry no build info
	if _, err := b.TypeNames(); err == nil || !strings.Contains(err.Error(), future) {
		t.Errorf("TypeNames: %v; want an error naming %s", err, future)
	}
}
