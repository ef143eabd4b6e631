package main

import (
	"context"

	"google.golang.org/grpc"

	"example.com/grpcsvcv1/orderpb"
)

// A service registered through a hand-written grpc.ServiceDesc, without
// protoc-gen-go-grpc: its handler calls the method through the
// EchoServer interface, as generated code does.

const echoMethod = "/echo.Echo/Echo"

// EchoServer is the hand-written service interface.
type EchoServer interface {
	Echo(ctx context.Context, req *orderpb.OrderRequest) (*orderpb.Truth, error)
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "echo.Echo",
	HandlerType: (*EchoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(orderpb.OrderRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			if in == nil {
				return srv.(EchoServer).Echo(ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}
			return in(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return srv.(EchoServer).Echo(ctx, req.(*orderpb.OrderRequest))
			})
		},
	}},
	Metadata: "echo.go",
}

func registerEchoServer(s grpc.ServiceRegistrar, srv EchoServer) {
	s.RegisterService(&echoDesc, srv)
}

// echoServer has a value receiver: itabs hold its pointer wrapper.
type echoServer struct{}

func (echoServer) Echo(ctx context.Context, req *orderpb.OrderRequest) (*orderpb.Truth, error) {
	return truth(ctx, here()), nil
}
