package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/symbolize"
	"github.com/originagent/originagent/internal/testutil"
)

// TestRunTagsConnectSpans is TestRunTagsGRPCSpans for a connectrpc.com/connect
// server traced by dd-trace-go v2's net/http integration: every RPC kind's
// http.request span reaches the decoding test Agent through the agent's
// intake with the code origin of its implementation method, and the RPC only
// the embedded Unimplemented...Handler serves is never tagged with generated
// code (it has the user's middleware around connect's handler as origin).
func TestRunTagsConnectSpans(t *testing.T) {
	testutil.RequireRoot(t)
	upstream := e2eservices.NewAgent(t)
	a := startAgent(t, testAgentConfig(upstream.URL))
	intake := "http://" + a.proxy.Addrs()[0].String()

	bin := e2eservices.Build(t, e2eservices.ConnectV2, "-buildmode=pie", "-trimpath", "-ldflags=-s -w")
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+intake, "DD_SERVICE=run-test-connect",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	waitAttached(t, a, svc.PID)

	var truths []grpcTruth
	for _, kind := range []string{"unary", "server-stream", "client-stream", "bidi"} {
		ts, err := callGRPC(svc.Addr, kind)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 || ts[0].SpanID == "" {
			t.Fatalf("%s: no truth or no span: %+v", kind, ts)
		}
		truths = append(truths, ts[0])
	}
	if _, err := callGRPC(svc.Addr, "unimplemented"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(); err != nil { // flushes the tracer
		t.Fatalf("service exit: %v\n%s", err, svc.Stderr())
	}
	sym, err := symbolize.Open(bin, symbolize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range truths {
		span, ok := upstream.Span(tr.SpanID)
		if !ok {
			t.Errorf("%s: span %s never reached the Agent", tr.Function, tr.SpanID)
			continue
		}
		if span.Name != "http.request" {
			t.Errorf("%s: span %s is %q, want http.request", tr.Function, tr.SpanID, span.Name)
		}
		_, typ, method := sym.SplitName(tr.Function)
		want := map[string]string{
			origin.TagType:        "entry",
			origin.TagFrameFile:   tr.File,
			origin.TagFrameLine:   strconv.Itoa(tr.Line),
			origin.TagFrameType:   typ,
			origin.TagFrameMethod: method,
		}
		for k, v := range want {
			if got := span.Meta[k]; got != v {
				t.Errorf("%s: %s = %q, want %q", tr.Function, k, got, v)
			}
		}
	}
	var unimpl int
	for _, s := range upstream.Spans() {
		if s.Name != "http.request" || !strings.Contains(s.Meta["http.url"], "CancelOrder") {
			continue
		}
		unimpl++
		t.Logf("CancelOrder (unimplemented) span's origin: %s.%s %s:%s", s.Meta[origin.TagFrameType], s.Meta[origin.TagFrameMethod], s.Meta[origin.TagFrameFile], s.Meta[origin.TagFrameLine])
		if f := s.Meta[origin.TagFrameFile]; strings.HasSuffix(f, ".connect.go") || strings.Contains(s.Meta[origin.TagFrameMethod], "CancelOrder") {
			t.Errorf("CancelOrder (unimplemented) span tagged with generated code: %v", s.Meta)
		}
	}
	if unimpl != 1 {
		t.Errorf("%d CancelOrder http.request spans at the Agent, want 1", unimpl)
	}
}
