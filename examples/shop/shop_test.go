package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/e2eservices"
)

// TestShop builds the shop, runs it with a real dd-trace-go tracer sending
// to a loopback Agent, exercises the routes and checks the spans flushed at
// SIGTERM and the trace-correlated request logs.
func TestShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shop with the local toolchain")
	}
	bin := e2eservices.BuildPackage(t, "./examples/shop")
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin,
		"DD_TRACE_AGENT_URL="+agent.URL,
		"DD_SERVICE=shop",
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED=false",
	)

	requests := []struct {
		method, path, key, body string
		status                  int
		resource                string
	}{
		{"GET", "/healthz", "", "", 200, "GET /healthz"},
		{"GET", "/users/1", "", "", 200, "GET /users/{id}"},
		{"GET", "/products", "", "", 200, "GET /products"},
		{"POST", "/carts/2/items", "", `{"sku":"tee","quantity":1}`, 200, "POST /carts/{user}/items"},
		{"POST", "/orders", "key-grace", `{"items":[{"sku":"tee","quantity":1}]}`, 201, "POST /orders"},
		{"GET", "/orders", "", "", 401, "GET /orders"},
	}
	for _, r := range requests {
		req, err := http.NewRequest(r.method, "http://"+svc.Addr+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.key != "" {
			req.Header.Set("X-API-Key", r.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Errorf("%s %s = %d %s, want %d", r.method, r.path, resp.StatusCode, body, r.status)
		}
	}
	if err := svc.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if errs := agent.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}

	entry := map[string]uint64{} // resource -> span ID of the http.request span
	var placeOrder *uint64
	for _, s := range agent.Spans() {
		switch s.Name {
		case "http.request":
			if s.Service != "shop" || s.ParentID != 0 {
				t.Errorf("entry span %s: service %q parent %d", s.Resource, s.Service, s.ParentID)
			}
			entry[s.Resource] = s.SpanID
		case "shop.place_order":
			placeOrder = &s.ParentID
		}
	}
	for _, r := range requests {
		if _, ok := entry[r.resource]; !ok {
			t.Errorf("no http.request span with resource %q; got %v", r.resource, entry)
		}
	}
	if placeOrder == nil || *placeOrder != entry["POST /orders"] {
		t.Errorf("shop.place_order span missing or not a child of the POST /orders span")
	}

	// Every request log line carries the span it ran under.
	logs := svc.Stderr()
	for _, id := range entry {
		if !regexp.MustCompile(`msg=request .* dd.span_id=` + strconv.FormatUint(id, 10) + `\b`).MatchString(logs) {
			t.Errorf("no request log line for span %d in:\n%s", id, logs)
		}
	}
}
