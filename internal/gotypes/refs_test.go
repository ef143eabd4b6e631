package gotypes

import (
	"debug/elf"
	"testing"
)

// TestDataRefs finds the statically initialized variable of the basic
// corpus program whose interface field holds *main.serviceIface's type
// descriptor, in every variant with section headers: through the dynamic
// relocations in PIE builds, in the file's .data otherwise. Where the
// symbol table survives, the reference must be the field's address.
func TestDataRefs(t *testing.T) {
	for _, v := range variants {
		if v.noSections {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			path := testCorpus.build(t, "basic", v)
			b, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			typ, err := b.Type("*main.serviceIface")
			if err != nil || typ.Addr == 0 {
				t.Fatalf("*main.serviceIface: %v (addr %#x)", err, typ.Addr)
			}
			refs, err := b.DataRefs(typ.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) != 1 {
				t.Fatalf("DataRefs(*main.serviceIface) = %#x, want one reference", refs)
			}
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syms, _ := f.Symbols()
			for _, s := range syms {
				// HandlerType follows the 16-byte Name string.
				if s.Name == "main.service" && refs[0] != s.Value+16 {
					t.Errorf("reference at %#x, want main.service+16 = %#x", refs[0], s.Value+16)
				}
			}
			none, err := b.DataRefs(typ.Addr + 1)
			if err != nil || len(none) != 0 {
				t.Errorf("DataRefs of an address nothing points at = %#x, %v", none, err)
			}
		})
	}
}
