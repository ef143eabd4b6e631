// Package gotypes reads type identities, struct layouts and itabs of a Go
// program from its ELF file alone, so that BPF programs can recognise
// runtime types (by the address of their type descriptor) and read struct
// fields (by offset) in a process they do not control.
//
// Layouts come from DWARF when the binary has it and from the runtime type
// descriptors (moduledata types, typelinks, itabs) otherwise; the latter
// survive -ldflags=-s -w and strip. Descriptors not listed by the linker are
// reached by walking the type graph (element, field, parameter and method
// types) from typelinks and itabs. Pointers in PIE and externally linked
// binaries are resolved through their RELA/RELR dynamic relocations.
// Addresses are link-time virtual addresses in the file: for PIE binaries
// the caller adds the load bias.
//
// Types are named canonically: full import path plus name for named types
// ("net/http.Request", "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span",
// "gopkg.in/yaml.v3.Node"), a "*" prefix for pointers ("*context.valueCtx"),
// and Go syntax with canonical element names for unnamed slices, arrays,
// maps, channels and funcs ("[]string", "func(context.Context) error").
// This is also the naming of Go's DWARF (with its %2e escapes undone).
// Unnamed struct and interface types keep the runtime's spelling, which
// uses package names ("struct { f atomic.Int32 }"); DWARF spells them
// differently, so reach them through the field that holds them.
//
// Supported: 64-bit ELF files for amd64 and arm64. Go 1.26 and 1.27
// binaries are tested against the programs' own reflection (default, -s -w,
// strip, PIE, trimpath, external linking, RELR); the moduledata layouts of
// Go 1.18-1.25 are implemented but tested only on synthetic images.
//
// The moduledata layout is chosen by which one's fields are consistent
// (pointer ranges, slice lengths equal to capacities, the first typelink a
// type descriptor and the first itab's interface an interface type), with
// the layout of the binary's Go version tried first. Go 1.27 changed what
// this package reads (runtime/symtab.go, runtime/type.go, runtime/iface.go,
// internal/abi, cmd/link/internal/ld/data.go and symtab.go):
//
//   - moduledata lost the typelinks ([]int32 offsets) and itablinks
//     ([]*itab) slices and gained typedesclen after types and itaboffset
//     and itabsize after etypes. The typelink descriptors now lie one after
//     the other from types+8 to types+typedesclen, sorted by type string,
//     each as long as abi.Type.DescriptorSize says (kind struct, uncommon
//     type, fields, interface methods or parameters, methods); the itabs
//     lie from types+itaboffset for itabsize bytes, each abi.ITab.Size long
//     (one Fun word per interface method). This package walks both as the
//     runtime does (moduleTypelinks, addModuleItabs); a walk that does not
//     end exactly at its bound is an error, which also checks the descriptor
//     sizes assumed here against the binary.
//   - abi.MapType replaced SlotSize with KeysOff, KeyStride, ElemsOff and
//     ElemStride: 136 bytes instead of 112, which moves the uncommon type
//     (and so the methods and package path) of named map types such as
//     net/http.Header.
//   - Type descriptors and itabs moved into their own .go.type section
//     (.data.rel.ro.go.type in PIE) and .typelink and .itablink are gone.
//     This package does not rely on section names.
//   - Unchanged: abi.Type, the other kind structs, abi.UncommonType,
//     abi.Method, abi.Imethod, abi.StructField, abi.ITab's fields, name
//     encoding, and the moduledata fields before types.
//
// A binary of a Go release newer than 1.27 is read only when a known layout
// passes all these checks; otherwise errors name its Go version.
package gotypes

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// ErrNotFound is wrapped by errors for types, fields and itabs the binary
// does not describe.
var ErrNotFound = errors.New("not found")

// ErrNoRuntimeTypes is wrapped by errors of lookups that need the runtime
// type information when the binary's moduledata could not be located.
var ErrNoRuntimeTypes = errors.New("no runtime type information")

// ErrPointerHop is wrapped by FieldOffset errors for paths that go through a
// pointer: such a path has no single offset (use FieldOffsets).
var ErrPointerHop = errors.New("field path dereferences a pointer")

