package export

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultListen is the TCP address tracers send to. 8126 belongs to the
	// Datadog Agent on the same host, so the proxy takes the next port; the
	// Helm chart binds 0.0.0.0 behind a hostPort instead.
	DefaultListen = "127.0.0.1:8127"
	// DefaultListenUnix is the Unix socket the Helm chart points tracers at
	// (DD_TRACE_AGENT_URL=unix:///var/run/originagent/apm.socket). Config.ListenUnix
	// is empty by default: the socket is only opened when set.
	DefaultListenUnix = "/var/run/originagent/apm.socket"
	// DefaultAgentSocket is the Agent's own APM socket; dd-trace-go uses it when
	// it exists and neither DD_TRACE_AGENT_URL nor DD_AGENT_HOST is set.
	DefaultAgentSocket = "/var/run/datadog/apm.socket"
	// DefaultAgentURL is the Agent's standard TCP intake.
	DefaultAgentURL = "http://localhost:8126"
	// DefaultMaxBody is the Agent's default max_request_bytes (25 MiB):
	// larger trace payloads get 413 from the proxy as they would from the Agent.
	DefaultMaxBody = 25 << 20
	// DefaultRecordTTL covers the tracer's flush lag (2 s normally, up to a
	// minute under back-pressure).
	DefaultRecordTTL = 60 * time.Second
	// DefaultStoreSize holds 60 s of records at 10k requests/s.
	DefaultStoreSize = 10_000 * 60
	// DefaultMaxInFlight bounds the trace payloads buffered at once, which
	// bounds the proxy's memory under a burst (at worst MaxInFlight x 2 x
	// MaxBody; a typical payload is well under 1 MB): further payloads wait.
	DefaultMaxInFlight = 32
	// DefaultBodyTimeout bounds the time a tracer takes to send a trace
	// payload's body, like the Datadog Agent receiver's 5 s read timeout: a
	// stalled upload frees its slot and its buffer after that.
	DefaultBodyTimeout = 5 * time.Second
	// DefaultSlotTimeout is how long a trace payload waits for one of the
	// MaxInFlight slots before it is refused with 429, like the Agent's
	// decoder_timeout (1 s).
	DefaultSlotTimeout = time.Second
	// DefaultBufferBudget bounds the bytes of buffered trace payloads when
	// no memory limit is known (see DefaultBufferBudgetFor).
	DefaultBufferBudget = 256 << 20
	// DefaultDrainPeriod is how long a stopping proxy keeps serving, with
	// every answer closing its connection, before it closes its listeners:
	// longer than dd-trace-go's 2 s flush interval, so that every busy
	// tracer sends once and reconnects to the successor.
	DefaultDrainPeriod = 3 * time.Second
	// DefaultUpstreamTimeout bounds the wait for the upstream's response
	// headers; the tracer's own timeout (10 s in dd-trace-go) is usually shorter.
	DefaultUpstreamTimeout = 30 * time.Second
)

// Config configures a Proxy. The zero value of a field means its default,
// except Listen and ListenUnix, where empty means "do not listen".
type Config struct {
	// Listen is the TCP address for tracers (`--listen`), e.g. DefaultListen.
	Listen string
	// ListenUnix is the Unix socket path for tracers (`--listen-unix`).
	ListenUnix string
	// Upstream is the Agent's URL (`--upstream`): http://host:port or
	// unix:///path. Empty resolves it like dd-trace-go (see ResolveUpstream).
	Upstream string
	// StoreSize is the maximum number of records waiting for their spans.
	StoreSize int
	// RecordTTL is how long a record waits for its span.
	RecordTTL time.Duration
	// MaxBody is the largest trace payload accepted, in bytes.
	MaxBody int64
	// MaxInFlight is the number of trace payloads handled at once; a
	// payload that finds them all busy for SlotTimeout is refused (429).
	MaxInFlight int
	// SlotTimeout is how long a trace payload waits for a free slot.
	SlotTimeout time.Duration
	// BodyTimeout bounds the time to receive a trace payload's body; a
	// slower upload is answered 408 and nothing of it is delivered.
	BodyTimeout time.Duration
	// BufferBudget bounds the bytes held by buffered trace payloads (body
	// and enriched copy) across all requests. A payload that does not fit
	// is streamed through unenriched when its length is announced, and
	// refused (429) otherwise. Zero: DefaultBufferBudgetFor the process's
	// memory limit.
	BufferBudget int64
	// UpstreamTimeout bounds the wait for the upstream's response headers.
	UpstreamTimeout time.Duration
	// DrainPeriod is how long Drain keeps serving before it shuts down.
	DrainPeriod time.Duration
}

