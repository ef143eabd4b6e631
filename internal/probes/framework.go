package probes

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"

	"golang.org/x/arch/x86/x86asm"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/gotypes"
)

// A framework describes how to find one web framework's dispatch points in a
// binary: which functions to probe and, for each, a recipe saying where the
// BPF program finds the handler's PC and the request's context.Context in
// the registers there. The one BPF program interprets every recipe, so
// adding a framework is a description here (and a test service), with
// offsets taken from the target's own type information.
type framework struct {
	// name is what status and logs call it.
	name string
	// targets returns the functions to probe, or nil when the binary does
	// not use the framework.
	targets func(s *scan) ([]target, error)
}

// target is one function to probe and its recipe.
type target struct {
	framework string
	name      string // symbol, for logs and status
	entry     uint64 // file virtual address of the function's first instruction
	// at is the file virtual address of the probe for recipes that probe
	// a call inside the body (RECIPE_IN_BODY); 0 places the probe at the
	// function's PUSHQ BP (or entry).
	at     uint64
	recipe bpf.OriginRecipe // ProbeOff is filled in when the probe is placed
}

// scan is what a framework description reads while a binary is analysed.
type scan struct {
	*analysis
	types *gotypes.Binary
	exe   *elf.File
}

// offset returns the offset of a field path in a struct type of the binary,
// as a recipe holds it.
func (s *scan) offset(typ string, path ...string) (uint16, error) {
	off, err := s.types.FieldOffset(typ, path...)
	if err != nil {
		return 0, err
	}
	if off >= noCtx {
		return 0, fmt.Errorf("offset of %s.%v too large: %d", typ, path, off)
	}
	return uint16(off), nil
}

// requestCtx is the offset of the context in net/http.Request, which most
// frameworks reach the request's context through.
func (s *scan) requestCtx() (uint16, error) {
	off, err := s.offset(typeRequest, "ctx")
	if err != nil {
		return 0, fmt.Errorf("net/http.Request.ctx: %w", err)
	}
	return off, nil
}

// chain builds a recipe chain: start at reg, dereference every offset but
// the last, and read the value at the last.
func chain(reg bpf.OriginReg, offs ...uint16) bpf.OriginChain {
	c := bpf.OriginChain{Reg: uint8(reg), N: uint8(len(offs))}
	copy(c.Off[:], offs)
	return c
}

// Recipe constructors, one per source of the handler's PC.
func recipeSelf(ctx bpf.OriginChain) bpf.OriginRecipe {
	return bpf.OriginRecipe{PcKind: uint8(bpf.OriginPcKindPC_SELF), Ctx: ctx}
}

func recipeLoad(pc, ctx bpf.OriginChain) bpf.OriginRecipe {
	return bpf.OriginRecipe{PcKind: uint8(bpf.OriginPcKindPC_LOAD), Pc: pc, Ctx: ctx}
}

func recipeSliceLast(pc, ctx bpf.OriginChain) bpf.OriginRecipe {
	return bpf.OriginRecipe{PcKind: uint8(bpf.OriginPcKindPC_SLICE_LAST), Pc: pc, Ctx: ctx}
}

// Go's amd64 register ABI, as the recipes name it.
const (
	regArg0    = bpf.OriginRegREG_RAX
	regArg1    = bpf.OriginRegREG_RBX
	regArg2    = bpf.OriginRegREG_RCX
	regArg3    = bpf.OriginRegREG_RDI
	regClosure = bpf.OriginRegREG_RDX
)

// frameworks lists what originagent knows, in probe order.
func frameworks() []framework {
	return []framework{netHTTP(), gin(), echo(), httprouter(), fiber(), grpcServer(), connectServer()}
}

// netHTTP probes the standard library's net/http, which chi and gorilla/mux
// dispatch through as well:
//   - net/http.HandlerFunc.ServeHTTP, whose receiver is the handler function
//     (plain functions, closures and method values registered with
//     HandleFunc or converted with http.HandlerFunc);
//   - every user-code ServeHTTP reachable through an http.Handler itab
//     (struct handlers, with value receivers through their pointer wrapper).
//
// Both have the same register layout at the probe: RAX the receiver, RBX/RCX
// the ResponseWriter, RDI the *http.Request. Middleware written as handlers
// hit too; the innermost hit of a request names the origin.
func netHTTP() framework {
	return framework{
		name: "net/http",
		targets: func(s *scan) ([]target, error) {
			const handlerFunc = "net/http.HandlerFunc.ServeHTTP"
			entry, ok := s.funcEntry(handlerFunc)
			if !ok {
				return nil, nil
			}
			reqCtx, err := s.requestCtx()
			if err != nil {
				return nil, err
			}
			ctx := chain(regArg3, reqCtx)
			ts := []target{{name: handlerFunc, entry: entry, recipe: recipeLoad(chain(regArg0, 0), ctx)}}
			seen := map[uint64]bool{entry: true}
			for _, it := range s.itabs {
				if it.iface != "net/http.Handler" || len(it.fun) == 0 {
					continue
				}
				fn := it.fun[0]
				if fn == 0 || seen[fn] {
					continue
				}
				name, ok := s.funcName(fn)
				if !ok || !s.isUser(name) {
					continue
				}
				seen[fn] = true
				ts = append(ts, target{name: name, entry: fn, recipe: recipeSelf(ctx)})
			}
			return ts, nil
		},
	}
}

