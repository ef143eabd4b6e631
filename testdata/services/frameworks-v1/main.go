// Command frameworks-v1 (and frameworks-v2, which shares this file) is an
// end-to-end test target for originagent: one service serving gin, echo,
// chi, gorilla/mux, httprouter and fiber routers under their own path prefixes, as
// six services of one framework each would, traced as tracing.go says.
// Every route answers with the truth the tests compare against.
//
// It knows nothing about originagent; the tracer is configured through
// DD_* environment variables only.
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
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "frameworks:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	stopTracer, err := startTracer()
	if err != nil {
		return err
	}
	defer stopTracer()

	var n atomic.Int64
	tr := newTracing()
	top := http.NewServeMux()
	top.Handle("/gin/", ginRoutes(tr, &n))
	top.Handle("/echo/", echoRoutes(tr, &n))
	top.Handle("/chi/", chiRoutes(tr, &n))
	top.Handle("/mux/", muxRoutes(tr, &n))
	top.Handle("/httprouter/", routerRoutes(tr, &n))
	top.Handle("/fiber/", fiberRoutes(tr, &n))
	top.HandleFunc("/pid", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"pid": os.Getpid()})
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: top, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
