package probes

import (
	"encoding/hex"
	"reflect"
	"testing"
)

// TestClosureCalls runs the call-site search on instruction sequences the
// Go compiler emits (from httprouter v1.3's (*Router).ServeHTTP, Go 1.26).
func TestClosureCalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		code string
		want []int
	}{
		{
			// MOVQ 0(AX), R9; MOVQ CX, SI; MOVQ DI, R8; MOVQ AX, DX;
			// MOVQ 0x128(SP), AX; MOVQ 0x138(SP), CX; MOVQ BX, DI;
			// MOVQ 0x130(SP), BX; CALL R9
			name: "returned function value",
			code: "4c8b08" + "4889ce" + "4989f8" + "4889c2" + "488b842428010000" + "488b8c2438010000" + "4889df" + "488b9c2430010000" + "41ffd1",
			want: []int{39},
		},
		{
			// MOVQ 0(DX), AX; CALL AX: a deferred closure, already in RDX
			name: "deferred closure",
			code: "488b02" + "ffd0",
		},
		{
			// MOVQ 0(AX), R9; MOVQ AX, DX; MOVQ 0x128(SP), DX; CALL R9:
			// RDX overwritten, not a call of that function value
			name: "closure context overwritten",
			code: "4c8b08" + "4889c2" + "488b942428010000" + "41ffd1",
		},
		{
			// MOVQ 0(AX), R9; CALL R9 without RDX: not a closure call
			name: "no closure context",
			code: "4c8b08" + "41ffd1",
		},
		{name: "garbage", code: "ffffffffffff0f0f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := hex.DecodeString(tc.code)
			if err != nil {
				t.Fatal(err)
			}
			if got := closureCalls(code); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("closureCalls = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzClosureCalls checks that any bytes give call offsets inside the code,
// never a panic.
func FuzzClosureCalls(f *testing.F) {
	for _, s := range []string{"4c8b084889c241ffd1", "488b02ffd0", ""} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		for _, off := range closureCalls(code) {
			if off < 0 || off >= len(code) {
				t.Fatalf("call offset %d outside %d bytes", off, len(code))
			}
		}
	})
}
