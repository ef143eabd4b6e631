package probes

import (
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// maxPrologue bounds how far into a function the prologue search looks. Go's
// stack check is at most a handful of instructions (LEAQ/CMPQ/JBE, or a
// SUBQ/JCS/CMPQ/JBE pair for huge frames) before PUSHQ BP.
const maxPrologue = 64

// errNoFramePush means the function has no PUSHQ BP in its prologue (a
// frameless leaf or assembly): the probe must go on the entry.
var errNoFramePush = errors.New("no PUSHQ BP in prologue")

// framePushOffset returns the offset of the PUSHQ BP that follows the stack
// check in a Go amd64 function whose first bytes are code.
//
// A uprobe there costs about 18 times less than on the first instruction: the
// kernel emulates PUSH instead of single-stepping CMP out of line. The
// arguments are still in their registers, and the stack-growth path re-enters
// the function from the top, so the probe still fires exactly once per call.
// The search stops at the first branch that is not the stack check's
// conditional jump, so it never picks a PUSHQ BP on another path.
func framePushOffset(code []byte) (int, error) {
	if len(code) > maxPrologue {
		code = code[:maxPrologue]
	}
	off := 0
	for off < len(code) {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			return 0, fmt.Errorf("decode at +%d: %w", off, err)
		}
		switch inst.Op {
		case x86asm.PUSH:
			// Only the one-byte form (0x55) is what the kernel emulates;
			// Go emits no other.
			if r, ok := inst.Args[0].(x86asm.Reg); ok && r == x86asm.RBP && inst.Len == 1 && code[off] == 0x55 {
				return off, nil
			}
			return 0, errNoFramePush
		case x86asm.JBE, x86asm.JB, x86asm.JAE, x86asm.JA:
			// The stack check's conditional jump to the morestack call at the
			// end of the function: the fall-through path continues here.
		case x86asm.CMP, x86asm.LEA, x86asm.SUB, x86asm.MOV, x86asm.NOP:
			// Stack-check arithmetic, or padding.
		default:
			return 0, errNoFramePush
		}
		off += inst.Len
	}
	return 0, errNoFramePush
}
