// Package export puts code origin tags on spans on their way from tracers to
// the Datadog Agent.
//
// No Agent endpoint accepts tags for spans already sent, so originagent sits
// on the trace intake path: tracers send to the Proxy, which adds
// `_dd.code_origin.*` tags to the spans that the probe engine saw run a user
// handler, and forwards every request to the real Agent. Trace payloads
// (/v0.4/traces, /v0.5/traces, /v1.0/traces) are enriched; every other path
// (/info, /v0.6/stats, /v0.7/config, telemetry, evp_proxy, profiling,
// debugger, ...) is reverse-proxied with method, headers, status and body
// intact, and the Agent's answers (rate_by_service) go back to the tracer
// unchanged. A payload that cannot be enriched is forwarded as received.
//
// Records arrive through Put (the proxy is an origin.Sink) and wait in a
// bounded store with a time-to-live until their span passes.
//
// LocalAgent is an in-process stand-in for the Agent, for demos without an
// Agent and for tests.
package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/originagent/originagent/internal/origin"
)

// Proxy is the trace intake proxy. Create it with NewProxy, feed it records
// with Put, and serve it with Serve (or mount Handler on a server of your own).
type Proxy struct {
	cfg      Config
	up       upstream
	log      *slog.Logger
	m        *metrics
	store    *store
	rp       *httputil.ReverseProxy
	tr       *http.Transport
	inflight chan struct{}
	bufs     freeList[[]byte]
	states   freeList[encState]

	beforeEnrich func() // see SetBeforeEnrich

	mu        sync.Mutex
	listeners []net.Listener
	srv       *http.Server
	serving   bool
	done      chan struct{}

	stats struct {
		forwarded, failed, rejected, decodeFailures, spansTagged atomic.Uint64
		enrichPanics                                             atomic.Uint64 // bugs; the fuzz test requires zero
	}
}

var _ origin.Sink = (*Proxy)(nil)

type ctxKey struct{}

// NewProxy checks cfg, resolves the upstream Agent when cfg.Upstream is
// empty, and registers the proxy's metrics on reg (nil: not registered).
// It does not listen yet: see Listen and Serve.
func NewProxy(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Upstream == "" {
		u, err := ResolveUpstream(cfg.Listen, cfg.ListenUnix, os.Getenv, fileExists)
		if err != nil {
			return nil, err
		}
		cfg.Upstream = u
	}
	up, err := parseUpstream(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	if isSelf(up, cfg.Listen, cfg.ListenUnix) {
		return nil, fmt.Errorf("upstream %s is the proxy's own listen address", up)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register export metrics: %w", err)
	}
	p := &Proxy{
		cfg:      cfg,
		up:       up,
		log:      log,
		m:        m,
		store:    newStore(cfg.StoreSize, cfg.RecordTTL, m, time.Now),
		inflight: make(chan struct{}, cfg.MaxInFlight),
		done:     make(chan struct{}),
	}
	p.tr = &http.Transport{
		Proxy:                 nil, // the Agent is local: never through HTTP_PROXY
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
		// Without this the transport would add Accept-Encoding: gzip to
		// requests that had none and decompress the answers: not invisible.
		DisableCompression: true,
	}
	if up.unix != "" {
		d := &net.Dialer{Timeout: 5 * time.Second}
		path := up.unix
		p.tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
	} else {
		p.tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	target := up.url
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the tracer's Host header: the proxy is meant to be invisible.
			r.Out.Host = r.In.Host
		},
		Transport:      p.tr,
		FlushInterval:  -1, // stream answers (e.g. long polls) as they come
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ModifyResponse: p.onResponse,
		ErrorHandler:   p.onError,
	}
	// Buffers for a few payloads in flight (body and output), which bounds
	// what stays allocated after a burst (pooledBufs x maxPooled); walker
	// states only serve the CPU-bound enrichment, so one per processor.
	p.bufs = newFreeList(min(2*cfg.MaxInFlight, pooledBufs), func() *[]byte { b := make([]byte, 0, 64<<10); return &b })
	p.states = newFreeList[encState](runtime.GOMAXPROCS(0), nil)
	return p, nil
}

