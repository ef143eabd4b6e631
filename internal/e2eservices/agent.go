package e2eservices

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
)

// Agent is a loopback stand-in for the Datadog Agent's trace intake that
// records the v0.4 payloads it receives. It advertises only /v0.4/traces
// in /info, so tracers send that format, and answers every other path the
// tracers use (remote config, telemetry, stats) with 404, as an Agent with
// those features off does. The real Agent cannot run on the test machine.
type Agent struct {
	// URL is the agent's base URL, suitable for DD_TRACE_AGENT_URL.
	URL string

	mu      sync.Mutex
	spans   []*pb.Span
	headers []http.Header
	errs    []error
}

// NewAgent starts an Agent on loopback, closed when the test ends.
func NewAgent(t testing.TB) *Agent {
	t.Helper()
	a := &Agent{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"version":   "7.99.0",
			"endpoints": []string{"/v0.4/traces"},
		})
	})
	mux.HandleFunc("PUT /v0.4/traces", a.traces)
	mux.HandleFunc("POST /v0.4/traces", a.traces)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func (a *Agent) traces(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 25<<20))
	if err != nil {
		a.fail(fmt.Errorf("read v0.4 payload: %w", err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var traces pb.Traces
	if _, err := traces.UnmarshalMsg(body); err != nil {
		a.fail(fmt.Errorf("decode v0.4 payload of %d bytes: %w", len(body), err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	for _, tr := range traces {
		a.spans = append(a.spans, tr...)
	}
	a.headers = append(a.headers, r.Header.Clone())
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"rate_by_service":{}}`)
}

func (a *Agent) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

// Spans returns every span received so far.
func (a *Agent) Spans() []*pb.Span {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*pb.Span(nil), a.spans...)
}

// Span returns the received span with the given decimal span ID.
func (a *Agent) Span(spanID string) (*pb.Span, bool) {
	id, err := strconv.ParseUint(spanID, 10, 64)
	if err != nil {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.spans {
		if s.SpanID == id {
			return s, true
		}
	}
	return nil, false
}

// Headers returns the headers of every trace payload received so far.
func (a *Agent) Headers() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]http.Header(nil), a.headers...)
}

// Errors returns the payloads the agent could not read or decode.
func (a *Agent) Errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}
