package symbolize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// synthPclntab builds a minimal Go 1.20+ pclntab with one function,
// main.f, 16 bytes long, in /src/main.go declared at line 9: line 10 for
// its first 8 bytes, 11 for the rest.
func synthPclntab() []byte { return synthPclntabVersion(false) }

// synthPclntabVersion builds the table in the Go 1.20+ layout or, with
// go118, in the Go 1.18/1.19 one (40-byte _func without startLine).
func synthPclntabVersion(go118 bool) []byte {
	const hdr = 8 + 8*8
	funcnametab := []byte("\x00main.f\x00")
	cutab := []byte{0, 0, 0, 0}
	filetab := []byte("/src/main.go\x00")
	// pctab: offset 0 means "no table", so tables start at 1.
	pcfile := []byte{2, 16, 0}     // file 0 for 16 bytes
	pcln := []byte{22, 8, 2, 8, 0} // line 10 for 8 bytes, 11 for 8
	pctab := append(append([]byte{0}, pcfile...), pcln...)
	fn := make([]byte, 44)
	le := binary.LittleEndian
	le.PutUint32(fn[4:], 1)                      // nameOff
	le.PutUint32(fn[20:], 1)                     // pcfile
	le.PutUint32(fn[24:], uint32(1+len(pcfile))) // pcln
	le.PutUint32(fn[36:], 9)                     // startLine
	magic := byte(0xf1)
	if go118 {
		fn = fn[:40]
		le.PutUint32(fn[36:], 0) // funcID, flag, pad, nfuncdata
		magic = 0xf0
	}
	pclntable := make([]byte, 16)
	le.PutUint32(pclntable[4:], 16) // ftab[0] = {0, 16}
	le.PutUint32(pclntable[8:], 16) // ftab[1] = {16 (end), 0}
	pclntable = append(pclntable, fn...)

	var b bytes.Buffer
	b.Write([]byte{magic, 0xff, 0xff, 0xff, 0, 0, 1, 8})
	off := uint64(hdr)
	words := []uint64{1, 1, 0}
	for _, t := range [][]byte{funcnametab, cutab, filetab, pctab} {
		words = append(words, off)
		off += uint64(len(t))
	}
	words = append(words, off)
	for _, w := range words {
		binary.Write(&b, le, w)
	}
	for _, t := range [][]byte{funcnametab, cutab, filetab, pctab, pclntable} {
		b.Write(t)
	}
	return b.Bytes()
}

// synthELF wraps pclntab in a minimal x86-64 ELF executable with .text at
// 0x401000 (16 bytes of INT3) and .gopclntab, no moduledata, no symbols.
func synthELF(pclntab []byte) []byte {
	le := binary.LittleEndian
	const (
		ehSize, phSize, shSize = 64, 56, 64
		textAddr               = 0x401000
	)
	shstrtab := []byte("\x00.text\x00.gopclntab\x00.shstrtab\x00")
	textOff := uint64(ehSize + phSize)
	text := bytes.Repeat([]byte{0xcc}, 16)
	pclnOff := textOff + uint64(len(text))
	strOff := pclnOff + uint64(len(pclntab))
	shOff := strOff + uint64(len(shstrtab))

	var b bytes.Buffer
	// Elf64_Ehdr
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	for _, v := range []any{uint16(2), uint16(62), uint32(1), uint64(textAddr), uint64(ehSize), shOff,
		uint32(0), uint16(ehSize), uint16(phSize), uint16(1), uint16(shSize), uint16(4), uint16(3)} {
		binary.Write(&b, le, v)
	}
	// One PT_LOAD mapping the file at textAddr - textOff.
	for _, v := range []any{uint32(1), uint32(5), uint64(0), uint64(textAddr - textOff), uint64(textAddr - textOff),
		shOff, shOff, uint64(0x1000)} {
		binary.Write(&b, le, v)
	}
	b.Write(text)
	b.Write(pclntab)
	b.Write(shstrtab)
	sh := func(name, typ uint32, flags, addr, off, size uint64) {
		for _, v := range []any{name, typ, flags, addr, off, size, uint32(0), uint32(0), uint64(1), uint64(0)} {
			binary.Write(&b, le, v)
		}
	}
	base := uint64(textAddr - textOff)
	sh(0, 0, 0, 0, 0, 0)
	sh(1, 1, 6, textAddr, textOff, uint64(len(text)))        // .text
	sh(7, 1, 2, base+pclnOff, pclnOff, uint64(len(pclntab))) // .gopclntab
	sh(18, 3, 0, 0, strOff, uint64(len(shstrtab)))           // .shstrtab
	return b.Bytes()
}

// TestSynthetic checks the reader on a table whose every value is known.
func TestSynthetic(t *testing.T) {
	b, err := NewBinary("synthetic", synthELF(synthPclntab()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Info().TextSource != ".text" || b.TextStart() != 0x401000 {
		t.Errorf("text start %#x from %s", b.TextStart(), b.Info().TextSource)
	}
	tests := []struct {
		pc   uint64
		line int
		err  error
	}{
		{0x401000, 10, nil}, {0x401007, 10, nil}, {0x401008, 11, nil}, {0x40100f, 11, nil},
		{0x401010, 0, ErrNoFunc}, {0x400fff, 0, ErrNoFunc},
	}
	for _, tt := range tests {
		frames, err := b.Lookup(tt.pc, false)
		if !errors.Is(err, tt.err) {
			t.Errorf("Lookup(%#x) error %v, want %v", tt.pc, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		want := Frame{Function: "main.f", File: "/src/main.go", Line: tt.line, StartLine: 9, Type: "main", Method: "f", User: true}
		if len(frames) != 1 || frames[0] != want {
			t.Errorf("Lookup(%#x) = %+v, want %+v", tt.pc, frames, want)
		}
	}
	if fi, ok := b.Func("main.f"); !ok || fi.Entry != 0x401000 || fi.End != 0x401010 || fi.StartLine != 9 {
		t.Errorf("Func(main.f) = %+v, %t", fi, ok)
	}
	if off, ok := b.FileOffset(0x401000); !ok || off != 64+56 {
		t.Errorf("FileOffset = %d, %t", off, ok)
	}

	if os.Getenv("SYMBOLIZE_WRITE_SEEDS") != "" {
		writeSeed(t, "FuzzNewBinary", "synthetic", synthELF(synthPclntab()))
		writeSeed(t, "FuzzNewBinary", "synthetic-118", synthELF(synthPclntabVersion(true)))
	}
}

// writeSeed stores one []byte input in the fuzz seed corpus format.
func writeSeed(t *testing.T, target, name string, data []byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSynthetic118 reads the Go 1.18/1.19 layout: no declaration lines.
func TestSynthetic118(t *testing.T) {
	b, err := NewBinary("synthetic-1.18", synthELF(synthPclntabVersion(true)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	frames, err := b.Lookup(0x401009, false)
	want := Frame{Function: "main.f", File: "/src/main.go", Line: 11, Type: "main", Method: "f", User: true}
	if err != nil || len(frames) != 1 || frames[0] != want {
		t.Errorf("Lookup = %+v, %v; want %+v", frames, err, want)
	}
}

func TestFrameOrigin(t *testing.T) {
	f := Frame{Function: "main.f", File: "/src/main.go", Line: 10, StartLine: 9, Type: "main", Method: "f", User: true, Inlined: true}
	o := f.Origin()
	if o.Function != f.Function || o.File != f.File || o.Line != 10 || o.StartLine != 9 || o.Type != "main" || o.Method != "f" {
		t.Errorf("Origin() = %+v", o)
	}
}
