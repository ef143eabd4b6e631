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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

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
	budget   *budget
	bufs     freeList[[]byte]
	states   freeList[encState]

	beforeEnrich func() // see SetBeforeEnrich

	mu        sync.Mutex
	listeners []net.Listener
	srv       *http.Server
	serving   bool
	done      chan struct{}
	unixID    socketID    // the Unix socket file bound, see Shutdown
	draining  atomic.Bool // answers close their connections, see Drain

	stats struct {
		forwarded, failed, rejected, decodeFailures, spansTagged atomic.Uint64
		throttled, timedOut, truncated, unenriched               atomic.Uint64
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
	bud := &budget{max: cfg.BufferBudget}
	m, err := newMetrics(reg, bud)
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
		budget:   bud,
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
	RecordsStored  int    // records waiting now
	Throttled      uint64 // trace payloads refused with 429: no free slot or buffer budget
	TimedOut       uint64 // trace payloads whose body took longer than BodyTimeout (408)
	Truncated      uint64 // trace payloads whose body ended early or failed (400)
	Unenriched     uint64 // trace payloads forwarded untagged because the buffer budget was spent
	BufferedBytes  int64  // bytes of the buffer budget in use now
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
		Throttled:      p.stats.throttled.Load(),
		TimedOut:       p.stats.timedOut.Load(),
		Truncated:      p.stats.truncated.Load(),
		Unenriched:     p.stats.unenriched.Load(),
		BufferedBytes:  p.budget.inUse(),
	}
}

// Listen opens the TCP and Unix listeners of the configuration, so that
// address errors surface before Serve. Serve calls it when needed.
//
// Both can be taken over from a running agent (see Drain): the TCP
// listener sets SO_REUSEPORT, and the Unix socket is bound at a temporary
// path and renamed over the configured one.
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
		l, err := listenReusePort(p.cfg.Listen)
		if err != nil {
			return err
		}
		lns = append(lns, l)
	}
	if path := p.cfg.ListenUnix; path != "" {
		l, id, err := listenUnixReplace(path)
		if err != nil {
			closeAll()
			return err
		}
		p.unixID = id
		lns = append(lns, l)
	}
	p.listeners = lns
	return nil
}

// listenReusePort listens on addr with SO_REUSEPORT, so that a new agent
// can bind while the old one drains (both then get new connections).
func listenReusePort(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// socketID identifies the Unix socket file the proxy bound, so that it
// removes the path at shutdown only while it is still its own.
type socketID struct{ dev, ino uint64 }

func statSocket(path string) (socketID, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return socketID{}, false
	}
	return socketID{dev: st.Dev, ino: st.Ino}, true
}

// listenUnixReplace binds a Unix socket at a temporary path next to path
// and renames it over path: connections reach the old socket (a previous
// agent still draining, or a stale file) until the rename and the new one
// after, with no moment where the path is missing. Anything at path that
// is not a socket is left alone.
func listenUnixReplace(path string) (net.Listener, socketID, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, socketID{}, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, socketID{}, fmt.Errorf("listen on unix socket %s: exists and is not a socket", path)
	}
	tmp := fmt.Sprintf("%s.%d.new", path, os.Getpid())
	os.Remove(tmp) // left by a crash of a process with our PID
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, socketID{}, fmt.Errorf("listen on unix socket %s: %w", tmp, err)
	}
	// The path is renamed, and removed only if still ours (see Shutdown).
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, socketID, error) {
		l.Close()
		os.Remove(tmp)
		return nil, socketID{}, err
	}
	// Tracers in other containers run as other users; the Agent's own
	// socket is world-writable for the same reason.
	if err := os.Chmod(tmp, 0o722); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", tmp, err))
	}
	id, ok := statSocket(tmp)
	if !ok {
		return fail(fmt.Errorf("stat %s: not a socket", tmp))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("listen on unix socket %s: %w", path, err))
	}
	return l, id, nil
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
	// A successor may have renamed its own socket over the path already.
	if path := p.cfg.ListenUnix; path != "" {
		if id, ok := statSocket(path); ok && id == p.unixID {
			os.Remove(path)
		}
	}
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("shut down trace intake: %w", err)
	}
	return nil
}

