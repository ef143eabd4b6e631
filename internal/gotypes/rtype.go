package gotypes

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Layout of internal/abi on 64-bit targets (internal/abi/type.go). These
// offsets have been stable since Go 1.14 except for MapType, which grew when
// Go 1.24 made Swiss tables the default map implementation.
const (
	abiTypeSize      = 48 // abi.Type
	offTFlag         = 20
	offKind          = 23
	offStr           = 40
	offPtrToThis     = 44
	offElem          = 48 // PtrType/SliceType/ArrayType/ChanType .Elem, MapType.Key
	offMapElem       = 56
	offArraySlice    = 56
	offArrayLen      = 64
	offChanDir       = 56
	offStructFields  = 56 // StructType.Fields / InterfaceType.Methods (after PkgPath Name)
	offFuncInCount   = 48
	offFuncOutCount  = 50
	uncommonTypeSize = 16
	structFieldSize  = 24
	imethodSize      = 8
	methodSize       = 16

	tflagUncommon  = 1 << 0
	tflagExtraStar = 1 << 1
	tflagNamed     = 1 << 2

	// kindMask strips the flag bits Go <= 1.25 kept in Kind_.
	kindMask = 0x1f

	nameFlagEmbedded = 1 << 3
	nameFlagTag      = 1 << 1
)

// maxNameLen bounds decoded names; real ones are far shorter.
const maxNameLen = 1 << 16

// errBadType marks a type descriptor that does not decode.
var errBadType = errors.New("malformed type descriptor")

// rtype is a decoded abi.Type header plus its uncommon part.
type rtype struct {
	addr      uint64
	size      uint64
	tflag     uint8
	kind      reflect.Kind
	str       string // Str with the extra star removed
	ptrToThis uint64 // 0 when absent
	uncommon  uint64 // address of abi.UncommonType, 0 when absent
}

func (r *rtype) named() bool { return r.tflag&tflagNamed != 0 }

// rtypes decodes runtime type descriptors of one module and memoizes them.
type rtypes struct {
	m        *memory
	md       *moduledata
	mapSize  uint64 // sizeof(abi.MapType), version dependent
	byAddr   map[uint64]*rtype
	names    map[uint64]string // canonical names
	strCache map[uint64]string // decoded abi.Name by address

	// budget bounds the array entries (fields, methods, parameters) one
	// top-level operation may decode. In a real binary every array lives
	// in its type's symbol, so their total is bounded by the size of the
	// types section; corrupt input with overlapping arrays is not, and
	// would otherwise cost quadratic time and memory.
	budget int64
}

// errBudget reports a type graph larger than its section can hold.
var errBudget = errors.New("type data too large for the types section (corrupt?)")

// resetBudget starts a top-level operation.
func (rs *rtypes) resetBudget() {
	rs.budget = int64((rs.md.etypes-rs.md.types)/4) + 1<<16
}

func (rs *rtypes) spend(n uint64) error {
	rs.budget -= int64(n)
	if rs.budget < 0 {
		return errBudget
	}
	return nil
}

func newRtypes(m *memory, md *moduledata, goVersion string) *rtypes {
	mapSize := uint64(112) // Swiss-table abi.MapType, Go 1.24-1.26
	if minor := goMinor(goVersion); md.contiguous {
		// Go 1.27 replaced SlotSize with KeysOff, KeyStride, ElemsOff and
		// ElemStride. The walk of the typelink descriptors, which include
		// map types, checks this size against the binary.
		mapSize = 136
	} else if minor >= 0 && minor < 24 {
		mapSize = 88
	}
	return &rtypes{
		m: m, md: md, mapSize: mapSize,
		byAddr:   make(map[uint64]*rtype),
		names:    make(map[uint64]string),
		strCache: make(map[uint64]string),
	}
}

func (rs *rtypes) inTypes(addr, n uint64) bool {
	return addr >= rs.md.types && addr < rs.md.etypes && n <= rs.md.etypes-addr
}

