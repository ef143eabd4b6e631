package probes

import (
	"encoding/hex"
	"reflect"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/originagent/originagent/bpf"
)

// TestByteStores runs the store search on instruction sequences the Go
// compiler emits (from fiber v2.52.9's (*App).next, Go 1.26: c.matched =
// true with c in AX, Ctx.matched at 0x2a0).
func TestByteStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		code string
		imm  int64
		disp int64
		want []byteStore
	}{
		{
			// CMPB 0x2a0(AX), $0; JNE; CMPB 0(DI), $0; JNE;
			// MOVB $1, 0x2a0(AX); MOVQ $0, 0x18(AX)
			name: "matched store",
			code: "80b8a002000000" + "750c" + "803f00" + "7507" + "c680a002000001" + "48c7401800000000",
			imm:  1, disp: 0x2a0,
			want: []byteStore{{off: 14, base: x86asm.RAX}},
		},
		{
			// MOVB $1, 0x2a0(R8)
			name: "other base register",
			code: "41c680a002000001",
			imm:  1, disp: 0x2a0,
			want: []byteStore{{off: 0, base: x86asm.R8}},
		},
		{
			// MOVB $0, 0x2a0(AX): a reset, not the store of true
			name: "store of false",
			code: "c680a002000000",
			imm:  1, disp: 0x2a0,
		},
		{
			// MOVQ $1, 0x2a0(AX): not a byte store
			name: "quad store",
			code: "48c780a002000001000000",
			imm:  1, disp: 0x2a0,
		},
		{
			// MOVB $1, 0x2a0(AX)(CX*1): indexed
			name: "indexed",
			code: "c68408a002000001",
			imm:  1, disp: 0x2a0,
		},
		{name: "garbage", code: "ffffffffffff0f0f", imm: 1, disp: 0x2a0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := hex.DecodeString(tc.code)
			if err != nil {
				t.Fatal(err)
			}
			if got := byteStores(code, tc.imm, tc.disp); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("byteStores = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzByteStores checks that any bytes give store offsets inside the code,
// never a panic.
func FuzzByteStores(f *testing.F) {
	for _, s := range []string{"c680a002000001", "41c680a002000001", ""} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		for _, s := range byteStores(code, 1, 0x2a0) {
			if s.off < 0 || s.off >= len(code) {
				t.Fatalf("store offset %d outside %d bytes", s.off, len(code))
			}
		}
	})
}

// TestSetKey checks the bounds of a recipe's user value key.
func TestSetKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"__local_user_context__", true},
		{"k", true},
		{"", false},
		{"0123456789abcdef0123456789abcdef", true},
		{"0123456789abcdef0123456789abcdef0", false},
	} {
		var r bpf.OriginRecipe
		err := setKey(&r, tc.key, 0x1000)
		if (err == nil) != tc.ok {
			t.Errorf("setKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		if int(r.KeyLen) != len(tc.key) || r.KeyType != 0x1000 {
			t.Errorf("setKey(%q): len %d type %#x", tc.key, r.KeyLen, r.KeyType)
		}
		for i := 0; i < len(tc.key); i++ {
			if byte(r.Key[i]) != tc.key[i] {
				t.Errorf("setKey(%q): byte %d is %q", tc.key, i, byte(r.Key[i]))
			}
		}
	}
}
