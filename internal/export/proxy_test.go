package export

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newTestProxy returns a proxy forwarding to upstream, served by an
// httptest server.
func newTestProxy(t *testing.T, cfg Config) (*Proxy, *httptest.Server) {
	t.Helper()
	px, err := NewProxy(cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(px.tr.CloseIdleConnections)
	return px, srv
}

func postTraces(t *testing.T, c *http.Client, url, path string, body []byte) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/msgpack")
	req.Header.Set("X-Datadog-Trace-Count", "1")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitGoroutines waits until the goroutine count is back to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpstreamFailures checks that the tracer sees the upstream's errors
// (or 502 when there is no upstream to answer) and that failures leave no
// goroutines or buffers behind.
func TestUpstreamFailures(t *testing.T) {
	body := encodeV04(genTraces(rand.New(rand.NewPCG(5, 6)), 5, 5), metaMap)
	var released atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
			released.Add(1)
		}
	}))
	defer slow.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Agent", "overloaded")
		http.Error(w, "agent overloaded", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	downURL := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more

	base := runtime.NumGoroutine()
	for _, tc := range []struct {
		name       string
		upstream   string
		cfg        Config
		timeout    time.Duration
		wantStatus int
		wantBody   string
		wantErr    bool
	}{
		{name: "down", upstream: downURL, wantStatus: http.StatusBadGateway, wantBody: "upstream Agent unreachable"},
		{name: "5xx", upstream: failing.URL, wantStatus: http.StatusServiceUnavailable, wantBody: "agent overloaded"},
		{name: "slow, tracer gives up", upstream: slow.URL, timeout: 300 * time.Millisecond, wantErr: true},
		{name: "slow, proxy gives up", upstream: slow.URL, cfg: Config{UpstreamTimeout: 300 * time.Millisecond}, wantStatus: http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Upstream = tc.upstream
			px, srv := newTestProxy(t, cfg)
			// A record makes the proxy walk and re-encode the payload.
			ts := genTraces(rand.New(rand.NewPCG(5, 6)), 5, 5)
			px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
			c := &http.Client{Timeout: tc.timeout}
			if tc.timeout == 0 {
				c.Timeout = 10 * time.Second
			}
			n := 20
			if strings.Contains(tc.name, "slow") {
				n = 5
			}
			for range n {
				status, resp, err := postTraces(t, c, srv.URL, "/v0.4/traces", body)
				if tc.wantErr {
					if err == nil {
						t.Fatalf("tracer got %d %q, want a timeout", status, resp)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if status != tc.wantStatus || !strings.Contains(resp, tc.wantBody) {
					t.Fatalf("tracer got %d %q, want %d %q", status, resp, tc.wantStatus, tc.wantBody)
				}
			}
			c.CloseIdleConnections()
			st := px.Stats()
			if tc.name == "5xx" && st.Forwarded != uint64(n) {
				t.Errorf("forwarded %d, want %d", st.Forwarded, n)
			}
			if tc.name != "5xx" {
				// The proxy notices a tracer that gave up when its request
				// is cancelled, a moment after the tracer's timeout.
				deadline := time.Now().Add(5 * time.Second)
				for px.Stats().Failed != uint64(n) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if got := px.Stats().Failed; got != uint64(n) {
					t.Errorf("failed %d, want %d", got, n)
				}
			}
		})
	}
	// The upstream sees each cancellation a moment after the proxy acts.
	for deadline := time.Now().Add(5 * time.Second); released.Load() != 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if released.Load() != 10 {
		t.Errorf("slow upstream saw %d cancelled requests, want 10", released.Load())
	}
	slow.CloseClientConnections()
	failing.CloseClientConnections()
	waitGoroutines(t, base+2)
}

// TestMalformedForwardedUnchanged sends payloads the walker cannot follow
// while records wait: the upstream must receive them byte for byte.
func TestMalformedForwardedUnchanged(t *testing.T) {
	var got [][]byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, b)
		http.Error(w, "cannot decode", http.StatusBadRequest)
	}))
	defer up.Close()
	px, srv := newTestProxy(t, Config{Upstream: up.URL})
	ts := genTraces(rand.New(rand.NewPCG(7, 8)), 3, 4)
	px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
	good := encodeV04(ts, metaMap)
	inputs := map[string][]byte{
		"truncated":  good[:len(good)/2],
		"trailing":   append(append([]byte(nil), good...), 0xc0),
		"not msgp":   []byte("{\"json\": true}"),
		"empty":      nil,
		"huge count": {0xdd, 0xff, 0xff, 0xff, 0xff},
	}
	for name, in := range inputs {
		got = nil
		status, _, err := postTraces(t, http.DefaultClient, srv.URL, "/v0.4/traces", in)
		if err != nil || status != http.StatusBadRequest {
			t.Fatalf("%s: status %d err %v, want the upstream's 400", name, status, err)
		}
		if len(got) != 1 || !bytes.Equal(got[0], in) {
			t.Errorf("%s: upstream got %q, want the original bytes", name, got)
		}
	}
	if px.Stats().DecodeFailures == 0 {
		t.Error("decode failures not counted")
	}
}