// Drain hands the intake over to a successor without losing a payload,
// then shuts down (see Shutdown). For Config.DrainPeriod it keeps serving, but every
// answer closes its connection, so that each tracer's keep-alive connection
// is closed right after a request of its own rather than under a request in
// flight (a POST is not retried), and the tracer reconnects: to the
// successor, which owns the socket path (Unix) or shares the port (TCP,
// SO_REUSEPORT). Then the listeners close, in-flight payloads are answered,
// and idle connections close. A TCP connection still in the old listener's
// accept queue at that moment is reset unless net.ipv4.tcp_migrate_req is
// 1, which moves it to the successor's listener. Without a successor,
// tracers see refused connections after the period, as after Shutdown.
func (p *Proxy) Drain(ctx context.Context) error {
	p.draining.Store(true)
	t := time.NewTimer(p.cfg.DrainPeriod)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	case <-p.done:
		t.Stop()
	}
	return p.Shutdown(ctx)
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
	// body is the tracer's payload as it streams through (nil when
	// buffered or not a trace payload).
	body *bodyReader
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	ep, v := endpointOf(r.URL.Path)
	info := &reqInfo{endpoint: ep}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
	if v == vNone || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.serveTraces(w, r, info, v)
}

// serveTraces forwards a trace payload: streamed when no record waits (or
// the buffer budget is spent), else buffered and enriched. Every way out
// answers the tracer with a status, and only the upstream's 2xx for a
// payload received whole: net/http would answer 200 for a handler that
// writes nothing.
func (p *Proxy) serveTraces(w http.ResponseWriter, r *http.Request, info *reqInfo, v version) {
	ep := info.endpoint
	if r.ContentLength > p.cfg.MaxBody {
		p.reject(w, ep)
		return
	}
	// The body must arrive within BodyTimeout of the request, the slot wait
	// included, like the Agent's read timeout: a stalled upload then frees
	// its slot and buffer. Not every connection supports deadlines (e.g. a
	// Handler mounted on an HTTP/2 server); those go without.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(p.cfg.BodyTimeout)
	hasDeadline := rc.SetReadDeadline(deadline) == nil
	// Bounds the payloads handled at once; when every slot stays busy for
	// SlotTimeout, refuse quickly (429) so that tracers keep flowing.
	select {
	case p.inflight <- struct{}{}:
	default:
		t := time.NewTimer(p.cfg.SlotTimeout)
		select {
		case p.inflight <- struct{}{}:
			t.Stop()
		case <-t.C:
			p.refuse(w, ep, "throttled", http.StatusTooManyRequests, "too-many-requests")
			p.stats.throttled.Add(1)
			return
		case <-r.Context().Done():
			t.Stop()
			p.refuse(w, ep, "failed", http.StatusRequestTimeout, "client-gone")
			p.stats.failed.Add(1)
			return
		}
	}
	defer func() { <-p.inflight }()
	body := &bodyReader{r: r.Body, want: r.ContentLength, deadline: deadline}
	if hasDeadline {
		// Lift the deadline once the body is in: the server's connection
		// reader must not time out while the upstream answers.
		body.done = func() { rc.SetReadDeadline(time.Time{}) }
	}
	r.Body = body
	if p.beforeEnrich != nil {
		p.beforeEnrich()
	}
	n := r.ContentLength
	if n >= 0 && (p.store.empty() || !p.budget.tryAcquire(n)) {
		// Nothing to tag, or no memory to buffer it: stream the payload
		// through like a plain reverse proxy. Buffering costs CPU (see
		// BenchmarkProxy's buffered path), and a body of announced length
		// cannot outgrow MaxBody unseen.
		if !p.store.empty() {
			p.stats.unenriched.Add(1)
			p.m.unenriched.Inc()
		}
		info.body = body
		p.rp.ServeHTTP(w, r)
		return
	}
	// Buffer: sized from Content-Length (reserved above), or grown within
	// the budget for a chunked body.
	held := max(n, 0)
	defer func() { p.budget.release(held) }()
	bp := p.bufs.get()
	if n >= 0 && int64(cap(*bp)) < n {
		p.bufs.put(bp)
		b := make([]byte, 0, n)
		bp = &b
	}
	if n >= 0 {
		// A pooled buffer may be larger than the payload: count all of it.
		p.budget.force(int64(cap(*bp)) - n)
		held = int64(cap(*bp))
	}
	defer func() { p.putBuf(bp, info) }()
	var err error
	if n >= 0 {
		*bp = (*bp)[:n]
		_, err = io.ReadFull(body, *bp)
	} else {
		*bp, err = p.readChunked((*bp)[:0], body, &held)
	}
	if err == nil {
		body.finish()
	}
	switch {
	case errors.Is(err, errTooLarge):
		p.reject(w, ep)
		return
	case errors.Is(err, errBudget):
		p.refuse(w, ep, "throttled", http.StatusTooManyRequests, "too-many-requests")
		p.stats.throttled.Add(1)
		return
	case err != nil:
		// The tracer went away, stalled or sent a truncated body: answer
		// like the Agent's decoder, nothing reaches the Agent either way.
		p.bodyFailed(w, ep, body)
		return
	}
	in := *bp
	out := in
	if !p.store.empty() {
		var done func()
		out, done = p.enrichBuffered(v, ep, in, info)
		defer done()
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.ContentLength = int64(len(out))
	r.Header.Del("Transfer-Encoding")
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	p.rp.ServeHTTP(w, r)
}

// enrichBuffered returns body with tags added in a buffer of the budget, or
// body itself when nothing was tagged or the budget has no room for a copy.
// done releases the copy once it has been forwarded.
func (p *Proxy) enrichBuffered(v version, ep string, body []byte, info *reqInfo) (out []byte, done func()) {
	// The copy is at least as long as the body, plus a few hundred bytes
	// per tagged span: reserve for the common case, count the rest after.
	held := int64(len(body) + len(body)/8 + 4096)
	if !p.budget.tryAcquire(held) {
		p.stats.unenriched.Add(1)
		p.m.unenriched.Inc()
		return body, func() {}
	}
	ob := p.bufs.get()
	if int64(cap(*ob)) < held {
		p.bufs.put(ob)
		b := make([]byte, 0, held)
		ob = &b
	}
	p.budget.force(int64(cap(*ob)) - held)
	held = int64(cap(*ob))
	done = func() {
		p.budget.release(held)
		p.putBuf(ob, info)
	}
	start := time.Now()
	enriched, tagged, err := p.enrich(v, (*ob)[:0], body)
	p.m.enrichSeconds.WithLabelValues(ep).Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		p.m.decodeFailures.WithLabelValues(ep).Inc()
		p.stats.decodeFailures.Add(1)
		p.log.Debug("trace payload forwarded unchanged", "endpoint", ep, "err", err)
		return body, done
	case enriched == nil:
		return body, done
	}
	*ob = enriched
	if c := int64(cap(enriched)); c > held {
		p.budget.force(c - held)
		held = c
	}
	p.m.spansTagged.Add(float64(tagged))
	p.stats.spansTagged.Add(uint64(tagged))
	return enriched, done
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

var (
	errTooLarge = errors.New("payload-too-large")
	errBudget   = errors.New("buffer budget spent")
)

// readChunked reads a body of unknown length into buf, growing it within
// the budget (*held is the capacity reserved for buf), failing with
// errTooLarge beyond MaxBody and errBudget when the budget has no room.
func (p *Proxy) readChunked(buf []byte, r io.Reader, held *int64) ([]byte, error) {
	limit := p.cfg.MaxBody
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, errTooLarge
			}
			// Never more than one byte past MaxBody: that byte is enough
			// to tell an oversized payload.
			c := min(max(2*int64(cap(buf)), 64<<10), limit+1)
			if !p.budget.tryAcquire(c) {
				return buf, errBudget
			}
			nb := make([]byte, len(buf), c)
			copy(nb, buf)
			p.budget.release(*held)
			*held = c
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
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

// bodyReader follows a trace payload's body as the proxy reads it, to tell
// a whole payload from a truncated or stalled one, and lifts the read
// deadline once the body is in. The transport reads it on its own
// goroutine, hence the lock.
type bodyReader struct {
	r        io.ReadCloser
	want     int64 // Content-Length, -1 when unknown
	deadline time.Time
	done     func() // called once, when the body ends or fails

	mu  sync.Mutex
	n   int64
	eof bool
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	// Only a body received whole lifts the deadline: after a failure,
	// net/http may still try to drain the rest, which must not wait for a
	// stalled client without one.
	whole := b.err == nil && (b.eof || (b.want >= 0 && b.n >= b.want))
	b.mu.Unlock()
	if whole {
		b.finish()
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.r.Close() }

// finish lifts the read deadline (once), after the body was received whole.
func (b *bodyReader) finish() {
	b.mu.Lock()
	f := b.done
	b.done = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
}

// whole reports whether the body was received completely.
func (b *bodyReader) whole() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return false
	}
	if b.want >= 0 {
		return b.n == b.want
	}
	return b.eof
}

