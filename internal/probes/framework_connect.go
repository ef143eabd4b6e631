package probes

import (
	"reflect"
	"strings"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/gotypes"
)

// Names the connect description looks for, as gotypes and the pclntab
// spell them.
const (
	connectPkg          = "connectrpc.com/connect."
	connectHandlerServe = connectPkg + "(*Handler).ServeHTTP"
)

// connectServer probes the user's implementation methods of
// connectrpc.com/connect services. connect serves RPCs over net/http: the
// generated NewXServiceHandler(svc XServiceHandler) hands each method value
// svc.M to one of connect's generic handlers, which call it with the
// request's context after every net/http middleware (the tracer's, which
// puts the span in that context, and the user's) and every connect
// interceptor, so each RPC hits once in the method itself (the net/http
// probe still fires on user middleware around connect's handler; the
// method, the innermost hit, is the origin).
//
// A service interface method has one of the shapes protoc-gen-connect-go
// generates, with connect's generic message and stream types:
//   - unary: M(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)
//   - server streaming: M(context.Context, *connect.Request[Req], *connect.ServerStream[Resp]) error
//   - client streaming: M(context.Context, *connect.ClientStream[Req]) (*connect.Response[Resp], error)
//   - bidirectional: M(context.Context, *connect.BidiStream[Req, Resp]) error
//
// The context is always the first argument after the receiver, in RBX/RCX.
// An interface of those shapes is a service when the binary has the
// wrapper of one of its method values (XServiceHandler.M-fm), which the
// generated handler constructor makes and a user interface of the same
// shape (a repository, the generated client interface) does not have. The
// implementations come from the static itabs and the types' method tables,
// as for gRPC, and methods served by an embedded Unimplemented...Handler or
// in generated files are not probed.
func connectServer() framework {
	return framework{
		name: "connect",
		targets: func(s *scan) ([]target, error) {
			if _, ok := s.funcEntry(connectHandlerServe); !ok {
				return nil, nil
			}
			g := newRPCScan(s, connectPkg)
			g.shape, g.isService = connectShape, g.hasMethodValue
			return g.methods(), nil
		},
	}
}

// connectShape returns the register of the context argument of a connect
// service method of type ft, or false when ft is not one.
func connectShape(ft *gotypes.Type) (bpf.OriginReg, bool) {
	if ft == nil || ft.Kind != reflect.Func || ft.Variadic || len(ft.In) < 2 || len(ft.In) > 3 ||
		ft.In[0] == nil || ft.In[0].Name != typeContext {
		return 0, false
	}
	in, out := ft.In[1:], ft.Out
	is := func(t *gotypes.Type, generic string) bool {
		return t != nil && t.Kind == reflect.Pointer && strings.HasPrefix(t.Name, "*"+connectPkg+generic+"[")
	}
	isErr := func(t *gotypes.Type) bool { return t != nil && t.Name == typeError }
	ok := false
	switch {
	case len(in) == 1 && len(out) == 2 && is(in[0], "Request") && is(out[0], "Response") && isErr(out[1]):
		ok = true // unary
	case len(in) == 2 && len(out) == 1 && is(in[0], "Request") && is(in[1], "ServerStream") && isErr(out[0]):
		ok = true // server streaming
	case len(in) == 1 && len(out) == 2 && is(in[0], "ClientStream") && is(out[0], "Response") && isErr(out[1]):
		ok = true // client streaming
	case len(in) == 1 && len(out) == 1 && is(in[0], "BidiStream") && isErr(out[0]):
		ok = true // bidirectional streaming
	}
	return regArg1, ok
}

// hasMethodValue reports whether the binary has the method value wrapper
// of one of the interface iface's methods (iface.M-fm): generated connect
// code takes svc.M of each method of the service interface.
func (g *rpcScan) hasMethodValue(iface string) bool {
	if v, ok := g.services[iface]; ok {
		return v
	}
	ok := false
	for _, m := range g.methodsOf(iface) {
		if _, found := g.funcEntry(iface + "." + m.Name + "-fm"); found {
			ok = true
			break
		}
	}
	g.services[iface] = ok
	return ok
}