// off resolves a nameOff/typeOff relative to moduledata.types; 0 if invalid.
func (rs *rtypes) off(o int32) uint64 {
	if o == -1 {
		return 0
	}
	a := rs.md.types + uint64(int64(o))
	if !rs.inTypes(a, 1) {
		return 0
	}
	return a
}

// name decodes an abi.Name: flag byte, varint length, bytes, optional tag.
func (rs *rtypes) name(addr uint64) (s string, flags byte, err error) {
	if !rs.inTypes(addr, 2) {
		return "", 0, fmt.Errorf("name at %#x: %w", addr, errBadAddr)
	}
	hdr, err := rs.m.bytes(addr, min(rs.md.etypes-addr, 11))
	if err != nil {
		return "", 0, fmt.Errorf("name at %#x: %w", addr, err)
	}
	flags = hdr[0]
	if s, ok := rs.strCache[addr]; ok {
		return s, flags, nil
	}
	var n uint64
	i := 1
	for shift := 0; ; shift += 7 {
		if i >= len(hdr) || shift > 28 {
			return "", 0, fmt.Errorf("name at %#x: bad length: %w", addr, errBadType)
		}
		x := hdr[i]
		i++
		n |= uint64(x&0x7f) << shift
		if x&0x80 == 0 {
			break
		}
	}
	if n > maxNameLen {
		return "", 0, fmt.Errorf("name at %#x: length %d: %w", addr, n, errBadType)
	}
	start := addr + uint64(i)
	if !rs.inTypes(start, n) {
		return "", 0, fmt.Errorf("name at %#x: %w", addr, errBadAddr)
	}
	b, err := rs.m.bytes(start, n)
	if err != nil {
		return "", 0, fmt.Errorf("name at %#x: %w", addr, err)
	}
	s = string(b)
	rs.strCache[addr] = s
	return s, flags, nil
}

func (rs *rtypes) header(addr uint64) (*rtype, error) {
	if r, ok := rs.byAddr[addr]; ok {
		return r, nil
	}
	if !rs.inTypes(addr, abiTypeSize) || addr%8 != 0 {
		return nil, fmt.Errorf("type at %#x: outside the types section: %w", addr, errBadType)
	}
	b, err := rs.m.bytes(addr, abiTypeSize)
	if err != nil {
		return nil, fmt.Errorf("type at %#x: %w", addr, err)
	}
	o := rs.m.order
	r := &rtype{
		addr:  addr,
		size:  o.Uint64(b),
		tflag: b[offTFlag],
		kind:  reflect.Kind(b[offKind] & kindMask),
	}
	if r.kind == reflect.Invalid || r.kind > reflect.UnsafePointer {
		return nil, fmt.Errorf("type at %#x: kind %d: %w", addr, b[offKind], errBadType)
	}
	strAddr := rs.off(int32(o.Uint32(b[offStr:])))
	if strAddr == 0 {
		return nil, fmt.Errorf("type at %#x: bad string offset: %w", addr, errBadType)
	}
	if r.str, _, err = rs.name(strAddr); err != nil {
		return nil, fmt.Errorf("type at %#x: %w", addr, err)
	}
	if r.tflag&tflagExtraStar != 0 {
		r.str = strings.TrimPrefix(r.str, "*")
	}
	if p := int32(o.Uint32(b[offPtrToThis:])); p != 0 {
		r.ptrToThis = rs.off(p)
	}
	if r.tflag&tflagUncommon != 0 {
		r.uncommon = addr + rs.kindSize(r.kind)
		if !rs.inTypes(r.uncommon, uncommonTypeSize) {
			return nil, fmt.Errorf("type at %#x: uncommon type: %w", addr, errBadType)
		}
	}
	rs.byAddr[addr] = r
	return r, nil
}

