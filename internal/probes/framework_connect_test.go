package probes

import (
	"reflect"
	"testing"

	"github.com/originagent/originagent/internal/gotypes"
)

// TestConnectShape checks the method shapes protoc-gen-connect-go
// generates for each RPC kind, and near misses, as gotypes names them.
func TestConnectShape(t *testing.T) {
	ptr := func(name string) *gotypes.Type { return &gotypes.Type{Name: name, Kind: reflect.Pointer} }
	var (
		ctx    = &gotypes.Type{Name: typeContext, Kind: reflect.Interface}
		err    = &gotypes.Type{Name: typeError, Kind: reflect.Interface}
		req    = ptr("*connectrpc.com/connect.Request[example.com/x/pb.GetRequest]")
		resp   = ptr("*connectrpc.com/connect.Response[example.com/x/pb.Order]")
		server = ptr("*connectrpc.com/connect.ServerStream[example.com/x/pb.Order]")
		client = ptr("*connectrpc.com/connect.ClientStream[example.com/x/pb.GetRequest]")
		bidi   = ptr("*connectrpc.com/connect.BidiStream[example.com/x/pb.GetRequest,example.com/x/pb.Order]")
		msg    = ptr("*example.com/x/pb.GetRequest")
		other  = ptr("*example.com/fork/connect.Request[example.com/x/pb.GetRequest]")
	)
	fn := func(in []*gotypes.Type, out ...*gotypes.Type) *gotypes.Type {
		return &gotypes.Type{Kind: reflect.Func, In: in, Out: out}
	}
	for _, tc := range []struct {
		name string
		ft   *gotypes.Type
		want bool
	}{
		{"unary", fn([]*gotypes.Type{ctx, req}, resp, err), true},
		{"server streaming", fn([]*gotypes.Type{ctx, req, server}, err), true},
		{"client streaming", fn([]*gotypes.Type{ctx, client}, resp, err), true},
		{"bidirectional", fn([]*gotypes.Type{ctx, bidi}, err), true},
		{"no context", fn([]*gotypes.Type{req, req}, resp, err), false},
		{"plain message (gRPC's shape)", fn([]*gotypes.Type{ctx, msg}, msg, err), false},
		{"another package's Request", fn([]*gotypes.Type{ctx, other}, resp, err), false},
		{"no error", fn([]*gotypes.Type{ctx, req}, resp, resp), false},
		{"client-side stream result", fn([]*gotypes.Type{ctx}, bidi), false},
		{"server stream without request", fn([]*gotypes.Type{ctx, server}, err), false},
		{"variadic", &gotypes.Type{Kind: reflect.Func, In: []*gotypes.Type{ctx, req}, Out: []*gotypes.Type{resp, err}, Variadic: true}, false},
		{"not a func", ctx, false},
		{"nil", nil, false},
		{"unknown argument", fn([]*gotypes.Type{ctx, nil}, resp, err), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ok := connectShape(tc.ft)
			if ok != tc.want {
				t.Fatalf("connectShape = %t, want %t", ok, tc.want)
			}
			if ok && reg != regArg1 {
				t.Errorf("context register %d, want %d (RBX, after the receiver)", reg, regArg1)
			}
		})
	}
}