// failed reports whether reading the body failed, and whether it failed by
// running out of time.
func (b *bodyReader) failed() (failed, timeout bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		return false, false
	}
	return true, errors.Is(b.err, os.ErrDeadlineExceeded) || !time.Now().Before(b.deadline)
}

// bodyFailed answers a payload whose body could not be read whole: 408
// when it took longer than BodyTimeout, else 400 unexpected-eof (the
// Agent's answers).
func (p *Proxy) bodyFailed(w http.ResponseWriter, ep string, b *bodyReader) {
	if _, timeout := b.failed(); timeout || !time.Now().Before(b.deadline) {
		p.stats.timedOut.Add(1)
		p.refuse(w, ep, "timeout", http.StatusRequestTimeout, "timeout")
		return
	}
	p.stats.truncated.Add(1)
	p.refuse(w, ep, "truncated", http.StatusBadRequest, "unexpected-eof")
}

// refuse answers a trace payload the proxy did not forward, and closes the
// connection after: what is left of the body is not worth waiting for.
func (p *Proxy) refuse(w http.ResponseWriter, ep, result string, status int, msg string) {
	p.m.payloads.WithLabelValues(ep, result).Inc()
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
}

// maxPooled and pooledBufs keep one burst of huge payloads from pinning
// memory in the free list: at most 8 MiB stay allocated outside the buffer
// budget.
const (
	maxPooled  = 1 << 20
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

// errIncomplete turns an upstream's answer to a payload that was not
// received whole into an error: the tracer must not see 2xx for it.
var errIncomplete = errors.New("trace payload not received whole")

func (p *Proxy) onResponse(resp *http.Response) error {
	info := infoFrom(resp.Request.Context())
	if info.body != nil && !info.body.whole() {
		return errIncomplete
	}
	info.answered = resp.StatusCode/100 == 2
	p.m.payloads.WithLabelValues(info.endpoint, "forwarded").Inc()
	p.stats.forwarded.Add(1)
	return nil
}

// onError answers when the upstream cannot: 502 Bad Gateway, an error
// status, so the tracer counts the payload as not sent and retries it as if
// the Agent were unreachable.
//
// A streamed trace payload whose body failed (truncated, stalled) is
// answered like bodyFailed; the upstream got it framed by its
// Content-Length, so it saw a short body and did not take it as whole.
func (p *Proxy) onError(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	ep := info.endpoint
	if b := info.body; b != nil && !b.whole() {
		// The server cancels the request when the tracer's connection
		// fails, which may reach the transport before the body reader
		// records why.
		if failed, _ := b.failed(); failed || errors.Is(err, errIncomplete) || r.Context().Err() != nil {
			p.bodyFailed(w, ep, b)
			return
		}
	}
	p.m.payloads.WithLabelValues(ep, "failed").Inc()
	p.stats.failed.Add(1)
	if r.Context().Err() != nil {
		// The tracer gave up; answer anyway, never leave net/http's
		// implicit 200.
		http.Error(w, "client-gone", http.StatusBadGateway)
		return
	}
	p.log.Warn("upstream Agent unreachable", "upstream", p.up.String(), "path", r.URL.Path, "err", err)
	http.Error(w, "originagent: upstream Agent unreachable: "+err.Error(), http.StatusBadGateway)
}
