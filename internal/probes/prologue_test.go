package probes

import (
	"errors"
	"testing"
)

func TestFramePushOffset(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want int
		err  error
	}{
		{
			// CMPQ SP, 0x10(R14); JBE +0x2a; PUSHQ BP; MOVQ SP, BP
			name: "small frame",
			code: []byte{0x49, 0x3b, 0x66, 0x10, 0x76, 0x2a, 0x55, 0x48, 0x89, 0xe5},
			want: 6,
		},
		{
			// LEAQ -0x98(SP), R12; CMPQ R12, 0x10(R14); JBE +0x7b; PUSHQ BP
			name: "large frame",
			code: []byte{0x4c, 0x8d, 0xa4, 0x24, 0x68, 0xff, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x7b, 0x00, 0x00, 0x00, 0x55},
			want: 18,
		},
		{
			// No stack check (NOSPLIT): PUSHQ BP first.
			name: "nosplit",
			code: []byte{0x55, 0x48, 0x89, 0xe5},
			want: 0,
		},
		{
			// MOVQ AX, BX; RET: a frameless leaf.
			name: "frameless",
			code: []byte{0x48, 0x89, 0xc3, 0xc3},
			err:  errNoFramePush,
		},
		{
			// CMPQ SP, 0x10(R14); JBE; CALL: a branch before any PUSHQ BP.
			name: "call before push",
			code: []byte{0x49, 0x3b, 0x66, 0x10, 0x76, 0x2a, 0xe8, 0, 0, 0, 0, 0x55},
			err:  errNoFramePush,
		},
		{name: "empty", code: nil, err: errNoFramePush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := framePushOffset(tc.code)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("framePushOffset = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// FuzzFramePushOffset feeds arbitrary bytes to the prologue decoder, which
// reads code from target binaries: it must return an offset inside the
// input or an error, never panic.
func FuzzFramePushOffset(f *testing.F) {
	f.Add([]byte{0x49, 0x3b, 0x66, 0x10, 0x76, 0x2a, 0x55})
	f.Add([]byte{0x4c, 0x8d, 0xa4, 0x24, 0x68, 0xff, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x7b, 0x00, 0x00, 0x00, 0x55})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, code []byte) {
		off, err := framePushOffset(code)
		if err == nil && (off < 0 || off >= len(code) || code[off] != 0x55) {
			t.Fatalf("offset %d does not point at a PUSHQ BP in %x", off, code)
		}
	})
}
