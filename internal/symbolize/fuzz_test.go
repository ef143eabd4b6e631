package symbolize

import (
	"os"
	"strings"
	"testing"
)

// exercise runs every reader of b over a bounded number of functions.
func exercise(b *Binary) {
	n := 0
	for f := range b.Funcs() {
		b.Lookup(f.Entry, false)
		b.Lookup(f.End, true)
		b.Lookup((f.Entry+f.End)/2, false)
		if n++; n == 256 {
			break
		}
	}
	b.Func("main.main")
	b.Info()
	// Closures of inlined constructors and generic method values read the
	// inline trees and every function's file (decl.go).
	for f := range b.Funcs() {
		if strings.HasPrefix(f.Name, "main.exercise.") || strings.HasSuffix(f.Name, "-fm") {
			b.Lookup(f.Entry, false)
			b.IsUser(f.Name)
		}
	}
	b.pkgOfFile("api.go")
}

// FuzzNewBinary feeds arbitrary bytes as an executable.
func FuzzNewBinary(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add(synthELF(synthPclntab()))
	f.Add(synthELF(synthPclntabVersion(true)))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := NewBinary("fuzz", data, Options{PCCacheSize: -1})
		if err != nil {
			return
		}
		exercise(b)
	})
}

// FuzzPclntab overwrites bytes of the pclntab of a real binary (the corpus
// program, built by the fuzz setup) at an offset and symbolizes. Odd
// offsets patch the moduledata (.go.module) instead.
func FuzzPclntab(f *testing.F) {
	good, err := os.ReadFile(corpusBinary(f, variants[0]))
	if err != nil {
		f.Fatal(err)
	}
	b0, err := NewBinary("corpus", good, Options{})
	if err != nil {
		f.Fatal(err)
	}
	pcln := b0.im.f.Section(".gopclntab")
	md := b0.im.f.Section(".go.module")
	f.Add(uint32(0), []byte{0xf0})
	f.Add(uint32(8), []byte{0xff, 0xff})
	f.Add(uint32(72), []byte{0, 0, 0, 0})
	f.Add(uint32(pcln.Size/2), []byte("\xff\xff\xff\xff\x80\x80\x80\x80"))
	f.Add(uint32(19*8*2+1), []byte("\x00\x00\x00\x00\x00\x00\x00\x00")) // findfunctab
	f.Add(uint32(40*8*2+1), []byte("\xff\xff\xff\xff"))                 // gofunc
	f.Add(uint32(38*8*2+1), []byte("\x08\x00\x00\x00\x00\x00\x00\x00")) // etypes, or Go 1.27's typedesclen
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		c := append([]byte(nil), good...)
		sect := pcln
		if off&1 == 1 {
			sect = md
		}
		at := sect.Offset + uint64(off/2)%sect.Size
		copy(c[at:sect.Offset+sect.Size], patch)
		b, err := NewBinary("fuzz", c, Options{PCCacheSize: -1})
		if err != nil {
			return
		}
		exercise(b)
	})
}
