// Command client is the dd-trace-go v2 program the internal/export tests run
// against the trace intake proxy. It starts the spans of a few scenario
// traces, prints their IDs as JSON lines so that the test can hand the proxy
// code origin records for them, waits for a line on stdin, then finishes the
// spans and stops the tracer, which flushes them through the proxy.
//
// The agent address and protocol come from the environment like in any
// traced program (DD_TRACE_AGENT_URL, DD_TRACE_AGENT_PROTOCOL_VERSION).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
)

// spanLine is one line of output: a span the test may want a record for.
type spanLine struct {
	Scenario string `json:"scenario"`
	Name     string `json:"name"`
	TraceHi  uint64 `json:"trace_hi"`
	TraceLo  uint64 `json:"trace_lo"`
	SpanID   uint64 `json:"span_id"`
	ParentID uint64 `json:"parent_id"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run() error {
	if err := tracer.Start(tracer.WithService("shop"), tracer.WithEnv("test"), tracer.WithServiceVersion("1.2.3")); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	var open []*tracer.Span // finished in reverse order, children first
	emit := func(scenario, name string, s *tracer.Span, parent *tracer.Span) error {
		c := s.Context()
		var pid uint64
		if parent != nil {
			pid = parent.Context().SpanID()
		}
		open = append(open, s)
		return enc.Encode(spanLine{Scenario: scenario, Name: name, TraceHi: c.TraceIDUpper(),
			TraceLo: c.TraceIDLower(), SpanID: c.SpanID(), ParentID: pid})
	}
	scenarios := []string{"direct", "child", "other-service", "none", "preset", "seq"}
	for _, sc := range scenarios {
		root := tracer.StartSpan("http.request", tracer.ResourceName("GET /"+sc), tracer.SpanType("web"),
			tracer.Tag("http.method", "GET"), tracer.Tag("http.url", "/"+sc))
		if sc == "preset" {
			root.SetTag("_dd.code_origin.type", "entry")
			root.SetTag("_dd.code_origin.frames.0.method", "setByApp")
		}
		handler := tracer.StartSpan("handler", tracer.ChildOf(root.Context()), tracer.ResourceName(sc))
		db := tracer.StartSpan("postgres.query", tracer.ChildOf(handler.Context()), tracer.ServiceName("shop-db"),
			tracer.ResourceName("SELECT 1"), tracer.SpanType("sql"))
		leaf := tracer.StartSpan("postgres.fetch", tracer.ChildOf(db.Context()), tracer.ServiceName("shop-db"))
		leaf.SetTag("rows", 3)
		for _, s := range []struct {
			name string
			s, p *tracer.Span
		}{{"http.request", root, nil}, {"handler", handler, root}, {"postgres.query", db, handler}, {"postgres.fetch", leaf, db}} {
			if err := emit(sc, s.name, s.s, s.p); err != nil {
				return err
			}
		}
	}
	if err := enc.Encode(map[string]bool{"ready": true}); err != nil {
		return err
	}
	// Wait for the test to hand the proxy its records.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	for i := len(open) - 1; i >= 0; i-- {
		open[i].Finish(tracer.FinishTime(time.Now()))
	}
	tracer.Flush()
	tracer.Stop()
	return enc.Encode(map[string]bool{"done": true})
}
