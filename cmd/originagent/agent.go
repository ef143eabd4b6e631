package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/originagent/originagent/internal/admin"
	"github.com/originagent/originagent/internal/export"
	"github.com/originagent/originagent/internal/kube"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes"
	"github.com/originagent/originagent/internal/probes/discover"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// agentConfig is everything `originagent run` (and `demo`) configures.
type agentConfig struct {
	proxy    export.Config
	engine   probes.Config
	discover discover.Config

	selectEnv  string   // KEY=VALUE opt-in; empty disables
	selectExe  []string // executable path globs
	kube       bool
	kubeNS     bool
	kubeconfig string
	nodeName   string

	adminAddr  string
	events     string // "", "-" or a file
	localAgent string // never, auto, always
	// extraSinks also receive every record (the demo's table).
	extraSinks []origin.Sink
}

// loopbackAgentConfig is `originagent run`'s default configuration with
// the intake and admin server on loopback ports the kernel picks: what the
// demo and the tests run.
func loopbackAgentConfig() agentConfig {
	var cfg agentConfig
	registerAgentFlags(pflag.NewFlagSet("loopback", pflag.ContinueOnError), &cfg)
	cfg.proxy.Listen = "127.0.0.1:0"
	cfg.adminAddr = "127.0.0.1:0"
	cfg.engine.ProcRoot = cfg.discover.ProcRoot
	return cfg
}

// agent is a running originagent: proxy, probe engine, process watcher and
// admin server.
type agent struct {
	log      *slog.Logger
	cfg      agentConfig
	reg      *prometheus.Registry
	proxy    *export.Proxy
	engine   *probes.Engine
	watcher  *discover.Watcher
	admin    *admin.Server
	local    *export.LocalAgent
	localSrv *http.Server
	events   *export.JSONLines
	eventsF  *os.File
	kubeSel  *kube.Selector
	// adminURL is the admin server's base URL once run listens.
	adminURL string
}

// newAgent builds every part; run starts them. On error, what was built is
// released.
func newAgent(cfg agentConfig, log *slog.Logger) (*agent, error) {
	a := &agent{log: log, cfg: cfg, reg: prometheus.NewRegistry()}
	if err := a.build(); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *agent) build() error {
	cfg, log := a.cfg, a.log
	var err error
	if err := probes.CheckPrivileges(); err != nil {
		return err
	}
	if err := a.setupUpstream(); err != nil {
		return err
	}
	if a.proxy, err = export.NewProxy(a.cfg.proxy, log.With("component", "proxy"), a.reg); err != nil {
		return fmt.Errorf("trace intake proxy: %w", err)
	}
	sinks := []origin.Sink{a.proxy}
	switch cfg.events {
	case "":
	case "-":
		a.events = export.NewJSONLines(os.Stdout)
	default:
		if a.eventsF, err = os.OpenFile(cfg.events, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return fmt.Errorf("--events: %w", err)
		}
		a.events = export.NewJSONLines(a.eventsF)
	}
	if a.events != nil {
		sinks = append(sinks, a.events)
	}
	sinks = append(sinks, cfg.extraSinks...)
	if a.engine, err = probes.New(cfg.engine, origin.Tee(sinks...), log.With("component", "probes"), a.reg); err != nil {
		return fmt.Errorf("probe engine: %w", err)
	}
	a.proxy.SetBeforeEnrich(func() { a.engine.Sync(syncTimeout) })
	sel, err := a.selector()
	if err != nil {
		return err
	}
	if a.watcher, err = discover.New(cfg.discover, sel, log.With("component", "discover"), a.reg); err != nil {
		return fmt.Errorf("process discovery: %w", err)
	}
	a.admin = admin.New(cfg.adminAddr, a.reg, a.status, log.With("component", "admin"))
	return nil
}

