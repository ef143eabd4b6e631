package probes

import (
	"reflect"
	"strings"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/gotypes"
)

// Names the gRPC description looks for, as gotypes spells them.
const (
	grpcRegisterService = "google.golang.org/grpc.(*Server).RegisterService"
	typeError           = "error"
)

// nodeLink is the BPF program's NODE_LINK: a struct whose interface field
// at ValOff leads on towards the context.
const nodeLink = uint8(bpf.OriginNodeKindNODE_LINK)

// grpcServer probes the user's implementation methods of gRPC services
// (google.golang.org/grpc): every method of a user type that implements a
// service interface, as found in the binary's static itabs (registering
// a service, generated RegisterXServer(s, &impl{}) or a hand-written
// ServiceDesc's typed register function, converts the implementation to its
// service interface). The generated handlers call the method through that
// interface after every interceptor (the tracer's, which puts the span in the
// context, and the user's), so each RPC hits once, in the method itself.
//
// A service interface method has one of the shapes protoc-gen-go-grpc
// generates, with protobuf messages:
//   - unary: M(ctx context.Context, req *Req) (*Resp, error): the context
//     is the interface in RBX/RCX;
//   - server streaming: M(req *Req, stream S) error: the stream in RCX/RDI;
//   - client and bidirectional streaming: M(stream S) error: in RBX/RCX;
//
// where S is a stream interface (it has Context, SendMsg, RecvMsg and
// SetHeader, as grpc.ServerStream); and the interface is a ServiceDesc's
// HandlerType (see isHandlerType). A stream carries its context in a field, or wraps
// another stream that does: the generated grpc.GenericServerStream wraps
// the tracer's stream wrapper (which holds the span's context), user
// wrappers, or grpc's own serverStream (which holds the context a stats
// handler tagged). Every stream type with a static itab becomes a link node
// of the context walk, pointing at its context field or, lacking one, at
// the stream it wraps; the walk then goes on through the context as for
// HTTP.
//
// Methods served by an embedded Unimplemented...Server and any other code
// in generated files (*.pb.go) are not probed: they are not the user's.
func grpcServer() framework {
	return framework{
		name: "grpc",
		targets: func(s *scan) ([]target, error) {
			if _, ok := s.funcEntry(grpcRegisterService); !ok {
				return nil, nil
			}
			g := newRPCScan(s, "google.golang.org/grpc.")
			g.shape, g.isService = g.grpcShape, g.isHandlerType
			g.linkStreams()
			return g.methods(), nil
		},
	}
}

// rpcScan finds the user's implementations of an RPC library's service
// interfaces (gRPC's, connect's) and caches the type questions of one
// binary's scan. The library supplies what a service method looks like and
// how a service interface is told from a user interface of the same shape.
type rpcScan struct {
	*scan
	// lib is the library's package prefix: its own interfaces are never
	// services.
	lib string
	// shape returns the register holding the first word of a service
	// method's context (or stream) interface argument, or false when a
	// method of this type is not a service method.
	shape func(ft *gotypes.Type) (bpf.OriginReg, bool)
	// isService reports whether an interface of service methods is a
	// service the library serves.
	isService func(iface string) bool

	streams  map[string]bool             // interface name -> stream-like
	services map[string]bool             // interface name -> a service (isService)
	ifaces   map[string][]gotypes.Method // interface name -> methods (nil: not an interface)
}

func newRPCScan(s *scan, lib string) *rpcScan {
	return &rpcScan{scan: s, lib: lib, streams: map[string]bool{}, services: map[string]bool{}, ifaces: map[string][]gotypes.Method{}}
}

// methodsOf returns the methods of the interface type name, nil when it is
// not one or cannot be read.
func (g *rpcScan) methodsOf(name string) []gotypes.Method {
	if ms, ok := g.ifaces[name]; ok {
		return ms
	}
	var ms []gotypes.Method
	if t, err := g.types.Type(name); err == nil && t.Kind == reflect.Interface {
		ms, _ = g.types.Methods(name)
	}
	g.ifaces[name] = ms
	return ms
}

