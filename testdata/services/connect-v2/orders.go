package main

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"

	"connectrpc.com/connect"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"

	"example.com/connectsvc/orderpb"
	"example.com/connectsvc/orderpb/orderpbconnect"
)

// orderServer implements orderpbconnect.OrdersHandler, all but
// CancelOrder, which the embedded UnimplementedOrdersHandler answers.
type orderServer struct {
	orderpbconnect.UnimplementedOrdersHandler
	store orderStore
}

// orderStore has a connect method's shape but serves no service: called
// inside GetOrder, it must never be probed or named the origin.
type orderStore interface {
	Lookup(ctx context.Context, req *connect.Request[orderpb.OrderRequest]) (*connect.Response[orderpb.Truth], error)
}

type memStore struct{}

func (memStore) Lookup(ctx context.Context, req *connect.Request[orderpb.OrderRequest]) (*connect.Response[orderpb.Truth], error) {
	return connect.NewResponse(&orderpb.Truth{}), nil
}

func (s *orderServer) GetOrder(ctx context.Context, req *connect.Request[orderpb.OrderRequest]) (*connect.Response[orderpb.Truth], error) {
	if _, err := s.store.Lookup(ctx, req); err != nil {
		return nil, err
	}
	return connect.NewResponse(truth(ctx, here())), nil
}

func (s *orderServer) ListOrders(ctx context.Context, req *connect.Request[orderpb.OrderRequest], stream *connect.ServerStream[orderpb.Truth]) error {
	t := truth(ctx, here())
	for range 3 {
		if err := stream.Send(t); err != nil {
			return err
		}
	}
	return nil
}

func (s *orderServer) UploadOrders(ctx context.Context, stream *connect.ClientStream[orderpb.OrderRequest]) (*connect.Response[orderpb.Truth], error) {
	t := truth(ctx, here())
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(t), nil
}

func (s *orderServer) Chat(ctx context.Context, stream *connect.BidiStream[orderpb.OrderRequest, orderpb.Truth]) error {
	t := truth(ctx, here())
	for {
		if _, err := stream.Receive(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(t); err != nil {
			return err
		}
	}
}

// here returns its caller's PC.
//
//go:noinline
func here() uintptr {
	pc, _, _, _ := runtime.Caller(1)
	return pc
}

// truth reports the span in ctx and the function containing pc, as the
// tracer and the Go runtime see them.
func truth(ctx context.Context, pc uintptr) *orderpb.Truth {
	t := &orderpb.Truth{}
	if span, ok := tracer.SpanFromContext(ctx); ok {
		sc := span.Context()
		t.TraceId = sc.TraceID()
		t.SpanId = strconv.FormatUint(sc.SpanID(), 10)
	}
	if fn := runtime.FuncForPC(pc); fn != nil {
		t.Function = fn.Name()
		file, line := fn.FileLine(fn.Entry())
		t.File, t.Line = file, int64(line)
	}
	return t
}
