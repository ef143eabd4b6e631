package probes

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/originagent/originagent/bpf"
)

// fiber probes github.com/gofiber/fiber/v2.(*App).next where it marks the
// request as matched by a route that is not middleware (c.matched = true,
// only when !c.matched && !route.use): once per request, after every
// app.Use middleware before the route (the tracer's among them) has run,
// with c.route the route whose handlers are group and route middleware, then
// the route's handler, last. The probe sits on that store, whose base
// register holds the *fiber.Ctx.
//
// fiber keeps the request's user context (c.UserContext(), where the
// dd-trace-go contrib puts the span) in fasthttp's per-request user values
// under the string key userContextKey: the recipe searches
// c.fasthttp.userValues for it (RECIPE_CTX_KV).
func fiber() framework {
	return framework{
		name: "fiber",
		targets: func(s *scan) ([]target, error) {
			const next = "github.com/gofiber/fiber/v2.(*App).next"
			f, ok := s.sym.Func(next)
			if !ok {
				return nil, nil
			}
			const ctxType = "github.com/gofiber/fiber/v2.Ctx"
			var offs [4]uint16
			for i, fp := range []struct{ typ, field string }{
				{ctxType, "matched"},
				{ctxType, "route"},
				{"github.com/gofiber/fiber/v2.Route", "Handlers"},
				{ctxType, "fasthttp"},
			} {
				off, err := s.offset(fp.typ, fp.field)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", fp.typ, fp.field, err)
				}
				offs[i] = off
			}
			matched, route, handlers, fasthttp := offs[0], offs[1], offs[2], offs[3]
			// fasthttp keeps the user values in RequestCtx (v1.51) or in
			// its embedded Request (later releases).
			const requestCtx = "github.com/valyala/fasthttp.RequestCtx"
			userValues, err := s.offset(requestCtx, "userValues")
			if err != nil {
				var err2 error
				if userValues, err2 = s.offset(requestCtx, "Request", "userValues"); err2 != nil {
					return nil, fmt.Errorf("fasthttp user values: %w; %w", err, err2)
				}
			}
			strType, err := s.types.TypeAddrs("string")
			if err != nil || len(strType) != 1 {
				return nil, fmt.Errorf("string type descriptor: %d found (%v)", len(strType), err)
			}
			code, err := readCode(s.exe, f.Entry, f.End)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", next, err)
			}
			stores := byteStores(code, 1, int64(matched))
			if len(stores) != 1 {
				return nil, fmt.Errorf("%s: %d stores of true to Ctx.matched, want 1", next, len(stores))
			}
			reg, ok := recipeReg(stores[0].base)
			if !ok {
				return nil, fmt.Errorf("%s: *fiber.Ctx in %v, which no recipe names", next, stores[0].base)
			}
			r := recipeSliceLast(chain(reg, route, handlers), chain(reg, fasthttp, userValues))
			r.Flags = uint8(bpf.OriginRecipeFlagsRECIPE_IN_BODY | bpf.OriginRecipeFlagsRECIPE_CTX_KV)
			// fiber's userContextKey.
			if err := setKey(&r, "__local_user_context__", strType[0]); err != nil {
				return nil, err
			}
			return []target{{name: next, entry: f.Entry, at: f.Entry + uint64(stores[0].off), recipe: r}}, nil
		},
	}
}

// setKey makes r's context the value of a key/value slice under the string
// key, whose type descriptor is at typ.
func setKey(r *bpf.OriginRecipe, key string, typ uint64) error {
	if len(key) == 0 || len(key) > int(bpf.OriginKvLimitsKV_KEY_MAX) {
		return fmt.Errorf("user value key %q: length not in 1..%d", key, bpf.OriginKvLimitsKV_KEY_MAX)
	}
	r.KeyLen = uint8(len(key))
	r.KeyType = typ
	for i := 0; i < len(key); i++ {
		r.Key[i] = int8(key[i])
	}
	return nil
}

// byteStore is a MOVB of an immediate to disp(base).
type byteStore struct {
	off  int
	base x86asm.Reg
}

// byteStores returns the stores of the byte imm to disp(X), for any base
// register X without index, in code. Decoding stops at the first bytes
// that do not decode.
func byteStores(code []byte, imm, disp int64) []byteStore {
	var out []byteStore
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			break
		}
		if inst.Op == x86asm.MOV && inst.MemBytes == 1 {
			m, ok := inst.Args[0].(x86asm.Mem)
			v, isImm := inst.Args[1].(x86asm.Imm)
			if ok && isImm && int64(v) == imm && m.Base != 0 && m.Index == 0 && m.Segment == 0 && m.Disp == disp {
				out = append(out, byteStore{off: off, base: m.Base})
			}
		}
		off += inst.Len
	}
	return out
}

// recipeReg names a general register as a recipe chain starts from it.
func recipeReg(r x86asm.Reg) (bpf.OriginReg, bool) {
	switch r {
	case x86asm.RAX:
		return bpf.OriginRegREG_RAX, true
	case x86asm.RBX:
		return bpf.OriginRegREG_RBX, true
	case x86asm.RCX:
		return bpf.OriginRegREG_RCX, true
	case x86asm.RDI:
		return bpf.OriginRegREG_RDI, true
	case x86asm.RSI:
		return bpf.OriginRegREG_RSI, true
	case x86asm.R8:
		return bpf.OriginRegREG_R8, true
	case x86asm.R9:
		return bpf.OriginRegREG_R9, true
	case x86asm.R10:
		return bpf.OriginRegREG_R10, true
	case x86asm.R11:
		return bpf.OriginRegREG_R11, true
	case x86asm.RDX:
		return bpf.OriginRegREG_RDX, true
	}
	return 0, false
}
