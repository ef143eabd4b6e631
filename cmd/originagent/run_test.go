package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/symbolize"
	"github.com/originagent/originagent/internal/testutil"
)

// testAgentConfig is the loopback configuration forwarding to upstream.
func testAgentConfig(upstream string) agentConfig {
	cfg := loopbackAgentConfig()
	cfg.proxy.Upstream = upstream
	cfg.proxy.DrainPeriod = 50 * time.Millisecond // no successor to wait for
	return cfg
}

// startAgent runs an agent until the test ends and returns it once ready.
func startAgent(t *testing.T, cfg agentConfig) *agent {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := newAgent(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("agent did not stop within 5 s")
		}
	})
	return a
}

func waitAttached(t *testing.T, a *agent, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range a.engine.Processes() {
			if p.PID == pid {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pid %d not attached within 5 s", pid)
}

// TestRunTagsSpans is the whole product on one machine: real dd-trace-go
// services, started after the agent, are discovered through their exec
// events, probed, and their spans reach a decoding test Agent through the
// agent's trace intake carrying exactly the code origin of their handlers:
// a net/http service with dd-trace-go v2, and gin, echo, chi, gorilla/mux
// and httprouter routers with dd-trace-go v1.73 (its contrib integrations)
// and v2.12 (see e2eservices.FrameworksV2).
func TestRunTagsSpans(t *testing.T) {
	testutil.RequireRoot(t)
	upstream := e2eservices.NewAgent(t)
	a := startAgent(t, testAgentConfig(upstream.URL))
	intake := "http://" + a.proxy.Addrs()[0].String()

	var tagged int
	for _, tc := range []struct {
		svc   e2eservices.Name
		flags []string
	}{
		{e2eservices.NetHTTPV2, []string{"-buildmode=pie", "-trimpath", "-ldflags=-s -w"}},
		{e2eservices.FrameworksV1, []string{"-buildmode=pie", "-trimpath", "-ldflags=-s -w"}},
		{e2eservices.FrameworksV2, []string{"-buildmode=pie", "-trimpath", "-ldflags=-s -w"}},
	} {
		t.Run(string(tc.svc), func(t *testing.T) {
			tagged += checkTagged(t, a, upstream, intake, tc.svc, tc.flags)
		})
	}

	// The admin endpoints describe what happened.
	admin := a.adminURL
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	fams := scrape(t, admin+"/metrics")
	for name, atLeast := range map[string]float64{
		"originagent_discover_processes_selected_total": 1,
		"originagent_records_emitted_total":             float64(tagged),
		"originagent_export_spans_tagged_total":         float64(tagged),
	} {
		if got := sum(fams, name); got < atLeast {
			t.Errorf("metric %s = %v, want >= %v", name, got, atLeast)
		}
	}
}

// checkTagged runs the service svc built with flags, requests each of its
// routes once, and checks the spans the Agent received; it returns how
// many spans it checked.
func checkTagged(t *testing.T, a *agent, upstream *e2eservices.Agent, intake string, svc e2eservices.Name, flags []string) int {
	bin := e2eservices.Build(t, svc, flags...)
	s := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+intake, "DD_SERVICE=run-test-"+string(svc),
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	waitAttached(t, a, s.PID)

	var truths []e2eservices.Truth
	for _, r := range e2eservices.RoutesOf(svc) {
		tr, err := s.Get(context.Background(), r.Path)
		if err != nil {
			t.Fatal(err)
		}
		truths = append(truths, tr)
	}
	if err := s.Stop(); err != nil { // flushes the tracer
		t.Fatalf("service exit: %v\n%s", err, s.Stderr())
	}
	sym, err := symbolize.Open(bin, symbolize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range truths {
		span, ok := upstream.Span(tr.SpanID)
		if !ok {
			t.Errorf("%s: span %s never reached the Agent", tr.Route, tr.SpanID)
			continue
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
				t.Errorf("%s: %s = %q, want %q", tr.Route, k, got, v)
			}
		}
	}
	return len(truths)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

func sum(fams map[string]*dto.MetricFamily, name string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			s += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			s += m.GetGauge().GetValue()
		}
	}
	return s
}

// TestRunStopsOnSIGTERM runs the real binary and stops it the way
// Kubernetes does: it must log its shutdown and exit 0 within 5 s.
func TestRunStopsOnSIGTERM(t *testing.T) {
	testutil.RequireRoot(t)
	bin := e2eservices.BuildPackage(t, "./cmd/originagent")
	cmd := exec.Command(bin, "run", "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--local-agent", "always")
	var logs lockedLog
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "originagent running") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("agent did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 5 s after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown line in the log:\n%s", logs.String())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// lockedLog is an io.Writer safe to read while a process writes to it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunWithoutPrivileges runs the real binary as an unprivileged user:
// `run` and `demo` must exit with an error naming the missing capabilities,
// not crash.
func TestRunWithoutPrivileges(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) not found: %v", err)
	}
	// A private copy: the shared build's directories stay as they are.
	bin := filepath.Join(t.TempDir(), "originagent")
	exe, err := os.ReadFile(e2eservices.BuildPackage(t, "./cmd/originagent"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(bin); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil { // let nobody reach the binary
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"run", "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"},
		{"demo", "--shop", bin},
	} {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", bin}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("%s: %v, want exit status 1\n%s", args[0], err, out)
		}
		if strings.Contains(string(out), "panic") || !strings.Contains(string(out), "CAP_SYS_ADMIN") {
			t.Errorf("%s: want an error naming the missing capabilities, got:\n%s", args[0], out)
		}
		t.Logf("%s as nobody: %s", args[0], bytes.TrimSpace(out))
	}
}

// TestReadyAfterAttach starts an opted-in service before the agent: the
// agent's /readyz must not answer 200 before that process is attached, so
// that a restarted agent's first spans are tagged.
func TestReadyAfterAttach(t *testing.T) {
	testutil.RequireRoot(t)
	upstream := e2eservices.NewAgent(t)
	bin := e2eservices.Build(t, e2eservices.NetHTTPV2)
	// A selector of this test only: other tests' services on the machine
	// must not decide when the agent is ready.
	optIn := "ORIGINAGENT_READY_TEST=" + strconv.Itoa(os.Getpid())
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+upstream.URL, optIn, "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")

	cfg := testAgentConfig(upstream.URL)
	cfg.selectEnv = optIn
	// A known admin address, to poll /readyz from before run listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.adminAddr = l.Addr().String()
	l.Close()
	adminURL := "http://" + cfg.adminAddr
	a, err := newAgent(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	attached := func() bool {
		for _, p := range a.engine.Processes() {
			if p.PID == svc.PID {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var atReady bool
	ready := make(chan struct{})
	go func() { done <- a.run(ctx, func() { atReady = attached(); close(ready) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	}()
	// Poll /readyz as a kubelet would, from the moment it answers at all.
	var firstOK time.Time
	var notReady int
	for deadline := time.Now().Add(30 * time.Second); firstOK.IsZero(); {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		select {
		case err := <-done:
			t.Fatalf("agent stopped: %v", err)
		default:
		}
		resp, err := http.Get(adminURL + "/readyz")
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			firstOK = time.Now()
			if !attached() {
				t.Errorf("/readyz answered 200 before pid %d was attached", svc.PID)
			}
		default:
			notReady++
		}
	}
	<-ready
	if !atReady {
		t.Errorf("ready callback ran before pid %d was attached", svc.PID)
	}
	t.Logf("/readyz answered not ready %d times, then 200 with pid %d attached", notReady, svc.PID)
}