// Upstream returns the Agent address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.up.String() }

// Put stores a code origin record until its span passes through the proxy.
// It does not block beyond a short critical section, so the probe engine
// may call it from its event loop.
func (p *Proxy) Put(r origin.Record) { p.store.put(r) }

// SetBeforeEnrich makes the proxy call f before it reads each trace
// payload; the agent passes the probe engine's Sync, so that a record still
// in the kernel's ring buffer reaches the store before its span is looked
// up. Call it before Serve.
func (p *Proxy) SetBeforeEnrich(f func()) { p.beforeEnrich = f }

// Handler returns the proxy's HTTP handler.
func (p *Proxy) Handler() http.Handler { return http.HandlerFunc(p.serveHTTP) }

// Stats is a snapshot of the proxy's counters (also exported as Prometheus
// metrics).
type Stats struct {
	Forwarded      uint64 // requests answered by the upstream
	Failed         uint64 // requests the upstream could not answer (tracer got 502)
	Rejected       uint64 // trace payloads refused like the Agent would (413)
	DecodeFailures uint64 // trace payloads forwarded unchanged because they could not be walked
	SpansTagged    uint64
	RecordsStored  int // records waiting now
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Forwarded:      p.stats.forwarded.Load(),
		Failed:         p.stats.failed.Load(),
		Rejected:       p.stats.rejected.Load(),
		DecodeFailures: p.stats.decodeFailures.Load(),
		SpansTagged:    p.stats.spansTagged.Load(),
		RecordsStored:  p.store.len(),
	}
}

// Listen opens the TCP and Unix listeners of the configuration, so that
// address errors surface before Serve. Serve calls it when needed.
func (p *Proxy) Listen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.listeners) > 0 {
		return nil
	}
	if p.cfg.Listen == "" && p.cfg.ListenUnix == "" {
		return errors.New("listen: neither a TCP address nor a Unix socket is configured")
	}
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if p.cfg.Listen != "" {
		l, err := net.Listen("tcp", p.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", p.cfg.Listen, err)
		}
		lns = append(lns, l)
	}
	if path := p.cfg.ListenUnix; path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			closeAll()
			return fmt.Errorf("create socket directory: %w", err)
		}
		// A socket left by a previous run would make Listen fail; anything
		// else at the path is not ours to remove.
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on unix socket %s: %w", path, err)
		}
		// Tracers in other containers run as other users; the Agent's own
		// socket is world-writable for the same reason.
		if err := os.Chmod(path, 0o722); err != nil {
			l.Close()
			closeAll()
			return fmt.Errorf("chmod %s: %w", path, err)
		}
		lns = append(lns, l)
	}
	p.listeners = lns
	return nil
}

// Addrs returns the addresses the proxy listens on (after Listen).
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]net.Addr, 0, len(p.listeners))
	for _, l := range p.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Serve listens (see Listen) and serves until ctx is done or Shutdown is
// called; then it shuts down gracefully: in-flight requests are forwarded
// and answered first. It returns nil after a clean shutdown.
func (p *Proxy) Serve(ctx context.Context) error {
	if err := p.Listen(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.serving {
		p.mu.Unlock()
		return errors.New("proxy already serving")
	}
	p.serving = true
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.srv = srv
	lns := p.listeners
	p.mu.Unlock()

	errc := make(chan error, len(lns))
	for _, l := range lns {
		p.log.Info("trace intake proxy listening", "addr", l.Addr().String(), "network", l.Addr().Network(), "upstream", p.up.String())
		go func() { errc <- srv.Serve(l) }()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := p.Shutdown(sctx)
			cancel()
			return err
		case <-p.done:
			return nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.Shutdown(sctx)
			cancel()
			return fmt.Errorf("serve trace intake: %w", err)
		case <-tick.C:
			p.store.expire()
		}
	}
}

