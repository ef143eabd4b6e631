// Package admin serves originagent's admin HTTP endpoints: liveness
// (/healthz), readiness (/readyz), Prometheus metrics (/metrics) and a JSON
// self-report of the attached processes (/status). The agent owns the
// registry and the status; this package only exposes them.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// DefaultAddr is the admin address the agent and `originagent status` use
// unless told otherwise.
const DefaultAddr = "127.0.0.1:8128"

// counterPrefix selects the registry's counters summarised in Status.
const counterPrefix = "originagent_"

// Server is the admin HTTP server. Its zero value is not usable; call New.
type Server struct {
	addr    string
	reg     *prometheus.Registry
	status  func() Status
	log     *slog.Logger
	started time.Time
	srv     *http.Server

	mu     sync.Mutex
	ready  bool
	reason string
	regErr error
}

// New returns a server that will listen on addr. It registers the Go and
// process collectors on reg unless they are already registered; a nil reg
// means a new registry holding only those. status is
// called for each /status request and may be nil. The server starts not
// ready, with reason "starting".
func New(addr string, reg *prometheus.Registry, status func() Status, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		addr:    addr,
		reg:     reg,
		status:  status,
		log:     log,
		started: time.Now(),
		reason:  "starting",
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.regErr = errors.Join(s.regErr, fmt.Errorf("register collector: %w", err))
			}
		}
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// SetReady sets what /readyz answers. reason says why the agent is not
// ready and is ignored when ready is true.
func (s *Server) SetReady(ready bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ready {
		reason = ""
	} else if reason == "" {
		reason = "not ready"
	}
	if s.ready != ready {
		s.log.Info("readiness changed", "ready", ready, "reason", reason)
	}
	s.ready, s.reason = ready, reason
}

func (s *Server) readiness() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, s.reason
}

// Handler returns the admin endpoints as a handler, for tests and for
// mounting them on another server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready, reason := s.readiness(); !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", reason)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.reg,
		promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ErrorHandling:     promhttp.ContinueOnError,
			Registry:          s.reg,
			EnableOpenMetrics: true,
		})))
	mux.HandleFunc("GET /status", s.serveStatus)
	return mux
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := s.Status()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		s.log.Warn("write /status", "err", err)
	}
}

// Status returns what /status serves: the provider's status completed with
// the server's uptime, readiness and counter summary.
func (s *Server) Status() Status {
	var st Status
	if s.status != nil {
		st = s.status()
	}
	if st.Processes == nil {
		st.Processes = []Process{}
	}
	st.StartedAt = s.started.UTC()
	st.UptimeSeconds = time.Since(s.started).Seconds()
	st.Ready, st.NotReadyReason = s.readiness()
	counters, err := s.counters()
	if err != nil {
		s.log.Warn("summarise counters", "err", err)
	}
	if len(counters) > 0 {
		maps.Copy(counters, st.Counters)
		st.Counters = counters
	}
	return st
}

// counters sums every originagent_* counter of the registry over its labels.
func (s *Server) counters() (map[string]float64, error) {
	mfs, err := s.reg.Gather()
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER || !strings.HasPrefix(mf.GetName(), counterPrefix) {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		out[mf.GetName()] = sum
	}
	return out, err
}

// Serve listens on the server's address and serves until ctx is done, then
// shuts down gracefully (waiting at most 5 s for open requests).
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened, e.g. on port 0.
// It closes ln.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	if s.regErr != nil {
		ln.Close()
		return fmt.Errorf("admin: %w", s.regErr)
	}
	s.log.Info("admin server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("admin: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return err
	}
	<-errc
	return nil
}

// Shutdown stops the server gracefully, waiting for open requests until
// ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}