// kindSize is the size of the kind-specific abi struct (abi.PtrType, ...),
// which the optional abi.UncommonType follows.
func (rs *rtypes) kindSize(k reflect.Kind) uint64 {
	switch k {
	case reflect.Struct, reflect.Interface:
		return 80
	case reflect.Pointer, reflect.Slice, reflect.Func:
		return 56
	case reflect.Array:
		return 72
	case reflect.Chan:
		return 64
	case reflect.Map:
		return rs.mapSize
	}
	return abiTypeSize
}

func (rs *rtypes) ptrAt(addr uint64) (uint64, error) { return rs.m.ptr(addr) }

// typePtr reads a *abi.Type field; 0 means nil.
func (rs *rtypes) typePtr(addr uint64) (uint64, error) {
	p, err := rs.m.ptr(addr)
	if err != nil {
		return 0, err
	}
	if p != 0 && !rs.inTypes(p, abiTypeSize) {
		return 0, fmt.Errorf("type pointer %#x at %#x: %w", p, addr, errBadType)
	}
	return p, nil
}

func (rs *rtypes) elem(r *rtype) (uint64, error) { return rs.typePtr(r.addr + offElem) }

// pkgPath returns the import path recorded in the uncommon type.
func (rs *rtypes) pkgPath(r *rtype) (string, error) {
	if r.uncommon == 0 {
		return "", nil
	}
	o, err := rs.m.u32(r.uncommon)
	if err != nil {
		return "", err
	}
	if o == 0 {
		return "", nil
	}
	a := rs.off(int32(o))
	if a == 0 {
		return "", fmt.Errorf("type at %#x: bad pkgPath offset: %w", r.addr, errBadType)
	}
	s, _, err := rs.name(a)
	return s, err
}

// canonical returns the canonical name of the type at addr: import path plus
// name for named types, built recursively for unnamed pointer, slice, array,
// map, chan and func types, the runtime's string for unnamed structs and
// interfaces.
func (rs *rtypes) canonical(addr uint64) (string, error) {
	return rs.canonicalDepth(addr, 0)
}

func (rs *rtypes) canonicalDepth(addr uint64, depth int) (string, error) {
	if s, ok := rs.names[addr]; ok {
		return s, nil
	}
	if depth > 32 {
		return "", fmt.Errorf("type at %#x: nesting too deep: %w", addr, errBadType)
	}
	r, err := rs.header(addr)
	if err != nil {
		return "", err
	}
	var s string
	sub := func(a uint64) string {
		if err != nil {
			return ""
		}
		if a == 0 {
			err = fmt.Errorf("type at %#x: nil element: %w", addr, errBadType)
			return ""
		}
		var x string
		x, err = rs.canonicalDepth(a, depth+1)
		return x
	}
	if r.named() {
		var pkg string
		if pkg, err = rs.pkgPath(r); err != nil {
			return "", err
		}
		s = qualify(pkg, r.str)
	} else {
		switch r.kind {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan, reflect.Map:
			var e uint64
			if e, err = rs.elem(r); err != nil {
				return "", err
			}
			switch r.kind {
			case reflect.Pointer:
				s = "*" + sub(e)
			case reflect.Slice:
				s = "[]" + sub(e)
			case reflect.Array:
				var n uint64
				if n, err = rs.m.u64(addr + offArrayLen); err == nil {
					s = "[" + strconv.FormatUint(n, 10) + "]" + sub(e)
				}
			case reflect.Chan:
				var dir uint64
				if dir, err = rs.m.u64(addr + offChanDir); err == nil {
					prefix := "chan "
					switch dir {
					case 1:
						prefix = "<-chan "
					case 2:
						prefix = "chan<- "
					}
					el := sub(e)
					if dir == 3 && strings.HasPrefix(el, "<-chan") {
						el = "(" + el + ")"
					}
					s = prefix + el
				}
			case reflect.Map:
				var v uint64
				if v, err = rs.typePtr(addr + offMapElem); err == nil {
					k := sub(e)
					s = "map[" + k + "]" + sub(v)
				}
			}
		case reflect.Func:
			// The runtime's string uses package names ("func() *ecdh.PublicKey"
			// is ambiguous between crypto/ecdh and its fips140 twin).
			var in, out []uint64
			var variadic bool
			if in, out, variadic, err = rs.funcParams(r); err == nil {
				var sb strings.Builder
				sb.WriteString("func(")
				for i, a := range in {
					if i > 0 {
						sb.WriteString(", ")
					}
					p := sub(a)
					if variadic && i == len(in)-1 {
						p = "..." + strings.TrimPrefix(p, "[]")
					}
					sb.WriteString(p)
				}
				sb.WriteString(")")
				if len(out) == 1 {
					sb.WriteString(" " + sub(out[0]))
				} else if len(out) > 1 {
					sb.WriteString(" (")
					for i, a := range out {
						if i > 0 {
							sb.WriteString(", ")
						}
						sb.WriteString(sub(a))
					}
					sb.WriteString(")")
				}
				s = sb.String()
			}
		default:
			s = r.str
		}
	}
	if err != nil {
		return "", err
	}
	rs.names[addr] = s
	return s, nil
}