// Kind is the kind of a type, with the numbering of reflect.Kind (and of the
// runtime's abi.Kind and Go's DW_AT_go_kind).
type Kind = reflect.Kind

// Type describes one Go type. The Types a Binary returns form one shared
// graph (recursive types are cyclic through Elem and Fields): treat them as
// read-only.
type Type struct {
	// Name is the canonical name (see the package documentation).
	Name string
	// Addr is the file virtual address of the runtime type descriptor
	// (abi.Type), or 0 if the binary has no descriptor for the type (it
	// is then known only from DWARF).
	Addr uint64
	// Kind is the kind of the type.
	Kind Kind
	// Size is the size of a value of the type in bytes.
	Size uint64
	// Elem is the element type of pointers, slices, arrays, channels and
	// maps (the value type); nil otherwise.
	Elem *Type
	// Key is the key type of maps.
	Key *Type
	// Len is the length of arrays.
	Len uint64
	// Fields are the fields of structs, in declaration order.
	Fields []Field
	// In and Out are the parameter and result types of func types; they
	// are only filled from runtime type descriptors.
	In, Out []*Type
	// Variadic reports whether the last parameter of a func type is "...".
	Variadic bool
}

// Field is one struct field.
type Field struct {
	// Name is the field name; for embedded fields the type's name without
	// package qualifier (as in Go source).
	Name string
	// Offset is the byte offset of the field in the struct.
	Offset uint64
	// Embedded reports an embedded field.
	Embedded bool
	// Type is the field's type.
	Type *Type
}

// Itab is one statically allocated interface table (runtime.itab) of the
// module (its itablinks, or from Go 1.27 the itabs after the types): the pair (interface, concrete type) with the
// method pointers that implement the interface.
type Itab struct {
	// Interface is the canonical name of the interface type.
	Interface string
	// Type is the canonical name of the concrete type.
	Type string
	// Addr is the file virtual address of the itab: the first word of a
	// non-empty interface value holding Type.
	Addr uint64
	// InterfaceAddr and TypeAddr are the addresses of the type descriptors.
	InterfaceAddr, TypeAddr uint64
	// Fun are the text addresses of Type's methods, in the order of the
	// interface's methods (sorted by name, as Methods of the interface
	// returns them). A method the program never calls through any
	// interface points at runtime.unreachableMethod instead (the linker's
	// dead-code pass); Methods of Type reports Ifn 0 for it.
	Fun []uint64
}

// Method is a method of a type from its runtime descriptor.
type Method struct {
	// Name is the method name; unexported names are not qualified.
	Name string
	// Type is the method's func type without receiver, nil if the
	// linker dropped it.
	Type *Type
	// Ifn and Tfn are the text addresses of the implementation called
	// through an interface and directly; 0 when the linker dropped them.
	// Ifn is 0 for interface methods.
	Ifn, Tfn uint64
}

// Binary answers type questions about one Go ELF file. Lookups are lazy:
// the first one walks the type graph (about 20 ms for the 15 MB go
// command), the first DWARF one also indexes DWARF. It keeps the parts of
// the file it read (a few MB at most) until Close. It is safe for concurrent
// use.
type Binary struct {
	mu     sync.Mutex
	f      *elf.File
	closer io.Closer

	goVersion string // from the build info, "" if missing
	cfg       config

	m        *memory
	md       *moduledata
	mdErr    error
	rt       *rtypes
	index    map[string][]uint64 // canonical name -> descriptor addresses
	walked   bool
	indexErr error
	walkN    int // descriptors that failed to decode during the walk

	rtConv map[uint64]*Type

	dw      *dwarfTypes
	dwErr   error
	dwReady bool
}

// Option tunes Open and NewFromELF.
type Option func(*config)

type config struct {
	runtimeFirst bool
}

// RuntimeFirst makes Type, FieldOffset and FieldOffsets answer from the
// runtime type descriptor whenever the type has one, reading DWARF only
// for types without a descriptor. The answers are the same (the tests
// compare every struct type of the corpus), the first lookup is about 7
// times cheaper on a binary with DWARF (no DWARF decompression and scan),
// and stripped and unstripped builds are then read the same way.
func RuntimeFirst() Option { return func(c *config) { c.runtimeFirst = true } }

