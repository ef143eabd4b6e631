// Command connect-v2 is an end-to-end test target for originagent: a
// connectrpc.com/connect service (generated code, orderpb) with one RPC of
// every kind and a method only the embedded UnimplementedOrdersHandler
// serves, traced by dd-trace-go v2's net/http integration wrapping the mux
// (dd-trace-go has no connect integration the module proxy serves), so the
// http.request span is in the request's context, which connect passes to
// the implementation method; a user middleware runs inside the tracer's.
//
// It serves connect (HTTP/1.1 and unencrypted HTTP/2, which bidirectional
// streams need) on one loopback port and, on the port it prints
// ("listening on ADDR"), an untraced HTTP driver: GET /call/KIND makes one
// RPC of that kind to itself through a connect client and answers with the
// truths the implementation method reported (JSON), which the tests compare
// against what originagent captured. It knows nothing about originagent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"connectrpc.com/connect"
	httptrace "github.com/DataDog/dd-trace-go/contrib/net/http/v2"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"

	"example.com/connectsvc/orderpb"
	"example.com/connectsvc/orderpb/orderpbconnect"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the HTTP driver")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "connect-v2:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := tracer.Start(); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	defer tracer.Stop()

	mux := httptrace.NewServeMux()
	path, handler := orderpbconnect.NewOrdersHandler(&orderServer{store: memStore{}})
	mux.Handle(path, withCaller(handler))
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	cs := &http.Server{Handler: mux, Protocols: protocols, ReadHeaderTimeout: 5 * time.Second}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen connect: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- cs.Serve(cln) }()
	defer cs.Close()

	clientProtocols := new(http.Protocols)
	clientProtocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: clientProtocols}}
	d := &driver{orders: orderpbconnect.NewOrdersClient(client, "http://"+cln.Addr().String())}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	dmux := http.NewServeMux()
	dmux.HandleFunc("/call/{kind}", d.call)
	hs := &http.Server{Handler: dmux, ReadHeaderTimeout: 5 * time.Second}
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

type callerKey struct{}

// withCaller is a user middleware inside the tracer's: it runs under the
// span and must never be named the origin.
func withCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, r.URL.Path)))
	})
}

// driver makes the RPCs the HTTP driver is asked for.
type driver struct {
	orders orderpbconnect.OrdersClient
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
	out := []truthJSON{}
	switch kind {
	case "unary":
		resp, err := d.orders.GetOrder(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		out = append(out, toJSON(resp.Msg))
	case "server-stream":
		st, err := d.orders.ListOrders(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		for st.Receive() {
			out = append(out, toJSON(st.Msg()))
		}
		if err := st.Err(); err != nil {
			return nil, err
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
	case "client-stream":
		st := d.orders.UploadOrders(ctx)
		for range 3 {
			if err := st.Send(req); err != nil {
				return nil, err
			}
		}
		resp, err := st.CloseAndReceive()
		if err != nil {
			return nil, err
		}
		out = append(out, toJSON(resp.Msg))
	case "bidi":
		st := d.orders.Chat(ctx)
		for range 2 {
			if err := st.Send(req); err != nil {
				return nil, err
			}
			t, err := st.Receive()
			if err != nil {
				return nil, err
			}
			out = append(out, toJSON(t))
		}
		if err := st.CloseRequest(); err != nil {
			return nil, err
		}
		if err := st.CloseResponse(); err != nil {
			return nil, err
		}
	case "unimplemented":
		// Answered by UnimplementedOrdersHandler: an error, and no truth.
		if _, err := d.orders.CancelOrder(ctx, connect.NewRequest(req)); err == nil {
			return nil, errors.New("CancelOrder succeeded, want Unimplemented")
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return out, nil
}