// qualify turns the runtime's "pkgname.Name[args]" into "import/path.Name[args]".
func qualify(pkgPath, str string) string {
	if pkgPath == "" || strings.HasPrefix(str, pkgPath+".") {
		// Builtins, and packages whose name is their path (main,
		// go.shape for generic shapes).
		return str
	}
	head := str
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	if i := strings.IndexByte(head, '.'); i >= 0 {
		return pkgPath + "." + str[i+1:]
	}
	return pkgPath + "." + str
}

// children returns the addresses of the types directly referenced by r.
func (rs *rtypes) children(r *rtype, out []uint64) ([]uint64, error) {
	if r.ptrToThis != 0 {
		out = append(out, r.ptrToThis)
	}
	add := func(a uint64, err error) error {
		if err != nil {
			return err
		}
		if a != 0 {
			out = append(out, a)
		}
		return nil
	}
	var err error
	switch r.kind {
	case reflect.Pointer, reflect.Slice, reflect.Chan:
		err = add(rs.elem(r))
	case reflect.Array:
		if err = add(rs.elem(r)); err == nil {
			err = add(rs.typePtr(r.addr + offArraySlice))
		}
	case reflect.Map:
		if err = add(rs.elem(r)); err == nil {
			err = add(rs.typePtr(r.addr + offMapElem))
		}
	case reflect.Struct:
		var fs []rfield
		if fs, err = rs.fields(r); err == nil {
			for _, f := range fs {
				out = append(out, f.typ)
			}
		}
	case reflect.Interface:
		var ms []rimethod
		if ms, err = rs.imethods(r); err == nil {
			for _, m := range ms {
				if m.typ != 0 {
					out = append(out, m.typ)
				}
			}
		}
	case reflect.Func:
		var in, outs []uint64
		if in, outs, _, err = rs.funcParams(r); err == nil {
			out = append(out, in...)
			out = append(out, outs...)
		}
	}
	if err != nil {
		return out, err
	}
	ms, err := rs.methods(r)
	for _, m := range ms {
		if m.typ != 0 {
			out = append(out, m.typ)
		}
	}
	return out, err
}

// sliceHeader reads a (ptr, len) pair, bounding len by max.
func (rs *rtypes) sliceHeader(addr uint64, max uint64) (uint64, uint64, error) {
	p, err := rs.m.ptr(addr)
	if err != nil {
		return 0, 0, err
	}
	n, err := rs.m.u64(addr + 8)
	if err != nil {
		return 0, 0, err
	}
	if n > max {
		return 0, 0, fmt.Errorf("slice at %#x: length %d: %w", addr, n, errBadType)
	}
	if n > 0 && !rs.inTypes(p, n*8) {
		// The arrays of fields and interface methods are part of their
		// type's symbol.
		return 0, 0, fmt.Errorf("slice at %#x: array %#x outside the types section: %w", addr, p, errBadType)
	}
	if err := rs.spend(n); err != nil {
		return 0, 0, err
	}
	return p, n, nil
}

