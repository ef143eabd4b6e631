package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/symbolize"
	"github.com/originagent/originagent/internal/testutil"
)

// grpcTruth is what the gRPC test service's implementation method reported.
type grpcTruth struct {
	TraceID  string `json:"trace_id"`
	SpanID   string `json:"span_id"`
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

func callGRPC(addr, kind string) ([]grpcTruth, error) {
	resp, err := http.Get("http://" + addr + "/call/" + kind)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", kind, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("call %s: %s %s %v", kind, resp.Status, body, err)
	}
	var ts []grpcTruth
	if err := json.Unmarshal(body, &ts); err != nil {
		return nil, fmt.Errorf("call %s: decode %q: %w", kind, body, err)
	}
	return ts, nil
}

// TestRunTagsGRPCSpans is TestRunTagsSpans for a gRPC server traced by
// dd-trace-go v2's interceptors: every RPC kind's grpc.server span reaches
// the decoding test Agent through the agent's intake with the code origin
// of its implementation method, and the RPC only the embedded
// Unimplemented...Server serves gets none.
func TestRunTagsGRPCSpans(t *testing.T) {
	upstream := checkRPCTags(t, e2eservices.GRPCV2, "grpc.server",
		[]string{"unary", "server-stream", "client-stream", "bidi", "echo"})
	var unimpl int
	for _, s := range upstream.Spans() {
		if s.Name != "grpc.server" || !strings.Contains(s.Resource, "CancelOrder") {
			continue
		}
		unimpl++
		if v, ok := s.Meta[origin.TagType]; ok {
			t.Errorf("CancelOrder (unimplemented) span tagged %s=%q: %v", origin.TagType, v, s.Meta)
		}
	}
	if unimpl != 1 {
		t.Errorf("%d CancelOrder grpc.server spans at the Agent, want 1", unimpl)
	}
}

// checkRPCTags runs an RPC test service (its HTTP driver makes the RPCs to
// itself: GET /call/KIND) through the agent's intake, makes one RPC of each
// kind and one of the unimplemented method, and checks that each kind's span
// (named spanName) reached the decoding test Agent with the code origin of
// the implementation method the service reported. It returns the Agent, for
// the caller's checks of the unimplemented RPC's span.
func checkRPCTags(t *testing.T, name e2eservices.Name, spanName string, kinds []string) *e2eservices.Agent {
	t.Helper()
	testutil.RequireRoot(t)
	upstream := e2eservices.NewAgent(t)
	a := startAgent(t, testAgentConfig(upstream.URL))
	intake := "http://" + a.proxy.Addrs()[0].String()

	bin := e2eservices.Build(t, name, "-buildmode=pie", "-trimpath", "-ldflags=-s -w")
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+intake, "DD_SERVICE=run-test-"+string(name),
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	waitAttached(t, a, svc.PID)

	var truths []grpcTruth
	for _, kind := range kinds {
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
		if span.Name != spanName {
			t.Errorf("%s: span %s is %q, want %s", tr.Function, tr.SpanID, span.Name, spanName)
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
	return upstream
}