// Shutdown stops accepting connections, waits for in-flight requests to be
// forwarded and answered (or ctx to end), and closes upstream connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	srv := p.srv
	lns := p.listeners
	select {
	case <-p.done:
		p.mu.Unlock()
		return nil
	default:
		close(p.done)
	}
	p.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	} else {
		for _, l := range lns {
			l.Close()
		}
	}
	if p.cfg.ListenUnix != "" {
		os.Remove(p.cfg.ListenUnix)
	}
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("shut down trace intake: %w", err)
	}
	return nil
}

// Trace endpoint versions.
type version uint8

const (
	vNone version = iota
	v04
	v05
	v1
)

// endpointOf names a path for metrics, with a bounded set of values.
func endpointOf(path string) (string, version) {
	switch path {
	case "/v0.4/traces":
		return "v0.4/traces", v04
	case "/v0.5/traces":
		return "v0.5/traces", v05
	case "/v1.0/traces":
		return "v1.0/traces", v1
	case "/info":
		return "info", vNone
	case "/v0.6/stats":
		return "stats", vNone
	case "/v0.7/config":
		return "config", vNone
	}
	for _, pre := range [...]string{"telemetry", "evp_proxy", "profiling", "debugger", "tracer_flare", "symdb", "dogstatsd"} {
		if strings.HasPrefix(path, "/"+pre+"/") {
			return pre, vNone
		}
	}
	return "other", vNone
}

// reqInfo travels in a request's context from serveHTTP to the reverse
// proxy's callbacks.
type reqInfo struct {
	endpoint string
	// answered is set when the upstream answered 2xx: the Agent reads a
	// whole payload before it answers 200, so the transport is done with the
	// body and its buffer may be reused. After an error the transport's
	// writer may still hold it, so it is left to the garbage collector.
	answered bool
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ep, v := endpointOf(r.URL.Path)
	info := &reqInfo{endpoint: ep}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
	if v == vNone || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.serveTraces(w, r, info, v)
}