// setupUpstream resolves the upstream Agent and, when asked to, replaces an
// unreachable one with the in-process local agent.
func (a *agent) setupUpstream() error {
	useLocal := false
	switch a.cfg.localAgent {
	case "never", "":
	case "always":
		useLocal = true
	case "auto":
		up := a.cfg.proxy.Upstream
		if up == "" {
			r, err := export.ResolveUpstream(a.cfg.proxy.Listen, a.cfg.proxy.ListenUnix, os.Getenv, fileExists)
			if err != nil {
				return err
			}
			up = r
		}
		if err := reachable(up); err != nil {
			a.log.Warn("no Datadog Agent reachable; keeping payloads in the built-in local agent", "upstream", up, "err", err)
			useLocal = true
		} else {
			a.cfg.proxy.Upstream = up
		}
	default:
		return fmt.Errorf("--local-agent %q: want never, auto or always", a.cfg.localAgent)
	}
	if !useLocal {
		return nil
	}
	a.local = export.NewLocalAgent(export.LocalAgentOptions{}, a.log.With("component", "local-agent"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("local agent: %w", err)
	}
	a.localSrv = &http.Server{Handler: a.local, ReadHeaderTimeout: 10 * time.Second}
	go a.localSrv.Serve(ln)
	a.cfg.proxy.Upstream = "http://" + ln.Addr().String()
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// reachable dials the upstream's address.
func reachable(upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	network, addr := "tcp", u.Host
	if u.Scheme == "unix" {
		network, addr = "unix", u.Path
	}
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func (a *agent) selector() (discover.Selector, error) {
	var sels []discover.Selector
	// The pod selector goes first: it labels every process of a pod
	// (namespace, pod, container) even when another selector opts it in.
	if a.cfg.kube {
		client, err := kube.NewClient(a.cfg.kubeconfig, "originagent/"+version)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		a.kubeSel, err = kube.NewSelector(kube.Options{
			Client: client, NodeName: a.cfg.nodeName, Namespaces: a.cfg.kubeNS,
			Logger: a.log.With("component", "kube"), Registerer: a.reg,
		})
		if err != nil {
			return nil, err
		}
		sels = append(sels, a.kubeSel)
	}
	if a.cfg.selectEnv != "" {
		k, v, ok := strings.Cut(a.cfg.selectEnv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--select-env %q: want KEY=VALUE", a.cfg.selectEnv)
		}
		if k == discover.OptInEnv && strings.EqualFold(v, "true") {
			sels = append(sels, discover.OptInSelector())
		} else {
			sels = append(sels, discover.EnvSelector(k, v))
		}
	}
	if len(a.cfg.selectExe) > 0 {
		s, err := discover.ExePathSelector(a.cfg.selectExe)
		if err != nil {
			return nil, fmt.Errorf("--select-exe: %w", err)
		}
		sels = append(sels, s)
	}
	if len(sels) == 0 {
		return nil, errors.New("no process selector: set --select-env, --select-exe or --kube")
	}
	return discover.AnyOf(sels...), nil
}

// status reports the attached processes for /status.
func (a *agent) status() admin.Status {
	st := admin.Status{Version: version}
	for _, p := range a.engine.Processes() {
		ap := admin.Process{
			PID: p.PID, Binary: p.Exe, BuildID: p.BinaryID, GoVersion: p.GoVersion, Service: p.Service,
			Frameworks: p.Frameworks, Labels: p.Labels, AttachedAt: p.Attached,
		}
		for _, s := range p.Probes {
			ap.Probes = append(ap.Probes, admin.Probe{Framework: s.Framework, Symbol: s.Symbol})
		}
		st.Processes = append(st.Processes, ap)
	}
	return st
}

// run serves until ctx is done, then shuts down: the intake drains (see
// export.Proxy.Drain: DrainPeriod, then in-flight payloads forwarded within
// shutdownTimeout), then probes detach, then the admin server stops.
func (a *agent) run(ctx context.Context, ready func()) error {
	if err := a.proxy.Listen(); err != nil {
		a.close()
		return fmt.Errorf("trace intake: %w", err)
	}
	adminLn, err := net.Listen("tcp", a.cfg.adminAddr)
	if err != nil {
		a.proxy.Shutdown(context.Background())
		a.close()
		return fmt.Errorf("admin address %s: %w", a.cfg.adminAddr, err)
	}
	a.adminURL = "http://" + adminLn.Addr().String()
	if a.kubeSel != nil {
		a.kubeSel.Start(ctx)
		a.kubeSel.OnChange(a.watcher.ReevaluateAll)
		// Ready only once the pod cache is: until then pods cannot opt in.
		syncCtx, cancelSync := context.WithTimeout(ctx, 30*time.Second)
		err := a.kubeSel.WaitForSync(syncCtx)
		cancelSync()
		if err != nil {
			a.log.Warn("the pod cache has not synced; pods opt in once it has", "err", err)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	goRun := func(name string, f func(context.Context) error, c context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(c); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("admin", func(c context.Context) error { return a.admin.ServeListener(c, adminLn) }, runCtx)
	goRun("proxy", a.proxy.Serve, runCtx)
	goRun("events", a.engine.Run, runCtx)
	watchCtx, stopWatch := context.WithCancel(runCtx)
	defer stopWatch()
	watchDone := make(chan error, 1)
	go func() { watchDone <- a.watcher.Run(watchCtx, a.engine) }()

	a.admin.SetReady(false, "attaching to the processes already running")
	a.log.Info("originagent running", "version", version, "listen", addrsString(a.proxy.Addrs()),
		"upstream", a.proxy.Upstream(), "admin", adminLn.Addr().String(), "local_agent", a.local != nil)

	// Ready once every opted-in process that was running at start has been
	// attached or skipped (with its reason logged): a restart's first spans
	// must not go out untagged because probes were not back yet.
	scanned := a.watcher.Scanned()
	var runErr error
wait:
	for {
		select {
		case <-scanned:
			scanned = nil
			a.admin.SetReady(true, "")
			a.log.Info("ready", "attached", len(a.engine.Processes()))
			if ready != nil {
				ready()
			}
		case <-ctx.Done():
			break wait
		case runErr = <-errs:
			break wait
		case runErr = <-watchDone:
			if runErr != nil {
				runErr = fmt.Errorf("process discovery: %w", runErr)
			}
			break wait
		}
	}
	a.admin.SetReady(false, "shutting down")
	a.log.Info("shutting down")
	// The intake first, with the probes still attached: payloads during the
	// drain are still tagged, and a successor agent takes the tracers over.
	drain := a.cfg.proxy.DrainPeriod
	if drain <= 0 {
		drain = export.DefaultDrainPeriod
	}
	dctx, cancelDrain := context.WithTimeout(context.Background(), drain+shutdownTimeout)
	if err := a.proxy.Drain(dctx); err != nil {
		a.log.Warn("trace intake did not drain", "err", err)
	}
	cancelDrain()
	stopWatch() // the watcher reports Exit for every process: probes detach
	select {
	case err := <-watchDone:
		if err != nil && runErr == nil {
			runErr = err
		}
	case <-time.After(2 * time.Second):
		a.log.Warn("process discovery did not stop in time")
	}
	cancel() // the proxy is already shut down; the admin server stops
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(shutdownTimeout):
		a.log.Warn("shutdown timed out")
	}
	if err := a.close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// syncTimeout bounds how long a trace payload waits for the probe engine to
// hand over the records still in the kernel's ring buffer.
const syncTimeout = 100 * time.Millisecond

// shutdownTimeout bounds each shutdown step after the intake's drain
// period (in-flight payloads, then the other components): SIGTERM-to-exit
// is the drain period plus well under a second when nothing hangs, far
// below the chart's terminationGracePeriodSeconds.
const shutdownTimeout = 4 * time.Second

func (a *agent) close() error {
	var errs []error
	if a.engine != nil {
		errs = append(errs, a.engine.Close())
	}
	if a.events != nil {
		errs = append(errs, a.events.Flush())
	}
	if a.eventsF != nil {
		errs = append(errs, a.eventsF.Close())
	}
	if a.localSrv != nil {
		errs = append(errs, a.localSrv.Close())
	}
	return errors.Join(errs...)
}

func addrsString(as []net.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Network() + ":" + a.String()
	}
	return strings.Join(s, ",")
}