// isStream reports whether t is a server stream: an interface with
// grpc.ServerStream's Context, SendMsg, RecvMsg and SetHeader methods.
func (g *rpcScan) isStream(t *gotypes.Type) bool {
	if t == nil || t.Kind != reflect.Interface {
		return false
	}
	if v, ok := g.streams[t.Name]; ok {
		return v
	}
	have := 0
	for _, m := range g.methodsOf(t.Name) {
		switch m.Name {
		case "Context", "SendMsg", "RecvMsg", "SetHeader":
			have++
		}
	}
	g.streams[t.Name] = have == 4
	return have == 4
}

// isMessage reports whether t is a pointer to a protobuf message (generated
// by protoc-gen-go: ProtoReflect, or the older ProtoMessage).
func (g *rpcScan) isMessage(t *gotypes.Type) bool {
	if t == nil || t.Kind != reflect.Pointer {
		return false
	}
	ms, err := g.types.Methods(t.Name)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Name == "ProtoReflect" || m.Name == "ProtoMessage" {
			return true
		}
	}
	return false
}

// grpcShape returns the register that holds the first word of the method's
// context or stream interface argument (the receiver takes RAX), or false
// when the method does not have the shape of a gRPC service method.
func (g *rpcScan) grpcShape(ft *gotypes.Type) (bpf.OriginReg, bool) {
	if ft == nil || ft.Kind != reflect.Func || ft.Variadic {
		return 0, false
	}
	in, out := ft.In, ft.Out
	isErr := func(t *gotypes.Type) bool { return t != nil && t.Name == typeError }
	switch {
	case len(in) == 2 && len(out) == 2 && in[0] != nil && in[0].Name == typeContext &&
		g.isMessage(in[1]) && g.isMessage(out[0]) && isErr(out[1]):
		return regArg1, true // unary
	case len(in) == 2 && len(out) == 1 && g.isMessage(in[0]) && g.isStream(in[1]) && isErr(out[0]):
		return regArg2, true // server streaming
	case len(in) == 1 && len(out) == 1 && g.isStream(in[0]) && isErr(out[0]):
		return regArg1, true // client or bidirectional streaming
	}
	return 0, false
}

// methods returns a target for each user implementation of a service
// method, from the static itabs and the types' method tables.
func (g *rpcScan) methods() []target {
	var ts []target
	seen := map[uint64]bool{}
	for _, it := range append(g.itabs, g.implementations()...) {
		if len(it.fun) == 0 || strings.HasPrefix(it.iface, g.lib) {
			continue
		}
		ms := g.methodsOf(it.iface)
		if len(ms) != len(it.fun) || !g.isService(it.iface) {
			continue
		}
		for i, m := range ms {
			fn := it.fun[i]
			if fn == 0 || seen[fn] {
				continue
			}
			reg, ok := g.shape(m.Type)
			if !ok {
				continue
			}
			name, ok := g.userMethod(fn)
			if !ok {
				continue
			}
			seen[fn] = true
			// The interface is in two registers: a chain of no offsets.
			ctx := bpf.OriginChain{Reg: uint8(reg)}
			ts = append(ts, target{name: name, entry: fn, recipe: recipeSelf(ctx)})
		}
	}
	return ts
}

// isHandlerType reports whether the interface iface is a service's: the
// HandlerType of a grpc.ServiceDesc variable ((*XServer)(nil), which
// grpc.Server.RegisterService requires) puts the type descriptor of
// *XServer in statically initialized data. An interface of the same shapes
// that serves no service (a repository taking protobuf messages) has none.
func (g *rpcScan) isHandlerType(iface string) bool {
	if v, ok := g.services[iface]; ok {
		return v
	}
	ok := false
	if t, err := g.types.Type("*" + iface); err == nil && t.Addr != 0 {
		refs, err := g.types.DataRefs(t.Addr)
		ok = err == nil && len(refs) > 0
	}
	g.services[iface] = ok
	return ok
}