// Open opens the Go ELF executable at path. Close releases the file.
func Open(path string, opts ...Option) (*Binary, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(fh)
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("parse ELF %s: %w", path, err)
	}
	b, err := newBinary(f, fh, opts)
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b.closer = fh
	return b, nil
}

// NewFromELF reads the Go ELF file f, parsed from r (elf.NewFile(r)). The
// caller keeps ownership of both and must keep r open while using the
// Binary.
func NewFromELF(f *elf.File, r io.ReaderAt, opts ...Option) (*Binary, error) {
	return newBinary(f, r, opts)
}

func newBinary(f *elf.File, r io.ReaderAt, opts []Option) (*Binary, error) {
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("unsupported ELF class %v: only 64-bit binaries are supported", f.Class)
	}
	m, err := newMemory(f, r)
	if err != nil {
		return nil, err
	}
	b := &Binary{f: f, m: m, rtConv: make(map[uint64]*Type)}
	for _, o := range opts {
		o(&b.cfg)
	}
	if bi, err := buildinfo.Read(io.NewSectionReader(r, 0, 1<<62)); err == nil {
		b.goVersion = bi.GoVersion
	}
	b.md, b.mdErr = findModuledata(f, m, b.goVersion)
	if b.md != nil {
		b.rt = newRtypes(m, b.md, b.goVersion)
	}
	if b.md == nil && !hasDWARF(f) {
		return nil, fmt.Errorf("no type information: %w", b.mdErr)
	}
	return b, nil
}

// Close releases the file opened by Open. It does nothing for a Binary made
// by NewFromELF.
func (b *Binary) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m.chunks = make(map[uint64][]byte) // later reads fail on the closed file
	if b.closer != nil {
		err := b.closer.Close()
		b.closer = nil
		return err
	}
	return nil
}

// versioned adds the binary's Go version to err when it is newer than the
// layouts this package knows: the likely cause.
func (b *Binary) versioned(err error) error {
	if goMinor(b.goVersion) > newestMinor {
		return fmt.Errorf("%s is newer than Go 1.%d, the newest known here: %w", b.goVersion, newestMinor, err)
	}
	return err
}

// GoVersion returns the Go version the binary was built with ("go1.26.8"),
// or "" if its build info is missing.
func (b *Binary) GoVersion() string { return b.goVersion }

// HasDWARF reports whether the binary has DWARF type information.
func (b *Binary) HasDWARF() bool { return hasDWARF(b.f) }

func hasDWARF(f *elf.File) bool {
	return f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil
}

// buildIndex walks the type graph from the linker's roots once.
func (b *Binary) buildIndex() error {
	if b.rt == nil {
		return fmt.Errorf("%w: %v", ErrNoRuntimeTypes, b.mdErr)
	}
	if b.walked {
		return b.indexErr
	}
	b.walked = true
	b.index = make(map[string][]uint64)
	rs := b.rt
	rs.resetBudget()
	queue, err := rs.roots()
	if err != nil {
		b.index = nil
		b.indexErr = b.versioned(fmt.Errorf("walk type graph: %w", err))
		return b.indexErr
	}
	seen := make(map[uint64]bool, len(queue)*4)
	var kids []uint64
	for len(queue) > 0 {
		a := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[a] {
			continue
		}
		seen[a] = true
		r, err := rs.header(a)
		if err != nil {
			b.walkN++
			continue
		}
		name, err := rs.canonical(a)
		if err != nil {
			b.walkN++
		} else {
			b.index[name] = append(b.index[name], a)
		}
		kids, err = rs.children(r, kids[:0])
		if errors.Is(err, errBudget) {
			b.index = nil
			b.indexErr = fmt.Errorf("walk type graph: %w", err)
			return b.indexErr
		}
		if err != nil {
			b.walkN++
		}
		for _, k := range kids {
			if !seen[k] {
				queue = append(queue, k)
			}
		}
	}
	for _, addrs := range b.index {
		slices.Sort(addrs)
	}
	return nil
}

