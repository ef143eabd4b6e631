// Command shop is a small online shop API used by `make demo`: an ordinary
// net/http service traced with dd-trace-go v2. The tracer is configured
// through DD_* environment variables only (DD_SERVICE, DD_ENV,
// DD_TRACE_AGENT_URL, ...); the service knows nothing about originagent.
//
// Routes: GET /healthz, GET /users, GET /users/{id}, GET /products,
// GET /products/{sku}, GET /carts/{user}, POST /carts/{user}/items,
// GET /orders, GET /orders/{id}, POST /orders (orders need an X-API-Key
// header: key-ada, key-grace or key-alan).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	httptrace "github.com/DataDog/dd-trace-go/contrib/net/http/v2"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"

	"github.com/originagent/originagent/examples/shop/api"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, log); err != nil {
		log.Error("shop failed", "err", err)
		os.Exit(1)
	}
}

func run(addr string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := tracer.Start(); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	// Stop flushes the spans still buffered.
	defer tracer.Stop()

	mux := httptrace.NewServeMux()
	api.Register(mux, api.NewStore(), log)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Scripts wait for this line.
	fmt.Printf("listening on %s\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
