package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// start serves s on a loopback port until the test ends and returns its base URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	s := New("", prometheus.NewRegistry(), nil, nil)
	base := start(t, s)

	steps := []struct {
		name       string
		set        func()
		path       string
		wantStatus int
		wantBody   string
	}{
		{"alive from the start", nil, "/healthz", 200, "ok"},
		{"not ready at start", nil, "/readyz", 503, "not ready: starting"},
		{"reason shown", func() { s.SetReady(false, "loading probes") }, "/readyz", 503, "not ready: loading probes"},
		{"empty reason", func() { s.SetReady(false, "") }, "/readyz", 503, "not ready: not ready"},
		{"ready", func() { s.SetReady(true, "ignored") }, "/readyz", 200, "ok"},
		{"alive while ready", nil, "/healthz", 200, "ok"},
		{"ready again lost", func() { s.SetReady(false, "trace proxy stopped") }, "/readyz", 503, "trace proxy stopped"},
		{"liveness independent of readiness", nil, "/healthz", 200, "ok"},
		{"unknown path", nil, "/nope", 404, ""},
	}
	for _, st := range steps {
		if st.set != nil {
			st.set()
		}
		code, body := get(t, base+st.path)
		if code != st.wantStatus || !strings.Contains(body, st.wantBody) {
			t.Errorf("%s: GET %s = %d %q, want %d containing %q", st.name, st.path, code, body, st.wantStatus, st.wantBody)
		}
	}

	resp, err := http.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "originagent_records_total", Help: "Code-origin records received.",
	}, []string{"framework"})
	reg.MustRegister(records)
	records.WithLabelValues("net/http").Add(3)
	records.WithLabelValues("gin").Add(2)

	base := start(t, New("", reg, nil, nil))
	// Scrape twice: the second scrape sees the first in promhttp's counter.
	get(t, base+"/metrics")
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	tests := []struct {
		name string
		typ  dto.MetricType
		// check the summed value when min >= 0
		min float64
	}{
		{"originagent_records_total", dto.MetricType_COUNTER, 5},
		{"go_goroutines", dto.MetricType_GAUGE, 1},
		{"process_cpu_seconds_total", dto.MetricType_COUNTER, 0},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, 1},
		{"promhttp_metric_handler_requests_total", dto.MetricType_COUNTER, 1},
	}
	for _, tt := range tests {
		mf, ok := mfs[tt.name]
		if !ok {
			t.Errorf("%s missing from /metrics", tt.name)
			continue
		}
		if mf.GetType() != tt.typ {
			t.Errorf("%s: type %v, want %v", tt.name, mf.GetType(), tt.typ)
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		if sum < tt.min {
			t.Errorf("%s = %v, want >= %v", tt.name, sum, tt.min)
		}
	}
	if n := len(mfs["originagent_records_total"].GetMetric()); n != 2 {
		t.Errorf("originagent_records_total has %d series, want 2", n)
	}
}

func TestStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "originagent_dropped_total", Help: "Dropped records.",
	}, []string{"reason"})
	tagged := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "originagent_spans_tagged_total", Help: "Spans tagged.",
	})
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "unrelated_total", Help: "Not ours."})
	reg.MustRegister(dropped, tagged, other)
	dropped.WithLabelValues("no_span").Add(4)
	dropped.WithLabelValues("queue_full").Add(1)
	tagged.Add(7)
	other.Add(100)

	attached := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	provider := func() Status {
		return Status{
			Version: "v0.1.0-test",
			Processes: []Process{{
				PID: 4242, Binary: "/app/shop", BuildID: "abc/def", GoVersion: "go1.26.8",
				Service: "shop", Frameworks: []string{"net/http"},
				Probes: []Probe{{Framework: "net/http", Symbol: "net/http.(*ServeMux).ServeHTTP", Hits: 12}},
				Labels: map[string]string{"pod": "shop-7d9", "namespace": "prod"}, AttachedAt: attached,
			}},
			// The provider's own entry wins over the registry's sum.
			Counters: map[string]float64{"originagent_spans_tagged_total": 8},
		}
	}
	s := New("", reg, provider, nil)
	s.SetReady(false, "proxy not listening")
	base := start(t, s)

	code, body := get(t, base+"/status")
	if code != 200 {
		t.Fatalf("GET /status = %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, body)
	}
	if st.Version != "v0.1.0-test" || st.Ready || st.NotReadyReason != "proxy not listening" {
		t.Errorf("version/readiness = %q %v %q", st.Version, st.Ready, st.NotReadyReason)
	}
	if st.UptimeSeconds <= 0 || st.StartedAt.IsZero() || time.Since(st.StartedAt) > time.Minute {
		t.Errorf("uptime %v started %v", st.UptimeSeconds, st.StartedAt)
	}
	if len(st.Processes) != 1 {
		t.Fatalf("processes = %+v", st.Processes)
	}
	p := st.Processes[0]
	if p.PID != 4242 || p.Binary != "/app/shop" || p.Labels["pod"] != "shop-7d9" ||
		len(p.Probes) != 1 || p.Probes[0].Hits != 12 || !p.AttachedAt.Equal(attached) {
		t.Errorf("process = %+v", p)
	}
	wantCounters := map[string]float64{
		"originagent_dropped_total":      5,
		"originagent_spans_tagged_total": 8,
	}
	for k, v := range wantCounters {
		if st.Counters[k] != v {
			t.Errorf("counters[%s] = %v, want %v (all: %v)", k, st.Counters[k], v, st.Counters)
		}
	}
	if _, ok := st.Counters["unrelated_total"]; ok {
		t.Errorf("counters include a non-originagent metric: %v", st.Counters)
	}
	if !strings.Contains(body, `"build_id": "abc/def"`) || !strings.Contains(body, `"go_version": "go1.26.8"`) {
		t.Errorf("JSON field names changed:\n%s", body)
	}
}

func TestStatusWithoutProvider(t *testing.T) {
	base := start(t, New("", prometheus.NewRegistry(), nil, nil))
	_, body := get(t, base+"/status")
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	// An empty list, not null, so clients can range over it.
	if ps, ok := raw["processes"].([]any); !ok || len(ps) != 0 {
		t.Errorf("processes = %#v, want []", raw["processes"])
	}
}

func TestServeErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = New(ln.Addr().String(), prometheus.NewRegistry(), nil, nil).Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Serve on a busy address: err = %v, want one naming the address", err)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A second server on the same registry must not fail on the collectors.
	New("", reg, nil, nil)
	s := New("127.0.0.1:0", reg, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of cancel")
	}
}