// DefaultConfig returns the configuration `originagent run` starts from:
// TCP on DefaultListen, no Unix socket, upstream resolved from the
// environment, a store for 10k requests/s with a 60 s flush lag.
func DefaultConfig() Config {
	return Config{
		Listen:          DefaultListen,
		StoreSize:       DefaultStoreSize,
		RecordTTL:       DefaultRecordTTL,
		MaxBody:         DefaultMaxBody,
		MaxInFlight:     DefaultMaxInFlight,
		SlotTimeout:     DefaultSlotTimeout,
		BodyTimeout:     DefaultBodyTimeout,
		UpstreamTimeout: DefaultUpstreamTimeout,
		DrainPeriod:     DefaultDrainPeriod,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.StoreSize <= 0 {
		c.StoreSize = d.StoreSize
	}
	if c.RecordTTL <= 0 {
		c.RecordTTL = d.RecordTTL
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.UpstreamTimeout <= 0 {
		c.UpstreamTimeout = d.UpstreamTimeout
	}
	if c.DrainPeriod <= 0 {
		c.DrainPeriod = d.DrainPeriod
	}
	if c.SlotTimeout <= 0 {
		c.SlotTimeout = d.SlotTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = d.BodyTimeout
	}
	if c.BufferBudget <= 0 {
		c.BufferBudget = DefaultBufferBudgetFor(MemoryLimit())
	}
	return c
}

// upstream is a parsed upstream address.
type upstream struct {
	url  *url.URL // scheme http(s) and host; for unix, http://localhost
	unix string   // socket path when the upstream is a Unix socket
}

func (u upstream) String() string {
	if u.unix != "" {
		return "unix://" + u.unix
	}
	return u.url.String()
}

func parseUpstream(raw string) (upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return upstream{}, fmt.Errorf("parse upstream %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return upstream{}, fmt.Errorf("upstream %q: missing host", raw)
		}
		return upstream{url: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}}, nil
	case "unix":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if p == "" {
			return upstream{}, fmt.Errorf("upstream %q: missing socket path", raw)
		}
		return upstream{url: &url.URL{Scheme: "http", Host: "localhost"}, unix: filepath.Clean(p)}, nil
	default:
		return upstream{}, fmt.Errorf("upstream %q: scheme must be http, https or unix", raw)
	}
}

// ResolveUpstream finds the Agent the way dd-trace-go does: DD_TRACE_AGENT_URL,
// else DD_AGENT_HOST / DD_TRACE_AGENT_PORT, else the Agent's Unix socket
// DefaultAgentSocket when it exists, else DefaultAgentURL. Candidates that are
// the proxy's own listen address or socket are skipped: the environment of a
// node daemon often points at the proxy itself. getenv and exists are
// os.Getenv and a stat in production; tests pass their own.
func ResolveUpstream(listen, listenUnix string, getenv func(string) string, exists func(string) bool) (string, error) {
	var cands []string
	if v := getenv("DD_TRACE_AGENT_URL"); v != "" {
		cands = append(cands, v)
	}
	host, port := getenv("DD_AGENT_HOST"), getenv("DD_TRACE_AGENT_PORT")
	if host != "" || port != "" {
		if host == "" {
			host = "localhost"
		}
		if port == "" {
			port = "8126"
		}
		cands = append(cands, "http://"+net.JoinHostPort(host, port))
	}
	if exists(DefaultAgentSocket) {
		cands = append(cands, "unix://"+DefaultAgentSocket)
	}
	cands = append(cands, DefaultAgentURL)
	for _, c := range cands {
		u, err := parseUpstream(c)
		if err != nil {
			continue
		}
		if isSelf(u, listen, listenUnix) {
			continue
		}
		return c, nil
	}
	return "", errors.New("resolve upstream: every candidate Agent address is the proxy's own listen address; set --upstream")
}

// isSelf reports whether u is the proxy's own listener.
func isSelf(u upstream, listen, listenUnix string) bool {
	if u.unix != "" {
		return listenUnix != "" && filepath.Clean(listenUnix) == u.unix
	}
	if listen == "" {
		return false
	}
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	uh, up := u.url.Hostname(), u.url.Port()
	if up == "" {
		up = map[string]string{"http": "80", "https": "443"}[u.url.Scheme]
	}
	if up != lp {
		return false
	}
	return sameHost(lh, uh)
}

func sameHost(listenHost, host string) bool {
	if listenHost == host {
		return true
	}
	loop := func(h string) bool {
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	unspecified := func(h string) bool {
		if h == "" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsUnspecified()
	}
	// A wildcard listener answers on every local address; a loopback one on
	// every loopback name.
	if unspecified(listenHost) {
		return loop(host) || unspecified(host)
	}
	return loop(listenHost) && loop(host)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