// serveTraces buffers a trace payload, enriches it and forwards it.
func (p *Proxy) serveTraces(w http.ResponseWriter, r *http.Request, info *reqInfo, v version) {
	ep := info.endpoint
	// Bounds the bodies held at once; further tracers wait here.
	select {
	case p.inflight <- struct{}{}:
		defer func() { <-p.inflight }()
	case <-r.Context().Done():
		return
	}
	if r.ContentLength > p.cfg.MaxBody {
		p.reject(w, ep)
		return
	}
	if p.beforeEnrich != nil {
		p.beforeEnrich()
	}
	if p.store.empty() && r.ContentLength >= 0 {
		// Nothing to tag: stream the payload through like a plain reverse
		// proxy. Buffering costs CPU (see BenchmarkProxy's buffered path),
		// and a body of announced length cannot outgrow MaxBody unseen.
		p.rp.ServeHTTP(w, r)
		return
	}
	bp := p.bufs.get()
	defer func() { p.putBuf(bp, info) }()
	body, err := readBody((*bp)[:0], r.Body, p.cfg.MaxBody)
	*bp = body
	if errors.Is(err, errTooLarge) {
		p.reject(w, ep)
		return
	}
	if err != nil {
		// The tracer went away or sent a truncated body: answer like the
		// Agent's decoder (400), nothing reaches the Agent either way.
		p.m.payloads.WithLabelValues(ep, "rejected").Inc()
		p.stats.rejected.Add(1)
		http.Error(w, "unexpected-eof", http.StatusBadRequest)
		return
	}
	out := body
	if !p.store.empty() {
		ob := p.bufs.get()
		defer func() { p.putBuf(ob, info) }()
		start := time.Now()
		enriched, tagged, err := p.enrich(v, (*ob)[:0], body)
		p.m.enrichSeconds.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		switch {
		case err != nil:
			p.m.decodeFailures.WithLabelValues(ep).Inc()
			p.stats.decodeFailures.Add(1)
			p.log.Debug("trace payload forwarded unchanged", "endpoint", ep, "err", err)
		case enriched != nil:
			*ob = enriched
			out = enriched
			p.m.spansTagged.Add(float64(tagged))
			p.stats.spansTagged.Add(uint64(tagged))
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.ContentLength = int64(len(out))
	r.Header.Del("Transfer-Encoding")
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	p.rp.ServeHTTP(w, r)
}

// enrich returns body with code origin tags added into dst, or nil when no
// span of body had a record.
func (p *Proxy) enrich(v version, dst, body []byte) (out []byte, tagged int, err error) {
	// Records past their TTL must not match, even when Serve's ticker is
	// not running (Handler mounted elsewhere).
	p.store.expire()
	st := p.states.get()
	defer func() {
		if !st.large() {
			p.states.put(st)
		}
	}()
	st.reset()
	defer func() {
		// The walkers check every length they use; a panic here would be a
		// bug, and a bug must cost enrichment, not the payload.
		if r := recover(); r != nil {
			p.stats.enrichPanics.Add(1)
			out, tagged, err = nil, 0, fmt.Errorf("enrich panic: %v", r)
		}
	}()
	switch v {
	case v04:
		err = st.enrichV04(body, p.store)
	case v05:
		err = st.enrichV05(body, p.store)
	case v1:
		out, err = st.enrichV1(dst, body, p.store)
		if err != nil || out == nil {
			return nil, 0, err
		}
		return out, st.tagged, nil
	}
	if err != nil || !st.changed {
		return nil, 0, err
	}
	return st.apply(dst, body), st.tagged, nil
}

var errTooLarge = errors.New("payload-too-large")

// readBody reads r into buf, failing with errTooLarge beyond limit bytes.
func readBody(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// maxPooled and pooledBufs keep one burst of huge payloads from pinning
// memory in the free list: at most 32 MB stay allocated.
const (
	maxPooled  = 4 << 20
	pooledBufs = 8
)

func (p *Proxy) putBuf(b *[]byte, info *reqInfo) {
	if cap(*b) > maxPooled || !info.answered {
		return
	}
	*b = (*b)[:0]
	p.bufs.put(b)
}

// reject answers an oversized payload like the Agent: 413 with
// "payload-too-large".
func (p *Proxy) reject(w http.ResponseWriter, ep string) {
	p.m.payloads.WithLabelValues(ep, "rejected").Inc()
	p.stats.rejected.Add(1)
	http.Error(w, errTooLarge.Error(), http.StatusRequestEntityTooLarge)
}

func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(ctxKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{endpoint: "other"}
}

func (p *Proxy) onResponse(resp *http.Response) error {
	info := infoFrom(resp.Request.Context())
	info.answered = resp.StatusCode/100 == 2
	p.m.payloads.WithLabelValues(info.endpoint, "forwarded").Inc()
	p.stats.forwarded.Add(1)
	return nil
}

// onError answers when the upstream cannot: 502 Bad Gateway, an error
// status, so the tracer counts the payload as not sent and retries it as if
// the Agent were unreachable.
func (p *Proxy) onError(w http.ResponseWriter, r *http.Request, err error) {
	ep := infoFrom(r.Context()).endpoint
	p.m.payloads.WithLabelValues(ep, "failed").Inc()
	p.stats.failed.Add(1)
	if r.Context().Err() != nil {
		// The tracer gave up: nobody to answer.
		return
	}
	p.log.Warn("upstream Agent unreachable", "upstream", p.up.String(), "path", r.URL.Path, "err", err)
	http.Error(w, "originagent: upstream Agent unreachable: "+err.Error(), http.StatusBadGateway)
}
