package e2eservices

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestServices builds each service with the local toolchain, runs it with a
// real dd-trace-go tracer sending to a loopback Agent, hits every route and
// checks the truth against the runtime symbol table and against the span
// the tracer actually sent.
func TestServices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two traced services (about a minute each uncached)")
	}
	variants := []struct {
		name  Name
		label string
		flags []string
	}{
		{NetHTTPV2, "", nil},
		{NetHTTPV1, "", nil},
		// The truth comes from pclntab, which stripping keeps.
		{NetHTTPV2, "/stripped", []string{"-ldflags=-s -w"}},
	}
	for _, v := range variants {
		name := v.name
		t.Run(string(name)+v.label, func(t *testing.T) {
			agent := NewAgent(t)
			bin := Build(t, name, v.flags...)
			if v.label == "/stripped" {
				requireStripped(t, bin)
			}
			svc := Start(t, bin,
				"DD_TRACE_AGENT_URL="+agent.URL,
				"DD_SERVICE=e2e-"+string(name),
				"DD_INSTRUMENTATION_TELEMETRY_ENABLED=false",
				// Not DD_REMOTE_CONFIGURATION_ENABLED=false: with it,
				// dd-trace-go v1.73.1's tracer.Stop blocks forever in
				// remoteconfig.Stop (a send nobody receives).
				"DD_TRACE_STARTUP_LOGS=false",
			)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			truths := map[string]Truth{}
			for _, r := range Routes {
				tr, err := svc.Get(ctx, r.Path)
				if err != nil {
					t.Fatal(err)
				}
				checkTruth(t, r, tr)
				truths[r.Path] = tr
			}
			if err := svc.Stop(); err != nil { // flushes the tracer
				t.Fatalf("stop: %v", err)
			}
			if errs := agent.Errors(); len(errs) > 0 {
				t.Fatalf("agent could not decode payloads: %v", errs)
			}
			for _, r := range Routes {
				tr := truths[r.Path]
				span, ok := agent.Span(tr.SpanID)
				if !ok {
					t.Errorf("%s: span %s not among the %d spans the tracer sent", r.Path, tr.SpanID, len(agent.Spans()))
					continue
				}
				if span.Name != "http.request" || span.Resource != "GET "+r.Path {
					t.Errorf("%s: span %s is %q %q, want the http.request span of GET %s", r.Path, tr.SpanID, span.Name, span.Resource, r.Path)
				}
				if got := fmt.Sprintf("%s%016x", span.Meta["_dd.p.tid"], span.TraceID); got != tr.TraceID {
					t.Errorf("%s: sent trace ID (_dd.p.tid + trace_id) %s, service reported %s", r.Path, got, tr.TraceID)
				}
			}
		})
	}
}

func checkTruth(t *testing.T, r Route, tr Truth) {
	t.Helper()
	if tr.Route != r.Path {
		t.Errorf("%s: route %q", r.Path, tr.Route)
	}
	if !hex32.MatchString(tr.TraceID) || tr.TraceID == strings.Repeat("0", 32) {
		t.Errorf("%s: trace_id %q, want 32 hex digits, not zero", r.Path, tr.TraceID)
	}
	if id, err := strconv.ParseUint(tr.SpanID, 10, 64); err != nil || id == 0 {
		t.Errorf("%s: span_id %q, want a non-zero decimal uint64", r.Path, tr.SpanID)
	}
	if tr.Function != r.Function {
		t.Errorf("%s: function %q, want %q", r.Path, tr.Function, r.Function)
	}
	if !strings.HasSuffix(tr.File, "/handlers.go") {
		t.Errorf("%s: file %q, want .../handlers.go", r.Path, tr.File)
	} else if _, err := os.Stat(tr.File); err != nil {
		t.Errorf("%s: file: %v", r.Path, err)
	} else if src, err := os.ReadFile(tr.File); err == nil {
		lines := strings.Split(string(src), "\n")
		if tr.Line < 1 || tr.Line > len(lines) || !strings.Contains(lines[tr.Line-1], "func") {
			t.Errorf("%s: line %d of %s is not a func declaration", r.Path, tr.Line, tr.File)
		}
	}
}

func requireStripped(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".symtab") != nil || f.Section(".debug_info") != nil {
		t.Fatalf("%s still has .symtab or DWARF", bin)
	}
}
