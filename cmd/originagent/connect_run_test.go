package main

import (
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
)

// TestRunTagsConnectSpans is TestRunTagsGRPCSpans for a connectrpc.com/connect
// server traced by dd-trace-go v2's net/http integration: every RPC kind's
// http.request span reaches the decoding test Agent through the agent's
// intake with the code origin of its implementation method, and the RPC only
// the embedded Unimplemented...Handler serves is never tagged with generated
// code (it has the user's middleware around connect's handler as origin).
func TestRunTagsConnectSpans(t *testing.T) {
	upstream := checkRPCTags(t, e2eservices.ConnectV2, "http.request",
		[]string{"unary", "server-stream", "client-stream", "bidi"})
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
