package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/originagent/originagent/internal/admin"
)

// startAdmin runs a real admin server on loopback until the test ends.
func startAdmin(t *testing.T, provider func() admin.Status, reg *prometheus.Registry) (*admin.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New("", reg, provider, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newStatusCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), err
}

func testStatus() admin.Status {
	return admin.Status{
		Version: "v0.1.0",
		Processes: []admin.Process{
			{
				PID: 4242, Binary: "/app/shop", GoVersion: "go1.26.8", Service: "shop",
				Frameworks: []string{"net/http", "gin"},
				Probes: []admin.Probe{
					{Framework: "net/http", Symbol: "net/http.HandlerFunc.ServeHTTP", Hits: 10},
					{Framework: "gin", Symbol: "github.com/gin-gonic/gin.(*Context).Next", Hits: 5},
				},
				Labels: map[string]string{"pod": "shop-7d9", "namespace": "prod"},
			},
			{PID: 77, Binary: "/usr/local/bin/a-much-longer-binary-name", GoVersion: "go1.22.1"},
		},
	}
}

func TestStatusTable(t *testing.T) {
	reg := prometheus.NewRegistry()
	tagged := prometheus.NewCounter(prometheus.CounterOpts{Name: "originagent_spans_tagged_total", Help: "h"})
	reg.MustRegister(tagged)
	tagged.Add(12)
	s, addr := startAdmin(t, testStatus, reg)
	s.SetReady(true, "")

	out, err := runStatus(t, "--admin-addr", addr)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "originagent v0.1.0, up ") || !strings.HasSuffix(lines[0], ", ready") {
		t.Errorf("summary line %q", lines[0])
	}
	var header, shop, other string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "PID"):
			header = l
		case strings.HasPrefix(l, "4242"):
			shop = l
		case strings.HasPrefix(l, "77 "):
			other = l
		}
	}
	if header == "" || shop == "" || other == "" {
		t.Fatalf("table rows missing:\n%s", out)
	}
	for _, want := range []string{"shop", "/app/shop", "go1.26.8", "net/http,gin", " 2 ", " 15 ", "namespace=prod,pod=shop-7d9"} {
		if !strings.Contains(shop, want) {
			t.Errorf("row %q lacks %q", shop, want)
		}
	}
	// Columns are aligned: each column starts where its header does.
	for _, col := range []struct{ header, shop, other string }{
		{"BINARY", "/app/shop", "/usr/local/bin/a-much-longer-binary-name"},
		{"GO", "go1.26.8", "go1.22.1"},
		{"LABELS", "namespace=prod", "-"},
	} {
		h := strings.Index(header, col.header)
		if strings.Index(shop, col.shop) != h || strings.LastIndex(other, col.other) != h {
			t.Errorf("column %s not aligned:\n%s\n%s\n%s", col.header, header, shop, other)
		}
	}
	if !strings.Contains(out, "originagent_spans_tagged_total  12") {
		t.Errorf("counters missing:\n%s", out)
	}
}

func TestStatusNotReadyAndEmpty(t *testing.T) {
	_, addr := startAdmin(t, nil, prometheus.NewRegistry())
	out, err := runStatus(t, "--admin-addr", "http://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NOT READY: starting") || !strings.Contains(out, "no processes attached") {
		t.Errorf("output:\n%s", out)
	}
}

func TestStatusJSON(t *testing.T) {
	_, addr := startAdmin(t, testStatus, prometheus.NewRegistry())
	out, err := runStatus(t, "--admin-addr", addr, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	want := testStatus()
	if st.Version != want.Version || len(st.Processes) != 2 || st.Processes[0].PID != 4242 ||
		st.Processes[0].Probes[1].Symbol != want.Processes[0].Probes[1].Symbol {
		t.Errorf("decoded %+v", st)
	}
}

func TestStatusErrors(t *testing.T) {
	// A port nothing listens on: bind one, note it, close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer failing.Close()
	notAgent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}))
	defer notAgent.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hung.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nobody listens", []string{"--admin-addr", closed}, "no originagent at " + closed + ":"},
		{"error status", []string{"--admin-addr", failing.URL}, "answered /status with 500 Internal Server Error: boom"},
		{"not an agent", []string{"--admin-addr", notAgent.URL}, "decode /status from " + notAgent.URL},
		{"timeout", []string{"--admin-addr", hung.URL, "--timeout", "100ms"}, "no originagent at " + hung.URL},
		{"extra args", []string{"foo"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runStatus(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