// gin reads the route's handler, the last element of c.handlers (global,
// group and route middleware come first), with the context from
// c.Request.ctx, at one of two places:
//   - the tracing middleware's call of c.Next() (dd-trace-go v1's contrib), when
//     the binary has it and it calls (*Context).Next exactly once: one hit
//     per request, right after the span was put in c.Request, with RAX the
//     *gin.Context at the call;
//   - otherwise the entry of github.com/gin-gonic/gin.(*Context).Next,
//     RAX the *gin.Context: one hit per c.Next() call, gin's own first call
//     included, which runs before any tracing middleware and finds no span;
//     every hit under the span names the same handler.
//
// Only the first of these is probed: the tracing middleware runs on every
// traced request, so the Next probe would add hits and no records.
func gin() framework {
	return framework{
		name: "gin",
		targets: func(s *scan) ([]target, error) {
			const next = "github.com/gin-gonic/gin.(*Context).Next"
			entry, ok := s.funcEntry(next)
			if !ok {
				return nil, nil
			}
			const ctxType = "github.com/gin-gonic/gin.Context"
			handlers, err := s.offset(ctxType, "handlers")
			if err != nil {
				return nil, fmt.Errorf("gin.Context.handlers: %w", err)
			}
			request, err := s.offset(ctxType, "Request")
			if err != nil {
				return nil, fmt.Errorf("gin.Context.Request: %w", err)
			}
			reqCtx, err := s.requestCtx()
			if err != nil {
				return nil, err
			}
			r := recipeSliceLast(chain(regArg0, handlers), chain(regArg0, request, reqCtx))
			// The tracing middleware of dd-trace-go's gin contrib: the
			// closure Middleware returns, which puts the request's span in
			// c.Request's context and then calls c.Next() once. (v2's
			// contrib/gin-gonic/gin/v2 cannot be fetched here to check its
			// code, so it is left to the (*Context).Next probe.)
			tracerMiddleware := []string{
				"gopkg.in/DataDog/dd-trace-go.v1/contrib/gin-gonic/gin.Middleware.func1",
			}
			for _, mw := range tracerMiddleware {
				f, ok := s.sym.Func(mw)
				if !ok {
					continue
				}
				code, err := readCode(s.exe, f.Entry, f.End)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", mw, err)
				}
				calls := directCalls(code, f.Entry, entry)
				if len(calls) != 1 {
					continue // not the shape described above: probe Next
				}
				in := r
				in.Flags = uint8(bpf.OriginRecipeFlagsRECIPE_IN_BODY)
				return []target{{name: mw, entry: f.Entry, at: f.Entry + uint64(calls[0]), recipe: in}}, nil
			}
			return []target{{name: next, entry: entry, recipe: r}}, nil
		},
	}
}

// directCalls returns the offsets in code, which starts at file virtual
// address base, of the direct calls (CALL rel32) of the function at
// address fn. Decoding stops at the first bytes that do not decode.
func directCalls(code []byte, base, fn uint64) []int {
	var out []int
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			break
		}
		if rel, ok := inst.Args[0].(x86asm.Rel); ok && inst.Op == x86asm.CALL &&
			base+uint64(off+inst.Len)+uint64(int64(rel)) == fn {
			out = append(out, off)
		}
		off += inst.Len
	}
	return out
}

