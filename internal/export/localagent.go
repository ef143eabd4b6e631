package export

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
	"github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace/idx"

	"github.com/originagent/originagent/internal/origin"
)

// Span is a span as LocalAgent received it, decoded with the Agent's own
// pkg/proto types.
type Span struct {
	Endpoint string // "/v0.4/traces", "/v0.5/traces" or "/v1.0/traces"
	TraceID  origin.TraceID
	SpanID   uint64
	ParentID uint64
	Service  string
	Name     string
	Resource string
	Type     string
	Start    int64
	Duration int64
	Error    bool
	Meta     map[string]string
	Metrics  map[string]float64
}

// Request is a non-trace request LocalAgent received, kept for inspection.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// LocalAgentOptions configures a LocalAgent.
type LocalAgentOptions struct {
	// MaxSpans bounds the spans kept (oldest dropped first); default 100000.
	MaxSpans int
	// MaxRequests bounds the non-trace requests kept; default 1000.
	MaxRequests int
	// RemoteConfig lists /v0.7/config in /info and answers it with an empty
	// configuration; when false it is not listed and answers 404, like an
	// Agent without remote configuration.
	RemoteConfig bool
}

// LocalAgent is an in-process stand-in for the Datadog Agent's trace intake:
// the demo uses it when no Agent is reachable, and tests use it as the
// proxy's upstream. It serves /info (v0.4, v0.5 and v1.0 trace endpoints
// plus the others dd-trace-go looks for), decodes trace payloads of all three
// versions with the Agent's decoders and keeps the spans, answers
// {"rate_by_service":{}}, and accepts and counts stats, telemetry, evp_proxy,
// profiling and debugger requests.
type LocalAgent struct {
	opts LocalAgentOptions
	log  *slog.Logger

	mu       sync.Mutex
	spans    []Span
	requests []Request
	counts   map[string]int
	payloads map[string]int
}

// NewLocalAgent returns a LocalAgent; mount it on an http.Server.
func NewLocalAgent(opts LocalAgentOptions, log *slog.Logger) *LocalAgent {
	if opts.MaxSpans <= 0 {
		opts.MaxSpans = 100_000
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 1000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LocalAgent{opts: opts, log: log, counts: map[string]int{}, payloads: map[string]int{}}
}

// Spans returns a copy of the spans received so far, oldest first.
func (a *LocalAgent) Spans() []Span {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.spans)
}

// Requests returns the non-trace requests received so far, oldest first.
func (a *LocalAgent) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// Counts returns the number of requests received per path.
func (a *LocalAgent) Counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.counts)
}

// Reset forgets everything received.
func (a *LocalAgent) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.spans, a.requests = nil, nil
	clear(a.counts)
}

func (a *LocalAgent) endpoints() []string {
	eps := []string{
		"/v0.4/traces", "/v0.5/traces", "/v1.0/traces", "/v0.6/stats",
		"/telemetry/proxy/", "/evp_proxy/v2/", "/evp_proxy/v4/", "/profiling/v1/input",
		"/debugger/v1/input", "/debugger/v1/diagnostics", "/debugger/v2/input",
	}
	if a.opts.RemoteConfig {
		eps = append(eps, "/v0.7/config")
	}
	return eps
}

// maxLocalBody is the Agent's default max_request_bytes.
const maxLocalBody = DefaultMaxBody

