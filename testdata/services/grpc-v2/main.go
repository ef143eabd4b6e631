// Command grpc-v2 is an end-to-end test target for originagent: a gRPC
// service traced with dd-trace-go v2's grpc integration, with one RPC of
// every kind (generated code, orderpb), a service registered through a
// hand-written grpc.ServiceDesc (echo.go), a method only the embedded
// UnimplementedOrdersServer serves, and user interceptors around the
// tracer's.
//
// It serves gRPC on one loopback port and, on the port it prints
// ("listening on ADDR"), an untraced HTTP driver: GET /call/KIND makes one
// RPC of that kind to itself through a plain grpc client and answers with
// the truths the implementation method reported (JSON), which the tests
// compare against what originagent captured. GET /bench/KIND?n=&c= makes
// many, for the overhead benchmark.
//
// --stats (or GRPCSVC_STATS=true) traces through the integration's stats handler instead of its
// interceptors. It knows nothing about originagent.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	grpctrace "github.com/DataDog/dd-trace-go/contrib/google.golang.org/grpc/v2"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/grpcsvc/orderpb"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the HTTP driver")
	stats := flag.Bool("stats", os.Getenv("GRPCSVC_STATS") == "true", "trace with the stats handler instead of the interceptors (default from GRPCSVC_STATS=true)")
	flag.Parse()
	if err := run(*addr, *stats); err != nil {
		fmt.Fprintln(os.Stderr, "grpc-v2:", err)
		os.Exit(1)
	}
}

func run(addr string, stats bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := tracer.Start(); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	defer tracer.Stop()

	var opts []grpc.ServerOption
	if stats {
		opts = append(opts, grpc.StatsHandler(grpctrace.NewServerStatsHandler()),
			grpc.ChainUnaryInterceptor(logUnary),
			grpc.ChainStreamInterceptor(authStreams))
	} else {
		// The tracer's interceptors first, the user's inside them: the
		// user's see the span, and the origin must still be the method.
		opts = append(opts,
			grpc.ChainUnaryInterceptor(grpctrace.UnaryServerInterceptor(), logUnary),
			grpc.ChainStreamInterceptor(grpctrace.StreamServerInterceptor(), authStreams))
	}
	srv := grpc.NewServer(opts...)
	orderpb.RegisterOrdersServer(srv, &orderServer{store: memStore{}})
	registerEchoServer(srv, echoServer{})

	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(gln) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial grpc: %w", err)
	}
	defer conn.Close()
	d := &driver{orders: orderpb.NewOrdersClient(conn), conn: conn}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/call/{kind}", d.call)
	mux.HandleFunc("/bench/{kind}", d.bench)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// logUnary is a user unary interceptor: it runs under the tracer's span
// and must never be named the origin.
func logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(context.WithValue(ctx, callerKey{}, info.FullMethod), req)
}

type callerKey struct{}

// authStream is the usual user stream wrapper: it replaces the stream's
// context with a derived one.
type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authStream) Context() context.Context { return s.ctx }

// authStreams wraps the bidirectional streams only, so that the others
// reach the method with the tracer's own stream wrapper.
func authStreams(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != orderpb.Orders_Chat_FullMethodName {
		return handler(srv, ss)
	}
	return handler(srv, &authStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, info.FullMethod)})
}

// driver makes the RPCs the HTTP driver is asked for.
type driver struct {
	orders orderpb.OrdersClient
	conn   *grpc.ClientConn
}

func (d *driver) call(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	truths, err := d.rpc(ctx, r.PathValue("kind"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(truths)
}

// bench makes ?n= RPCs of a kind from ?c= goroutines, for the overhead
// benchmark, and answers the wall time in nanoseconds.
func (d *driver) bench(w http.ResponseWriter, r *http.Request) {
	n, err1 := strconv.Atoi(r.URL.Query().Get("n"))
	c, err2 := strconv.Atoi(r.URL.Query().Get("c"))
	if err1 != nil || err2 != nil || n <= 0 || c <= 0 {
		http.Error(w, "want ?n=RPCS&c=CONCURRENCY", http.StatusBadRequest)
		return
	}
	kind := r.PathValue("kind")
	var next atomic.Int64
	var mu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := d.rpc(r.Context(), kind); err != nil {
					mu.Lock()
					failed = cmp.Or(failed, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		http.Error(w, failed.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintln(w, time.Since(start).Nanoseconds())
}

// truthJSON is a Truth as the driver answers it.
type truthJSON struct {
	TraceID  string `json:"trace_id"`
	SpanID   string `json:"span_id"`
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int64  `json:"line"`
}

func toJSON(t *orderpb.Truth) truthJSON {
	return truthJSON{t.GetTraceId(), t.GetSpanId(), t.GetFunction(), t.GetFile(), t.GetLine()}
}

func (d *driver) rpc(ctx context.Context, kind string) ([]truthJSON, error) {
	req := &orderpb.OrderRequest{Id: "o-1"}
	var out []truthJSON
	switch kind {
	case "unary":
		t, err := d.orders.GetOrder(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, toJSON(t))
	case "server-stream":
		st, err := d.orders.ListOrders(ctx, req)
		if err != nil {
			return nil, err
		}
		for {
			t, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			out = append(out, toJSON(t))
		}
	case "client-stream":
		st, err := d.orders.UploadOrders(ctx)
		if err != nil {
			return nil, err
		}
		for range 3 {
			if err := st.Send(req); err != nil {
				return nil, err
			}
		}
		t, err := st.CloseAndRecv()
		if err != nil {
			return nil, err
		}
		out = append(out, toJSON(t))
	case "bidi":
		st, err := d.orders.Chat(ctx)
		if err != nil {
			return nil, err
		}
		for range 2 {
			if err := st.Send(req); err != nil {
				return nil, err
			}
			t, err := st.Recv()
			if err != nil {
				return nil, err
			}
			out = append(out, toJSON(t))
		}
		if err := st.CloseSend(); err != nil {
			return nil, err
		}
	case "echo":
		t := new(orderpb.Truth)
		if err := d.conn.Invoke(ctx, echoMethod, req, t); err != nil {
			return nil, err
		}
		out = append(out, toJSON(t))
	case "unimplemented":
		// Answered by UnimplementedOrdersServer: an error, and no truth.
		_, err := d.orders.CancelOrder(ctx, req)
		if err == nil {
			return nil, errors.New("CancelOrder succeeded, want Unimplemented")
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return out, nil
}