// implementations pairs the user's service interfaces with the user types
// that implement them, as the runtime builds an itab when generated code
// converts an implementation at run time (gRPC's handler asserts
// srv.(XServer)): the binary has a static itab only when the
// implementation was converted to the interface in code the compiler kept
// (a register function inlined into its caller may convert the
// implementation to any directly).
func (g *rpcScan) implementations() []itabInfo {
	names, err := g.types.TypeNames()
	if err != nil {
		return nil
	}
	var ifaces, impls []string
	for _, n := range names {
		if !g.isUser(strings.TrimPrefix(n, "*")) {
			continue
		}
		t, err := g.types.Type(n)
		if err != nil {
			continue
		}
		if t.Kind == reflect.Interface {
			for _, m := range g.methodsOf(n) {
				if _, ok := g.shape(m.Type); ok {
					ifaces = append(ifaces, n)
					break
				}
			}
		} else {
			impls = append(impls, n)
		}
	}
	if len(ifaces) == 0 {
		return nil
	}
	var out []itabInfo
	for _, c := range impls {
		ms, err := g.types.Methods(c)
		if err != nil || len(ms) == 0 {
			continue
		}
		// The method table names every method; the linker zeroes the
		// code of those no interface call reaches (mustEmbedUnimplemented
		// XServer, for one), and those are not probed anyway.
		ifn := make(map[string]uint64, len(ms))
		for _, m := range ms {
			ifn[m.Name] = m.Ifn
		}
	next:
		for _, i := range ifaces {
			im := g.methodsOf(i)
			fun := make([]uint64, len(im))
			for k, m := range im {
				f, ok := ifn[m.Name]
				if !ok {
					continue next
				}
				fun[k] = f
			}
			out = append(out, itabInfo{iface: i, typ: c, fun: fun})
		}
	}
	return out
}

// userMethod returns the name of the function at fn when the code it runs
// is the user's: a receiver wrapper counts as the method it wraps, which
// must be user code outside generated files (a method promoted from an
// embedded Unimplemented...Server resolves to generated code).
func (g *rpcScan) userMethod(fn uint64) (string, bool) {
	frames, err := g.sym.Lookup(fn, false)
	if err != nil || len(frames) == 0 {
		return "", false
	}
	f := frames[0] // wrappers resolved to the function they wrap
	if !g.isUser(f.Function) || f.File == "<autogenerated>" || isGeneratedFile(f.File) {
		return "", false
	}
	return frames[len(frames)-1].Function, true
}

// isGeneratedFile reports whether file is protoc output (protoc-gen-go's
// x.pb.go, protoc-gen-go-grpc's x_grpc.pb.go, protoc-gen-connect-go's
// x.connect.go), which is never the origin.
func isGeneratedFile(file string) bool {
	return strings.HasSuffix(file, ".pb.go") || strings.HasSuffix(file, ".connect.go")
}

// linkStreams makes every stream type with a static itab a link node of the
// context walk: to its context field, else to the stream it wraps.
func (g *rpcScan) linkStreams() {
	for _, it := range g.itabs {
		if _, ok := g.nodes[it.addr]; ok {
			continue
		}
		iface, err := g.types.Type(it.iface)
		if err != nil || !g.isStream(iface) {
			continue
		}
		off, ok := g.streamLink(it.typ)
		if !ok {
			continue
		}
		g.nodes[it.addr] = bpf.OriginNodeInfo{Kind: nodeLink, ValOff: off}
	}
}

// streamLink returns the offset in the struct *ptrType points to of its
// context.Context field or, lacking one, of the stream interface it wraps.
func (g *rpcScan) streamLink(ptrType string) (uint16, bool) {
	t, err := g.types.Type(ptrType)
	if err != nil || t.Kind != reflect.Pointer || t.Elem == nil || t.Elem.Kind != reflect.Struct {
		return 0, false
	}
	fields := t.Elem.Fields
	for _, f := range fields {
		if f.Type != nil && f.Type.Name == typeContext && f.Offset < noCtx {
			return uint16(f.Offset), true
		}
	}
	for _, f := range fields {
		if g.isStream(f.Type) && f.Offset < noCtx {
			return uint16(f.Offset), true
		}
	}
	return 0, false
}