// TestOversized checks the Agent's 25 MB rule (here a 1 KiB limit): 413
// payload-too-large, with or without Content-Length, and nothing forwarded.
func TestOversized(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	px, srv := newTestProxy(t, Config{Upstream: up.URL, MaxBody: 1024})
	big := bytes.Repeat([]byte{0x90}, 2048)
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(big)
		if chunked {
			rd = io.MultiReader(bytes.NewReader(big)) // unknown length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v0.4/traces", rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || strings.TrimSpace(string(b)) != "payload-too-large" {
			t.Errorf("chunked=%v: %d %q, want 413 payload-too-large", chunked, resp.StatusCode, b)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("upstream got %d oversized payloads", hits.Load())
	}
	if px.Stats().Rejected != 2 {
		t.Errorf("rejected = %d, want 2", px.Stats().Rejected)
	}
}

// TestServeUnixAndShutdown serves on TCP and a Unix socket, forwards to a
// LocalAgent on a Unix socket, and checks that Shutdown lets an in-flight
// payload reach the Agent and its answer reach the tracer.
func TestServeUnixAndShutdown(t *testing.T) {
	dir := t.TempDir()
	agentSock := filepath.Join(dir, "agent.sock")
	release := make(chan struct{})
	holding := make(chan struct{}, 1)
	agent := NewLocalAgent(LocalAgentOptions{}, nil)
	aln, err := net.Listen("unix", agentSock)
	if err != nil {
		t.Fatal(err)
	}
	asrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Hold") != "" {
			holding <- struct{}{}
			<-release
		}
		agent.ServeHTTP(w, r)
	})}
	go asrv.Serve(aln)
	defer asrv.Close()

	sock := filepath.Join(dir, "run", "apm.socket")
	px, err := NewProxy(Config{Listen: "127.0.0.1:0", ListenUnix: sock, Upstream: "unix://" + agentSock}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- px.Serve(ctx) }()
	tcpURL := "http://" + px.Addrs()[0].String()
	unixClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer unixClient.CloseIdleConnections()

	ts := genTraces(rand.New(rand.NewPCG(9, 9)), 2, 4)
	px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
	body := encodeV04(ts, metaMap)
	for _, c := range []struct {
		name string
		cl   *http.Client
		url  string
	}{{"tcp", http.DefaultClient, tcpURL}, {"unix", unixClient, "http://apm"}} {
		status, resp, err := postTraces(t, c.cl, c.url, "/v0.4/traces", body)
		if err != nil || status != 200 || resp != `{"rate_by_service":{}}` {
			t.Fatalf("%s: %d %q %v", c.name, status, resp, err)
		}
	}
	if n := len(agent.Spans()); n != 16 {
		t.Fatalf("agent got %d spans, want 16", n)
	}
	if px.Stats().SpansTagged != 2 {
		t.Errorf("tagged %d spans, want 2 (one per payload)", px.Stats().SpansTagged)
	}

	// An in-flight payload held by the Agent while the proxy shuts down.
	inflight := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, tcpURL+"/v0.4/traces", bytes.NewReader(body))
		req.Header.Set("X-Test-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- resp.Status + " " + string(b)
	}()
	<-holding // the payload went through the proxy and waits in the Agent
	cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the in-flight payload was answered", err)
	default:
	}
	if _, err := net.Dial("tcp", px.Addrs()[0].String()); err == nil {
		t.Error("proxy still accepts connections while shutting down")
	}
	close(release)
	if got := <-inflight; got != `200 OK {"rate_by_service":{}}` {
		t.Errorf("in-flight payload answered %q", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("unix socket still accepts after shutdown")
	}
}

