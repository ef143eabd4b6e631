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

// TestDirectCalls runs the direct-call search on instruction sequences from
// dd-trace-go v1.73's gin middleware (Go 1.26): CALL rel32 of
// (*gin.Context).Next at 0x1305036, Next at 0xdd1520.
func TestDirectCalls(t *testing.T) {
	const next = 0xdd1520
	for _, tc := range []struct {
		name string
		code string
		base uint64
		want []int
	}{
		{name: "the call", code: "e8e5c4acff", base: 0x1305036, want: []int{0}},
		{name: "after other instructions", code: "4889c2" + "e8e5c4acff", base: 0x1305033, want: []int{3}},
		{name: "another function", code: "e8e5c4acff", base: 0x1305000},
		{name: "indirect call", code: "ffd3", base: 0x1305036},
		{name: "truncated", code: "e8e5c4", base: 0x1305036},
		{name: "garbage", code: "ffffffffffff0f0f", base: 0x1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := hex.DecodeString(tc.code)
			if err != nil {
				t.Fatal(err)
			}
			if got := directCalls(code, tc.base, next); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("directCalls = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzDirectCalls checks that any bytes give call offsets inside the code,
// never a panic.
func FuzzDirectCalls(f *testing.F) {
	f.Add([]byte{0xe8, 0xe5, 0xc4, 0xac, 0xff}, uint64(0x1305036), uint64(0xdd1520))
	f.Add([]byte{}, uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, code []byte, base, fn uint64) {
		for _, off := range directCalls(code, base, fn) {
			if off < 0 || off >= len(code) {
				t.Fatalf("call offset %d outside %d bytes", off, len(code))
			}
		}
	})
}