type rfield struct {
	name     string
	typ      uint64
	offset   uint64
	embedded bool
}

const maxFields = 1 << 16

func (rs *rtypes) fields(r *rtype) ([]rfield, error) {
	p, n, err := rs.sliceHeader(r.addr+offStructFields, maxFields)
	if err != nil || n == 0 {
		return nil, err
	}
	b, err := rs.m.bytes(p, n*structFieldSize)
	if err != nil {
		return nil, fmt.Errorf("fields of type at %#x: %w", r.addr, err)
	}
	_ = b // bounds check of the whole array; pointers go through relocations
	out := make([]rfield, 0, n)
	for i := uint64(0); i < n; i++ {
		fa := p + i*structFieldSize
		na, err := rs.m.ptr(fa)
		if err != nil {
			return nil, err
		}
		name, flags, err := rs.name(na)
		if err != nil {
			return nil, fmt.Errorf("field %d of type at %#x: %w", i, r.addr, err)
		}
		t, err := rs.typePtr(fa + 8)
		if err != nil {
			return nil, err
		}
		if t == 0 {
			return nil, fmt.Errorf("field %d of type at %#x: nil type: %w", i, r.addr, errBadType)
		}
		off, err := rs.m.u64(fa + 16)
		if err != nil {
			return nil, err
		}
		out = append(out, rfield{name: name, typ: t, offset: off, embedded: flags&nameFlagEmbedded != 0})
	}
	return out, nil
}

type rimethod struct {
	name string
	typ  uint64
}

func (rs *rtypes) imethods(r *rtype) ([]rimethod, error) {
	p, n, err := rs.sliceHeader(r.addr+offStructFields, maxFields)
	if err != nil || n == 0 {
		return nil, err
	}
	b, err := rs.m.bytes(p, n*imethodSize)
	if err != nil {
		return nil, fmt.Errorf("methods of interface at %#x: %w", r.addr, err)
	}
	out := make([]rimethod, 0, n)
	o := rs.m.order
	for i := uint64(0); i < n; i++ {
		e := b[i*imethodSize:]
		na := rs.off(int32(o.Uint32(e)))
		if na == 0 {
			return nil, fmt.Errorf("method %d of interface at %#x: bad name: %w", i, r.addr, errBadType)
		}
		name, _, err := rs.name(na)
		if err != nil {
			return nil, err
		}
		out = append(out, rimethod{name: name, typ: rs.off(int32(o.Uint32(e[4:])))})
	}
	return out, nil
}

type rmethod struct {
	name     string
	typ      uint64 // func type without receiver; 0 if the linker dropped it
	ifn, tfn uint64 // text addresses; 0 if unreachable
}

// methods decodes the uncommon type's method table.
func (rs *rtypes) methods(r *rtype) ([]rmethod, error) {
	if r.uncommon == 0 {
		return nil, nil
	}
	u, err := rs.m.bytes(r.uncommon, uncommonTypeSize)
	if err != nil {
		return nil, err
	}
	o := rs.m.order
	n := uint64(o.Uint16(u[4:]))
	moff := uint64(o.Uint32(u[8:]))
	if n == 0 {
		return nil, nil
	}
	p := r.uncommon + moff
	if !rs.inTypes(p, n*methodSize) {
		return nil, fmt.Errorf("methods of type at %#x: %w", r.addr, errBadType)
	}
	if err := rs.spend(n); err != nil {
		return nil, err
	}
	b, err := rs.m.bytes(p, n*methodSize)
	if err != nil {
		return nil, err
	}
	text := func(v uint32) uint64 {
		if int32(v) == -1 {
			return 0
		}
		return rs.md.text + uint64(v)
	}
	out := make([]rmethod, 0, n)
	for i := uint64(0); i < n; i++ {
		e := b[i*methodSize:]
		na := rs.off(int32(o.Uint32(e)))
		if na == 0 {
			return nil, fmt.Errorf("method %d of type at %#x: bad name: %w", i, r.addr, errBadType)
		}
		name, _, err := rs.name(na)
		if err != nil {
			return nil, err
		}
		out = append(out, rmethod{
			name: name,
			typ:  rs.off(int32(o.Uint32(e[4:]))),
			ifn:  text(o.Uint32(e[8:])),
			tfn:  text(o.Uint32(e[12:])),
		})
	}
	return out, nil
}