// Dropped returns how many type descriptors reachable from the linker's
// tables failed to decode during the type walk and are missing from
// TypeNames: 0 for a sound binary, worth a metric and a log line otherwise.
func (b *Binary) Dropped() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.buildIndex(); err != nil {
		return 0, err
	}
	return b.walkN, nil
}

// TypeNames returns the canonical names of all types with a runtime type
// descriptor reachable from the linker's type and itab tables, sorted.
func (b *Binary) TypeNames() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.buildIndex(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(b.index))
	for n := range b.index {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// TypeAddrs returns the addresses of every runtime type descriptor named
// name. Usually there is one; distinct types can share a name (types local
// to functions, plugins).
func (b *Binary) TypeAddrs(name string) ([]uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.buildIndex(); err != nil {
		return nil, err
	}
	addrs := b.index[name]
	if len(addrs) == 0 {
		return nil, fmt.Errorf("type %q: %w", name, ErrNotFound)
	}
	return slices.Clone(addrs), nil
}

// Type returns the type with the canonical name name, its layout from DWARF
// when present, else from the runtime type descriptor (see RuntimeFirst).
// Errors wrap ErrNotFound when the binary does not describe the type.
func (b *Binary) Type(name string) (*Type, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.typeLocked(name)
}

func (b *Binary) typeLocked(name string) (*Type, error) {
	rtErr := b.buildIndex()
	var addr uint64
	if rtErr == nil && len(b.index[name]) > 0 {
		addr = b.index[name][0]
	}
	if b.cfg.runtimeFirst && addr != 0 {
		return b.rtTypeTop(name, addr)
	}
	if t, err := b.dwarfType(name); err == nil {
		return t, nil
	} else if !errors.Is(err, ErrNotFound) && addr == 0 {
		return nil, fmt.Errorf("type %q: %w", name, err)
	}
	if addr == 0 {
		if rtErr != nil && !errors.Is(rtErr, ErrNoRuntimeTypes) {
			return nil, fmt.Errorf("type %q: %w", name, rtErr)
		}
		return nil, fmt.Errorf("type %q: %w", name, ErrNotFound)
	}
	return b.rtTypeTop(name, addr)
}

func (b *Binary) rtTypeTop(name string, addr uint64) (*Type, error) {
	b.rt.resetBudget()
	t, err := b.rtType(addr, 0)
	if err != nil {
		return nil, fmt.Errorf("type %q: %w", name, err)
	}
	return t, nil
}

// RuntimeType returns the type whose runtime descriptor is at addr, decoded
// from the descriptor only (never DWARF). The engine uses it to name a type
// pointer read from a target process (after subtracting the load bias).
func (b *Binary) RuntimeType(addr uint64) (*Type, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt == nil {
		return nil, fmt.Errorf("type at %#x: %w: %v", addr, ErrNoRuntimeTypes, b.mdErr)
	}
	b.rt.resetBudget()
	return b.rtType(addr, 0)
}

const maxDepth = 1000

// rtType converts a runtime descriptor to a Type, memoized so that
// recursive types become cyclic graphs.
func (b *Binary) rtType(addr uint64, depth int) (*Type, error) {
	if t, ok := b.rtConv[addr]; ok {
		return t, nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("type at %#x: nesting too deep: %w", addr, errBadType)
	}
	rs := b.rt
	r, err := rs.header(addr)
	if err != nil {
		return nil, err
	}
	name, err := rs.canonical(addr)
	if err != nil {
		return nil, err
	}
	t := &Type{Name: name, Addr: addr, Kind: r.kind, Size: r.size}
	b.rtConv[addr] = t
	fail := func(err error) (*Type, error) {
		delete(b.rtConv, addr)
		return nil, err
	}
	sub := func(a uint64) (*Type, error) {
		if a == 0 {
			return nil, fmt.Errorf("type at %#x: nil element: %w", addr, errBadType)
		}
		return b.rtType(a, depth+1)
	}
	switch r.kind {
	case reflect.Pointer, reflect.Slice, reflect.Chan, reflect.Array, reflect.Map:
		e, err := rs.elem(r)
		if err != nil {
			return fail(err)
		}
		et, err := sub(e)
		if err != nil {
			return fail(err)
		}
		t.Elem = et
		switch r.kind {
		case reflect.Array:
			if t.Len, err = rs.m.u64(addr + offArrayLen); err != nil {
				return fail(err)
			}
		case reflect.Map:
			v, err := rs.typePtr(addr + offMapElem)
			if err != nil {
				return fail(err)
			}
			t.Key = et
			if t.Elem, err = sub(v); err != nil {
				return fail(err)
			}
		}
	case reflect.Struct:
		fs, err := rs.fields(r)
		if err != nil {
			return fail(err)
		}
		t.Fields = make([]Field, 0, len(fs))
		for _, f := range fs {
			ft, err := sub(f.typ)
			if err != nil {
				return fail(err)
			}
			t.Fields = append(t.Fields, Field{Name: f.name, Offset: f.offset, Embedded: f.embedded, Type: ft})
		}
	case reflect.Func:
		in, out, variadic, err := rs.funcParams(r)
		if err != nil {
			return fail(err)
		}
		t.Variadic = variadic
		for _, a := range in {
			pt, err := sub(a)
			if err != nil {
				return fail(err)
			}
			t.In = append(t.In, pt)
		}
		for _, a := range out {
			pt, err := sub(a)
			if err != nil {
				return fail(err)
			}
			t.Out = append(t.Out, pt)
		}
	}
	return t, nil
}

// Methods returns the methods of the named type from its runtime
// descriptor: the method table of its uncommon type (only methods the
// linker kept), or the methods of an interface type, sorted by name.
func (b *Binary) Methods(typeName string) ([]Method, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.buildIndex(); err != nil {
		return nil, fmt.Errorf("methods of %q: %w", typeName, err)
	}
	addrs := b.index[typeName]
	if len(addrs) == 0 {
		return nil, fmt.Errorf("methods of %q: %w", typeName, ErrNotFound)
	}
	rs := b.rt
	rs.resetBudget()
	r, err := rs.header(addrs[0])
	if err != nil {
		return nil, fmt.Errorf("methods of %q: %w", typeName, err)
	}
	var out []Method
	conv := func(a uint64) (*Type, error) {
		if a == 0 {
			return nil, nil
		}
		return b.rtType(a, 0)
	}
	if r.kind == reflect.Interface {
		ims, err := rs.imethods(r)
		if err != nil {
			return nil, fmt.Errorf("methods of %q: %w", typeName, err)
		}
		for _, im := range ims {
			ft, err := conv(im.typ)
			if err != nil {
				return nil, fmt.Errorf("methods of %q: %w", typeName, err)
			}
			out = append(out, Method{Name: im.name, Type: ft})
		}
		return out, nil
	}
	ms, err := rs.methods(r)
	if err != nil {
		return nil, fmt.Errorf("methods of %q: %w", typeName, err)
	}
	for _, m := range ms {
		ft, err := conv(m.typ)
		if err != nil {
			return nil, fmt.Errorf("methods of %q: %w", typeName, err)
		}
		out = append(out, Method{Name: m.name, Type: ft, Ifn: m.ifn, Tfn: m.tfn})
	}
	return out, nil
}

// Itabs returns every statically allocated itab of the module, in link
// order.
func (b *Binary) Itabs() ([]Itab, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt == nil {
		return nil, fmt.Errorf("itabs: %w: %v", ErrNoRuntimeTypes, b.mdErr)
	}
	rs := b.rt
	rs.resetBudget()
	addrs, err := rs.itabs()
	if err != nil {
		return nil, b.versioned(err)
	}
	out := make([]Itab, 0, len(addrs))
	for i, a := range addrs {
		it, err := b.itab(a)
		if err != nil {
			return nil, b.versioned(fmt.Errorf("itab %d: %w", i, err))
		}
		out = append(out, it)
	}
	return out, nil
}

// itab decodes abi.ITab{Inter, Type *Type; Hash uint32; Fun [n]uintptr}.
func (b *Binary) itab(a uint64) (Itab, error) {
	rs := b.rt
	inter, err := rs.typePtr(a)
	if err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	typ, err := rs.typePtr(a + 8)
	if err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if inter == 0 || typ == 0 {
		return Itab{}, fmt.Errorf("itab at %#x: nil type: %w", a, errBadType)
	}
	ir, err := rs.header(inter)
	if err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if ir.kind != reflect.Interface {
		return Itab{}, fmt.Errorf("itab at %#x: interface type is a %v: %w", a, ir.kind, errBadType)
	}
	ims, err := rs.imethods(ir)
	if err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	it := Itab{Addr: a, InterfaceAddr: inter, TypeAddr: typ, Fun: make([]uint64, len(ims))}
	if it.Interface, err = rs.canonical(inter); err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	if it.Type, err = rs.canonical(typ); err != nil {
		return Itab{}, fmt.Errorf("itab at %#x: %w", a, err)
	}
	for j := range ims {
		if it.Fun[j], err = rs.ptrAt(a + 24 + 8*uint64(j)); err != nil {
			return Itab{}, fmt.Errorf("itab at %#x: fun[%d]: %w", a, j, err)
		}
	}
	return it, nil
}

// FieldOffset returns the byte offset of the field at path inside a value of
// the named type. Path elements name fields, possibly dot-separated
// ("context.traceID.value" equals "context", "traceID", "value"); embedded
// fields are named by their type name. A pointer type name ("*T") means
// offsets inside the pointed-at T. Errors wrap ErrNotFound for unknown types
// or fields and ErrPointerHop when the path crosses a pointer.
func (b *Binary) FieldOffset(typeName string, path ...string) (uint64, error) {
	offs, err := b.FieldOffsets(typeName, path...)
	if err != nil {
		return 0, err
	}
	if len(offs) > 1 {
		return 0, fmt.Errorf("field %s.%s: %w (offsets %v)", typeName, strings.Join(path, "."), ErrPointerHop, offs)
	}
	return offs[0], nil
}

// FieldOffsets resolves a field path that may cross pointers. It returns one
// offset per memory read: offs[0] is relative to the start of the value; for
// i > 0 the pointer stored at offs[i-1] is dereferenced and offs[i] is
// relative to where it points. This is the recipe a BPF program follows.
func (b *Binary) FieldOffsets(typeName string, path ...string) ([]uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.typeLocked(typeName)
	if err != nil {
		return nil, err
	}
	if t.Kind == reflect.Pointer && t.Elem != nil {
		t = t.Elem
	}
	var elems []string
	for _, p := range path {
		elems = append(elems, strings.Split(p, ".")...)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("field of %s: empty path", typeName)
	}
	offs := []uint64{0}
	for i, name := range elems {
		if t.Kind == reflect.Pointer && t.Elem != nil {
			offs = append(offs, 0)
			t = t.Elem
		}
		if t.Kind != reflect.Struct {
			return nil, fmt.Errorf("field %s.%s: %s is a %v, not a struct: %w",
				typeName, strings.Join(elems[:i+1], "."), t.Name, t.Kind, ErrNotFound)
		}
		var f *Field
		for j := range t.Fields {
			if t.Fields[j].Name == name {
				f = &t.Fields[j]
				break
			}
		}
		if f == nil {
			return nil, fmt.Errorf("field %s.%s: no field %q in %s: %w",
				typeName, strings.Join(elems[:i+1], "."), name, t.Name, ErrNotFound)
		}
		offs[len(offs)-1] += f.Offset
		t = f.Type
	}
	return offs, nil
}

// dwarfType looks name up in DWARF, loading the index on first use, and
// fills Addr from the runtime index.
func (b *Binary) dwarfType(name string) (*Type, error) {
	if !b.dwReady {
		b.dwReady = true
		if b.f != nil && hasDWARF(b.f) {
			d, err := loadDWARF(b.f)
			if err == nil {
				b.dw, err = newDwarfTypes(d)
			}
			b.dwErr = err
			if b.dwErr != nil {
				b.dwErr = fmt.Errorf("read DWARF: %w", b.dwErr)
			}
		}
	}
	if b.dw == nil {
		if b.dwErr != nil {
			return nil, b.dwErr
		}
		return nil, ErrNotFound
	}
	return b.dw.lookup(name, func(n string) uint64 {
		if a := b.index[n]; len(a) > 0 {
			return a[0]
		}
		return 0
	})
}