func TestResolveUpstream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		sock       bool
		listen     string
		listenUnix string
		want       string
		wantErr    bool
	}{
		{name: "default", listen: DefaultListen, want: "http://localhost:8126"},
		{name: "agent socket", sock: true, listen: DefaultListen, want: "unix:///var/run/datadog/apm.socket"},
		{name: "url first", env: map[string]string{"DD_TRACE_AGENT_URL": "http://agent:9126", "DD_AGENT_HOST": "h"}, want: "http://agent:9126"},
		{name: "host and port", env: map[string]string{"DD_AGENT_HOST": "10.0.0.5", "DD_TRACE_AGENT_PORT": "8126"}, want: "http://10.0.0.5:8126"},
		{name: "host only", env: map[string]string{"DD_AGENT_HOST": "10.0.0.5"}, want: "http://10.0.0.5:8126"},
		{name: "ipv6 host", env: map[string]string{"DD_AGENT_HOST": "::1", "DD_TRACE_AGENT_PORT": "9"}, want: "http://[::1]:9"},
		{name: "url is ourselves", listen: "127.0.0.1:8127", env: map[string]string{"DD_TRACE_AGENT_URL": "http://localhost:8127"}, want: "http://localhost:8126"},
		{name: "wildcard listener", listen: "0.0.0.0:8126", env: map[string]string{"DD_TRACE_AGENT_URL": "http://127.0.0.1:8126", "DD_AGENT_HOST": "10.1.2.3"}, want: "http://10.1.2.3:8126"},
		{name: "unix is ourselves", listenUnix: "/run/x.sock", env: map[string]string{"DD_TRACE_AGENT_URL": "unix:///run/x.sock"}, want: "http://localhost:8126"},
		{name: "everything is ourselves", listen: "127.0.0.1:8126", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveUpstream(tc.listen, tc.listenUnix, func(k string) string { return tc.env[k] },
				func(p string) bool { return tc.sock && p == DefaultAgentSocket })
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestNewProxyErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Upstream: "ftp://x"},
		{Upstream: "http://"},
		{Upstream: "unix://"},
		{Listen: "127.0.0.1:8127", Upstream: "http://localhost:8127"},
	} {
		if _, err := NewProxy(cfg, nil, nil); err == nil {
			t.Errorf("NewProxy(%+v) succeeded", cfg)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewProxy(Config{Upstream: "http://127.0.0.1:1"}, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewProxy(Config{Upstream: "http://127.0.0.1:1"}, nil, reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	px, _ := NewProxy(Config{Upstream: "http://127.0.0.1:1"}, nil, nil)
	if err := px.Listen(); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("Listen without addresses: %v", err)
	}
}

// TestHeadersBothWays sends an enriched payload with every header the Agent
// relies on and checks that they reach the upstream unchanged, and that the
// upstream's status, headers and body (rate_by_service) reach the tracer
// unchanged.
func TestHeadersBothWays(t *testing.T) {
	var got http.Header
	const rates = `{"rate_by_service":{"service:shop,env:prod":0.25,"service:,env:":1}}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Datadog-Agent-State", "abc123")
		w.Header().Set("Datadog-Agent-Version", "7.70.0")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, rates)
	}))
	defer up.Close()
	px, srv := newTestProxy(t, Config{Upstream: up.URL})
	ts := genTraces(rand.New(rand.NewPCG(15, 16)), 3, 4)
	px.Put(testRecord(traceIDOf(ts[1]), ts[1][0].SpanID, 1, "Get"))
	sent := http.Header{
		"Content-Type":                       {"application/msgpack"},
		"Datadog-Meta-Lang":                  {"go"},
		"Datadog-Meta-Lang-Version":          {"1.26.8"},
		"Datadog-Meta-Lang-Interpreter":      {"gc-amd64-linux"},
		"Datadog-Meta-Tracer-Version":        {"v2.12.0"},
		"X-Datadog-Trace-Count":              {"3"},
		"Datadog-Container-Id":               {"3f2a9c"},
		"Datadog-Entity-Id":                  {"ci-3f2a9c"},
		"Datadog-External-Env":               {"it-false,cn-app,pu-1234"},
		"Datadog-Client-Computed-Top-Level":  {"yes"},
		"Datadog-Client-Computed-Stats":      {"yes"},
		"Datadog-Client-Dropped-P0-Traces":   {"2"},
		"Datadog-Send-Real-Http-Status":      {"yes"},
		"Idempotency-Key":                    {"k-1"},
		"X-Datadog-Reported-Languages":       {"go"},
		"User-Agent":                         {"Go-http-client/1.1 dd-trace-go"},
		"Datadog-Meta-Tracer-Fancy-New-Flag": {"a", "b"},
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v0.4/traces", bytes.NewReader(encodeV04(ts, metaMap)))
	req.Header = sent.Clone()
	// Like dd-trace-go, ask for no compression: then any Accept-Encoding
	// upstream would be the proxy's doing.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if px.Stats().SpansTagged != 1 {
		t.Fatalf("tagged %d spans, want 1", px.Stats().SpansTagged)
	}
	for k, v := range sent {
		if g := got.Values(k); strings.Join(g, "|") != strings.Join(v, "|") {
			t.Errorf("upstream header %s = %q, want %q", k, g, v)
		}
	}
	for _, k := range []string{"X-Forwarded-For", "Accept-Encoding", "Forwarded"} {
		if got.Get(k) != "" {
			t.Errorf("proxy added %s: %q", k, got.Get(k))
		}
	}
	if resp.StatusCode != http.StatusAccepted || string(body) != rates ||
		resp.Header.Get("Datadog-Agent-State") != "abc123" || resp.Header.Get("Datadog-Agent-Version") != "7.70.0" ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("tracer got %d %v %q", resp.StatusCode, resp.Header, body)
	}
}