// echo probes the closure github.com/labstack/echo/v4.(*Echo).add.func1
// that the router stores for every route (Echo.Add and Group.Add both
// register through it): it runs after the global middleware (the tracer's
// among them) and applies the route's own middleware to the route's handler
// before calling it, so it is hit once per request. Its closure context
// (RDX) holds the captured handler right after the code pointer; its
// argument c (RAX/RBX, an echo.Context) is an *echo.context whose request
// holds the context.
func echo() framework {
	return framework{
		name: "echo",
		targets: func(s *scan) ([]target, error) {
			const add = "github.com/labstack/echo/v4.(*Echo).add.func1"
			entry, ok := s.funcEntry(add)
			if !ok {
				return nil, nil
			}
			request, err := s.offset("github.com/labstack/echo/v4.context", "request")
			if err != nil {
				return nil, fmt.Errorf("echo.context.request: %w", err)
			}
			reqCtx, err := s.requestCtx()
			if err != nil {
				return nil, err
			}
			// A closure object is {F uintptr; captured variables in the
			// order the body first uses them}: handler comes first.
			const capturedHandler = 8
			r := recipeLoad(chain(regClosure, capturedHandler, 0), chain(regArg1, request, reqCtx))
			return []target{{name: add, entry: entry, recipe: r}}, nil
		},
	}
}

// httprouter probes the call of the route's httprouter.Handle inside
// github.com/julienschmidt/httprouter.(*Router).ServeHTTP (handle(w, req,
// ps)): the only closure call there. At the call, RDX is the handle's
// funcval and RCX the *http.Request (w takes RAX and RBX). Handlers
// registered as http.Handler or http.HandlerFunc go through httprouter's
// own adapters and also hit the net/http probes.
func httprouter() framework {
	return framework{
		name: "httprouter",
		targets: func(s *scan) ([]target, error) {
			const serve = "github.com/julienschmidt/httprouter.(*Router).ServeHTTP"
			f, ok := s.sym.Func(serve)
			if !ok {
				return nil, nil
			}
			reqCtx, err := s.requestCtx()
			if err != nil {
				return nil, err
			}
			code, err := readCode(s.exe, f.Entry, f.End)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", serve, err)
			}
			calls := closureCalls(code)
			if len(calls) != 1 {
				return nil, fmt.Errorf("%s: %d closure calls, want the handle call only", serve, len(calls))
			}
			r := recipeLoad(chain(regClosure, 0), chain(regArg2, reqCtx))
			r.Flags = uint8(bpf.OriginRecipeFlagsRECIPE_IN_BODY)
			return []target{{name: serve, entry: f.Entry, at: f.Entry + uint64(calls[0]), recipe: r}}, nil
		},
	}
}

// readCode returns the bytes of the code between file virtual addresses
// start and end.
func readCode(f *elf.File, start, end uint64) ([]byte, error) {
	if end <= start || end-start > 1<<20 {
		return nil, fmt.Errorf("function bounds %#x-%#x", start, end)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || start < p.Vaddr || end > p.Vaddr+p.Filesz {
			continue
		}
		code := make([]byte, end-start)
		if _, err := p.ReadAt(code, int64(start-p.Vaddr)); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read code at %#x: %w", start, err)
		}
		return code, nil
	}
	return nil, fmt.Errorf("code at %#x is in no executable segment", start)
}

// closureCalls returns the offsets in code of Go closure calls whose
// function value was not already in RDX: the code pointer is loaded from
// word 0 of a register X (MOVQ (X), R), X is then moved to RDX, the closure
// context, and R is called. That is how the compiler calls a function value
// it holds in a register, such as one a call has just returned
// (httprouter's handle); deferred and stored closures are loaded into RDX
// first and called through (RDX), and interface methods through an itab.
// Decoding stops at the first bytes that do not decode.
func closureCalls(code []byte) []int {
	var out []int
	var target, fv x86asm.Reg // register holding the code pointer, and the funcval it came from
	inDX := false             // fv has been copied to RDX since the load
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			break
		}
		dst, _ := inst.Args[0].(x86asm.Reg)
		switch {
		case inst.Op == x86asm.MOV && dst != 0 && derefBase(inst.Args[1]) != 0 && derefBase(inst.Args[1]) != x86asm.RDX:
			target, fv, inDX = dst, derefBase(inst.Args[1]), false
		case inst.Op == x86asm.MOV && dst == x86asm.RDX && target != 0 && inst.Args[1] == fv:
			inDX = true
		case inst.Op == x86asm.CALL:
			if r, ok := inst.Args[0].(x86asm.Reg); ok && target != 0 && r == target && inDX {
				out = append(out, off)
			}
			target, fv, inDX = 0, 0, false
		case dst != 0 && (dst == target || (dst == fv && !inDX)):
			target, fv, inDX = 0, 0, false // overwritten before the call
		case dst == x86asm.RDX:
			inDX = false
		}
		off += inst.Len
	}
	return out
}

// derefBase returns X for a memory operand (X) with no index, displacement
// or segment, else 0.
func derefBase(a x86asm.Arg) x86asm.Reg {
	m, ok := a.(x86asm.Mem)
	if !ok || m.Index != 0 || m.Disp != 0 || m.Segment != 0 {
		return 0
	}
	return m.Base
}