// funcParams returns the parameter and result types of a func type.
func (rs *rtypes) funcParams(r *rtype) (in, out []uint64, variadic bool, err error) {
	b, err := rs.m.bytes(r.addr+offFuncInCount, 4)
	if err != nil {
		return nil, nil, false, err
	}
	nin := uint64(rs.m.order.Uint16(b))
	nout := uint64(rs.m.order.Uint16(b[2:]))
	variadic = nout&(1<<15) != 0
	nout &= 1<<15 - 1
	p := r.addr + 56
	if r.uncommon != 0 {
		p += uncommonTypeSize
	}
	if !rs.inTypes(p, 8*(nin+nout)) {
		return nil, nil, false, fmt.Errorf("func type at %#x: parameters outside the types section: %w", r.addr, errBadType)
	}
	if err := rs.spend(nin + nout); err != nil {
		return nil, nil, false, err
	}
	for i := uint64(0); i < nin+nout; i++ {
		t, err := rs.typePtr(p + 8*i)
		if err != nil {
			return nil, nil, false, err
		}
		if t == 0 {
			return nil, nil, false, fmt.Errorf("func type at %#x: nil parameter: %w", r.addr, errBadType)
		}
		if i < nin {
			in = append(in, t)
		} else {
			out = append(out, t)
		}
	}
	return in, out, variadic, nil
}

