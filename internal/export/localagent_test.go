package export

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestLocalAgent(t *testing.T) {
	for _, rc := range []bool{false, true} {
		a := NewLocalAgent(LocalAgentOptions{MaxSpans: 25, RemoteConfig: rc}, nil)
		srv := httptest.NewServer(a)
		do := func(method, path string, body []byte) (int, string) {
			req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		_, info := do(http.MethodGet, "/info", nil)
		var parsed struct{ Endpoints []string }
		if err := json.Unmarshal([]byte(info), &parsed); err != nil {
			t.Fatal(err)
		}
		for _, ep := range []string{"/v0.4/traces", "/v0.5/traces", "/v1.0/traces", "/v0.6/stats", "/telemetry/proxy/", "/evp_proxy/v2/"} {
			if !slices.Contains(parsed.Endpoints, ep) {
				t.Errorf("/info lacks %s: %v", ep, parsed.Endpoints)
			}
		}
		if slices.Contains(parsed.Endpoints, "/v0.7/config") != rc {
			t.Errorf("RemoteConfig=%v but /info endpoints %v", rc, parsed.Endpoints)
		}
		status, _ := do(http.MethodPost, "/v0.7/config", []byte(`{}`))
		if want := map[bool]int{false: 404, true: 200}[rc]; status != want {
			t.Errorf("RemoteConfig=%v: /v0.7/config answered %d, want %d", rc, status, want)
		}

		ts := genTraces(rand.New(rand.NewPCG(21, 22)), 2, 4)
		for _, enc := range benchEncodings {
			status, body := do(http.MethodPut, enc.path, enc.encode(ts))
			if status != 200 || body != `{"rate_by_service":{}}` {
				t.Fatalf("%s: %d %q", enc.path, status, body)
			}
		}
		if status, _ := do(http.MethodPut, "/v0.4/traces", []byte{0x92, 0x01}); status != http.StatusBadRequest {
			t.Errorf("malformed v0.4: %d, want 400", status)
		}
		spans := a.Spans()
		if len(spans) != 24 { // 3 payloads of 8 spans; MaxSpans 25
			t.Fatalf("%d spans kept, want 24", len(spans))
		}
		do(http.MethodPut, "/v0.4/traces", encodeV04(ts, metaMap))
		if got := len(a.Spans()); got != 25 {
			t.Errorf("%d spans kept, want the bound 25", got)
		}
		for _, s := range spans {
			tr := ts[0]
			if s.TraceID.Low != tr[0].TraceID {
				tr = ts[1]
			}
			if s.TraceID != traceIDOf(tr) {
				t.Errorf("%s: trace ID %v, want %v", s.Endpoint, s.TraceID, traceIDOf(tr))
			}
			var orig = tr[0]
			for _, o := range tr {
				if o.SpanID == s.SpanID {
					orig = o
				}
			}
			if orig.SpanID != s.SpanID || s.ParentID != orig.ParentID || s.Service != orig.Service ||
				s.Name != orig.Name || s.Resource != orig.Resource || s.Meta["http.method"] != orig.Meta["http.method"] {
				t.Errorf("%s: span %+v does not match what was sent", s.Endpoint, s)
			}
		}
		do(http.MethodPost, "/v0.6/stats", []byte{0x80})
		do(http.MethodPost, "/telemetry/proxy/api/v2/apmtelemetry", []byte(`{"request_type":"app-started"}`))
		c := a.Counts()
		if c["/v0.6/stats"] != 1 || c["/telemetry/proxy/api/v2/apmtelemetry"] != 1 || c["/v0.4/traces"] != 3 {
			t.Errorf("counts %v", c)
		}
		if reqs := a.Requests(); len(reqs) != 3 || string(reqs[2].Body) != `{"request_type":"app-started"}` {
			t.Errorf("requests kept: %d", len(reqs))
		}
		srv.Close()
	}
}