// ServeHTTP implements http.Handler.
func (a *LocalAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.counts[r.URL.Path]++
	a.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLocalBody+1))
	if err != nil {
		http.Error(w, "unexpected-eof", http.StatusBadRequest)
		return
	}
	if len(body) > maxLocalBody {
		http.Error(w, "payload-too-large", http.StatusRequestEntityTooLarge)
		return
	}
	switch r.URL.Path {
	case "/info":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"version":           "originagent-local",
			"endpoints":         a.endpoints(),
			"client_drop_p0s":   false,
			"span_meta_structs": true,
			"span_events":       true,
			"config":            map[string]any{"max_request_bytes": maxLocalBody},
		})
		return
	case "/v0.4/traces", "/v0.5/traces", "/v1.0/traces":
		spans, err := DecodeTraces(r.URL.Path, body)
		if err != nil {
			a.log.Warn("local agent: cannot decode traces", "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.spans = append(a.spans, spans...)
		if over := len(a.spans) - a.opts.MaxSpans; over > 0 {
			a.spans = slices.Delete(a.spans, 0, over)
		}
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"rate_by_service":{}}`)
		return
	}
	a.mu.Lock()
	a.requests = append(a.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	if over := len(a.requests) - a.opts.MaxRequests; over > 0 {
		a.requests = slices.Delete(a.requests, 0, over)
	}
	a.mu.Unlock()
	switch {
	case r.URL.Path == "/v0.7/config":
		if !a.opts.RemoteConfig {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	case r.URL.Path == "/v0.6/stats",
		strings.HasPrefix(r.URL.Path, "/telemetry/"),
		strings.HasPrefix(r.URL.Path, "/evp_proxy/"),
		strings.HasPrefix(r.URL.Path, "/profiling/"),
		strings.HasPrefix(r.URL.Path, "/debugger/"):
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// DecodeTraces decodes a trace payload of the given endpoint with the
// Agent's own decoders (pb.Traces for v0.4, its dictionary decoder for v0.5,
// idx for v1.0) into Spans.
func DecodeTraces(endpoint string, body []byte) ([]Span, error) {
	switch endpoint {
	case "/v0.4/traces", "/v0.5/traces":
		var ts pb.Traces
		var err error
		if endpoint == "/v0.4/traces" {
			_, err = ts.UnmarshalMsg(body)
		} else {
			err = ts.UnmarshalMsgDictionary(body)
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", endpoint, err)
		}
		var out []Span
		for _, t := range ts {
			var high uint64
			for _, s := range t {
				if s != nil {
					if h, ok := parseTID([]byte(s.Meta[tidKey])); ok {
						high = h
						break
					}
				}
			}
			for _, s := range t {
				if s == nil {
					continue
				}
				out = append(out, Span{
					Endpoint: endpoint, TraceID: origin.TraceID{High: high, Low: s.TraceID},
					SpanID: s.SpanID, ParentID: s.ParentID, Service: s.Service, Name: s.Name,
					Resource: s.Resource, Type: s.Type, Start: s.Start, Duration: s.Duration,
					Error: s.Error != 0, Meta: s.Meta, Metrics: s.Metrics,
				})
			}
		}
		return out, nil
	case "/v1.0/traces":
		tp := &idx.InternalTracerPayload{}
		if _, err := tp.UnmarshalMsg(body); err != nil {
			return nil, fmt.Errorf("decode %s: %w", endpoint, err)
		}
		var out []Span
		for _, c := range tp.Chunks {
			tid := origin.TraceID{High: c.TraceIDHigh(), Low: c.LegacyTraceID()}
			for _, s := range c.Spans {
				meta := map[string]string{}
				metrics := map[string]float64{}
				for k, v := range s.Attributes() {
					key := tp.Strings.Get(k)
					switch v.Value.(type) {
					case *idx.AnyValue_DoubleValue, *idx.AnyValue_IntValue:
						f, _ := v.AsDoubleValue(tp.Strings)
						metrics[key] = f
					default:
						meta[key] = v.AsString(tp.Strings)
					}
				}
				out = append(out, Span{
					Endpoint: endpoint, TraceID: tid, SpanID: s.SpanID(), ParentID: s.ParentID(),
					Service: s.Service(), Name: s.Name(), Resource: s.Resource(), Type: s.Type(),
					Start: int64(s.Start()), Duration: int64(s.Duration()), Error: s.Error(),
					Meta: meta, Metrics: metrics,
				})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("decode traces: unknown endpoint %q", endpoint)
}
