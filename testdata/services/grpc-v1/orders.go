package main

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"

	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace"
	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer"

	"example.com/grpcsvcv1/orderpb"
)

// orderServer implements orderpb.OrdersServer, all but CancelOrder, which
// the embedded UnimplementedOrdersServer answers.
type orderServer struct {
	orderpb.UnimplementedOrdersServer
	store orderStore
}

// orderStore has a gRPC method's shape over protobuf messages but serves no
// service: called inside GetOrder, it must never be probed or named the
// origin.
type orderStore interface {
	Lookup(ctx context.Context, req *orderpb.OrderRequest) (*orderpb.Truth, error)
}

type memStore struct{}

func (memStore) Lookup(ctx context.Context, req *orderpb.OrderRequest) (*orderpb.Truth, error) {
	return &orderpb.Truth{}, nil
}

func (s *orderServer) GetOrder(ctx context.Context, req *orderpb.OrderRequest) (*orderpb.Truth, error) {
	if _, err := s.store.Lookup(ctx, req); err != nil {
		return nil, err
	}
	return truth(ctx, here()), nil
}

func (s *orderServer) ListOrders(req *orderpb.OrderRequest, stream orderpb.Orders_ListOrdersServer) error {
	t := truth(stream.Context(), here())
	for range 3 {
		if err := stream.Send(t); err != nil {
			return err
		}
	}
	return nil
}

func (s *orderServer) UploadOrders(stream orderpb.Orders_UploadOrdersServer) error {
	t := truth(stream.Context(), here())
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(t)
		}
		if err != nil {
			return err
		}
	}
}

func (s *orderServer) Chat(stream orderpb.Orders_ChatServer) error {
	t := truth(stream.Context(), here())
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
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
		t.SpanId = strconv.FormatUint(sc.SpanID(), 10)
		// v1's TraceID is the low 64 bits; the full ID is behind
		// SpanContextW3C.
		if w3c, ok := sc.(ddtrace.SpanContextW3C); ok {
			t.TraceId = w3c.TraceID128()
		}
	}
	if fn := runtime.FuncForPC(pc); fn != nil {
		t.Function = fn.Name()
		file, line := fn.FileLine(fn.Entry())
		t.File, t.Line = file, int64(line)
	}
	return t
}