// roots returns the type addresses the linker lists: typelinks and the
// interface and concrete types of every itab. The walk from them reaches
// every descriptor that has a type:* symbol in the test corpus and in the
// go command, so the symbol table (absent when stripped) is not used and
// stripped and unstripped builds give the same answers.
func (rs *rtypes) roots() ([]uint64, error) {
	out, err := rs.typelinks()
	if err != nil {
		return nil, err
	}
	its, err := rs.itabs()
	if err != nil {
		return nil, err
	}
	for _, it := range its {
		for _, o := range []uint64{0, 8} {
			if t, err := rs.typePtr(it + o); err == nil && t != 0 {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// typelinks returns the addresses of the typelink descriptors: the
// unnamed types reflect can construct (Go 1.18-1.26: the typelinks slice
// of offsets; Go 1.27+: the descriptors from types+8 to
// types+typedesclen, one after the other, as runtime.moduleTypelinks
// walks them). Bad entries of the slice are left out; the Go 1.27 walk
// must end exactly at typedesclen, or the descriptor sizes this package
// assumes are not the binary's.
func (rs *rtypes) typelinks() ([]uint64, error) {
	md := rs.md
	var out []uint64
	if !md.contiguous {
		if md.typelinks.len > 0 {
			if b, err := rs.m.bytes(md.typelinks.ptr, 4*md.typelinks.len); err == nil {
				for i := uint64(0); i < md.typelinks.len; i++ {
					if a := rs.off(int32(rs.m.order.Uint32(b[4*i:]))); a != 0 {
						out = append(out, a)
					}
				}
			}
		}
		return out, nil
	}
	end := md.types + md.typedesclen
	for a := md.types + 8; a < end; {
		a = (a + 7) &^ 7
		r, err := rs.header(a)
		if err != nil {
			return nil, fmt.Errorf("typelink descriptors (%s layout): %w", md.layout, err)
		}
		n, err := rs.descriptorSize(r)
		if err != nil {
			return nil, fmt.Errorf("typelink descriptors (%s layout): %w", md.layout, err)
		}
		out = append(out, a)
		if a += n; a > end {
			return nil, fmt.Errorf("typelink descriptor at %#x of %d bytes overruns typedesclen (%s layout; a newer type descriptor layout?): %w",
				a-n, n, md.layout, errBadType)
		}
	}
	return out, nil
}

// itabs returns the addresses of the statically allocated itabs (Go
// 1.18-1.26: the itablinks slice; Go 1.27+: the itabs from
// types+itaboffset, one after the other, as runtime.addModuleItabs walks
// them).
func (rs *rtypes) itabs() ([]uint64, error) {
	md := rs.md
	var out []uint64
	if !md.contiguous {
		for i := uint64(0); i < md.itablinks.len; i++ {
			it, err := rs.m.ptr(md.itablinks.ptr + 8*i)
			if err != nil {
				return nil, fmt.Errorf("itablinks[%d]: %w", i, err)
			}
			out = append(out, it)
		}
		return out, nil
	}
	end := md.types + md.itaboffset + md.itabsize
	for a := md.types + md.itaboffset; a < end; {
		n, err := rs.itabSize(a)
		if err != nil {
			return nil, fmt.Errorf("itabs (%s layout): %w", md.layout, err)
		}
		out = append(out, a)
		if a += n; a > end {
			return nil, fmt.Errorf("itab at %#x of %d bytes overruns itabsize (%s layout): %w", a-n, n, md.layout, errBadType)
		}
	}
	return out, nil
}

// itabSize is abi.ITab.Size: Inter, Type, Hash and one Fun word, plus a Fun
// word per further method of the interface, unless Fun[0] is 0 (the type
// does not implement the interface).
func (rs *rtypes) itabSize(a uint64) (uint64, error) {
	inter, err := rs.typePtr(a)
	if err != nil {
		return 0, fmt.Errorf("itab at %#x: %w", a, err)
	}
	ir, err := rs.header(inter)
	if err != nil {
		return 0, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if ir.kind != reflect.Interface {
		return 0, fmt.Errorf("itab at %#x: interface type is a %v: %w", a, ir.kind, errBadType)
	}
	fun0, err := rs.m.ptr(a + 24)
	if err != nil {
		return 0, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if fun0 == 0 {
		return 32, nil
	}
	n, err := rs.m.ptr(inter + offStructFields + 8)
	if err != nil {
		return 0, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if n == 0 || n > maxFields {
		return 0, fmt.Errorf("itab at %#x: interface with %d methods: %w", a, n, errBadType)
	}
	return 32 + 8*(n-1), nil
}

// descriptorSize is abi.Type.DescriptorSize (Go 1.27): the bytes a type
// descriptor takes contiguously, its kind's struct, uncommon type, fields,
// interface methods or parameters, and methods. Names lie elsewhere.
func (rs *rtypes) descriptorSize(r *rtype) (uint64, error) {
	size := rs.kindSize(r.kind)
	var add uint64
	switch r.kind {
	case reflect.Struct, reflect.Interface:
		n, err := rs.m.ptr(r.addr + offStructFields + 8)
		if err != nil {
			return 0, fmt.Errorf("type at %#x: %w", r.addr, err)
		}
		if n > maxFields {
			return 0, fmt.Errorf("type at %#x: %d fields: %w", r.addr, n, errBadType)
		}
		if r.kind == reflect.Struct {
			add = n * structFieldSize
		} else {
			add = n * imethodSize
		}
	case reflect.Func:
		b, err := rs.m.bytes(r.addr+offFuncInCount, 4)
		if err != nil {
			return 0, fmt.Errorf("type at %#x: %w", r.addr, err)
		}
		add = 8 * (uint64(rs.m.order.Uint16(b)) + uint64(rs.m.order.Uint16(b[2:])&(1<<15-1)))
	}
	if r.uncommon != 0 {
		b, err := rs.m.bytes(r.uncommon+4, 2)
		if err != nil {
			return 0, fmt.Errorf("type at %#x: %w", r.addr, err)
		}
		size += uncommonTypeSize + methodSize*uint64(rs.m.order.Uint16(b))
	}
	return size + add, nil
}
