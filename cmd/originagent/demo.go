package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/originagent/originagent/internal/export"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes"
)

// demoRequest is one request the demo sends to an example service.
type demoRequest struct {
	method, path, body, apiKey string
}

// demoService is one example service the demo runs and drives.
type demoService struct {
	name     string // its DD_SERVICE, the table's SERVICE column
	bin      string
	requests []demoRequest
}

// shopRequests exercise every handler shape of examples/shop (net/http):
// method values, a value-receiver struct, a closure, a pointer-receiver
// struct behind authentication middleware, and a plain function.
var shopRequests = []demoRequest{
	{method: "GET", path: "/healthz"},
	{method: "GET", path: "/users"},
	{method: "GET", path: "/users/1"},
	{method: "GET", path: "/users/2"},
	{method: "GET", path: "/products"},
	{method: "GET", path: "/products/mug"},
	{method: "POST", path: "/carts/1/items", body: `{"sku":"mug","quantity":2}`},
	{method: "GET", path: "/carts/1"},
	{method: "POST", path: "/orders", body: `{"items":[{"sku":"tee","quantity":1}]}`, apiKey: "key-ada"},
	{method: "GET", path: "/orders", apiKey: "key-ada"},
}

// ginshopRequests exercise examples/ginshop (gin): a function, method
// values with pointer and value receivers, a closure from a constructor,
// and routes in a group behind middleware.
var ginshopRequests = []demoRequest{
	{method: "GET", path: "/healthz"},
	{method: "GET", path: "/books"},
	{method: "GET", path: "/books/9780134190440"},
	{method: "GET", path: "/authors/donovan"},
	{method: "POST", path: "/admin/books", body: `{"isbn":"9780131103627","title":"The C Programming Language","author":"Kernighan"}`, apiKey: "key-ada"},
	{method: "DELETE", path: "/admin/books/9780201633610", apiKey: "key-ada"},
}

func newDemoCmd() *cobra.Command {
	var shop, ginshop string
	var logs logFlags
	var rounds int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show originagent at work on the example services (needs root)",
		Long: `demo starts the agent, starts the example services (examples/shop, net/http
traced with dd-trace-go v2, and examples/ginshop, gin traced with dd-trace-go
v1's gin contrib), drives a few requests, and prints which handler each route
ran and the code origin tags its spans received. When no Datadog Agent is
reachable, payloads go to a built-in local agent that keeps them in memory.
Every process it starts is stopped on exit, Ctrl-C included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger(os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			svcs := []demoService{{name: "shop", bin: shop, requests: shopRequests}}
			if ginshop != "" {
				svcs = append(svcs, demoService{name: "ginshop", bin: ginshop, requests: ginshopRequests})
			}
			return runDemo(ctx, cmd.OutOrStdout(), log, svcs, rounds)
		},
	}
	cmd.Flags().StringVar(&shop, "shop", "bin/shop", "the example shop binary (make demo builds it)")
	cmd.Flags().StringVar(&ginshop, "ginshop", "bin/ginshop", "the example gin shop binary (make demo builds it; empty: none)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "times to send the request set")
	logs.register(cmd.Flags())
	// The demo prints what matters itself; the agent's own lines would bury it.
	cmd.Flags().Lookup("log-level").DefValue = "error"
	logs.level = "error"
	return cmd
}

// recordLog keeps the records the probes produced, for the demo's table.
type recordLog struct {
	mu   sync.Mutex
	recs []origin.Record
}

func (l *recordLog) Put(r origin.Record) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, svcs []demoService, rounds int) error {
	if err := probes.CheckPrivileges(); err != nil {
		return fmt.Errorf("%w (run it with sudo)", err)
	}
	for _, s := range svcs {
		if _, err := os.Stat(s.bin); err != nil {
			return fmt.Errorf("example service %s: %w (build it with `make demo`)", s.name, err)
		}
	}
	cfg := loopbackAgentConfig()
	cfg.localAgent = "auto"
	recs := &recordLog{}
	cfg.extraSinks = []origin.Sink{recs}

	a, err := newAgent(cfg, log)
	if err != nil {
		return err
	}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { agentDone <- a.run(agentCtx, func() { close(ready) }) }()
	defer func() {
		stopAgent()
		<-agentDone
	}()
	select {
	case <-ready:
	case err := <-agentDone:
		return err
	}
	intake := "http://" + a.proxy.Addrs()[0].String()
	fmt.Fprintf(out, "originagent: trace intake %s, upstream %s\n", intake, upstreamName(a))

	procs := make([]*shopProc, len(svcs))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
	}()
	for i, s := range svcs {
		p, err := startShop(ctx, s.bin, s.name, intake)
		if err != nil {
			return err
		}
		procs[i] = p
		fmt.Fprintf(out, "example %s: pid %d on %s (DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true)\n", s.name, p.cmd.Process.Pid, p.addr)
	}
	for i, s := range svcs {
		pid := procs[i].cmd.Process.Pid
		if err := waitFor(ctx, 5*time.Second, func() bool {
			for _, p := range a.engine.Processes() {
				if p.PID == pid {
					return true
				}
			}
			return false
		}); err != nil {
			return fmt.Errorf("the agent did not attach to %s: %w", s.name, err)
		}
		fmt.Fprintf(out, "attached to %s: probes on %s\n", s.name, strings.Join(probeNames(a, pid), ", "))
	}
	fmt.Fprintln(out)

	client := &http.Client{Timeout: 5 * time.Second}
	sent := 0
	for r := 0; r < rounds; r++ {
		for i, s := range svcs {
			for _, dr := range s.requests {
				if err := ctx.Err(); err != nil {
					return err
				}
				req, err := http.NewRequestWithContext(ctx, dr.method, "http://"+procs[i].addr+dr.path, strings.NewReader(dr.body))
				if err != nil {
					return err
				}
				if dr.apiKey != "" {
					req.Header.Set("X-API-Key", dr.apiKey)
				}
				if dr.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := client.Do(req)
				if err != nil {
					return fmt.Errorf("%s: %s %s: %w", s.name, dr.method, dr.path, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent++
			}
		}
	}
	// Stopping the services flushes their tracers through the intake.
	for _, p := range procs {
		p.stop()
	}
	if a.local != nil {
		waitFor(ctx, 10*time.Second, func() bool { return countSpans(a.local.Spans()) >= sent })
	}
	printDemo(out, a, recs, sent)
	return nil
}

func upstreamName(a *agent) string {
	if a.local != nil {
		return "built-in local agent (no Datadog Agent reachable)"
	}
	return a.proxy.Upstream()
}

func probeNames(a *agent, pid int) []string {
	for _, p := range a.engine.Processes() {
		if p.PID == pid {
			var out []string
			for _, pr := range p.Probes {
				out = append(out, pr.Symbol)
			}
			return out
		}
	}
	return nil
}

func countSpans(spans []export.Span) int {
	n := 0
	for _, s := range spans {
		if s.Name == "http.request" {
			n++
		}
	}
	return n
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

type shopProc struct {
	cmd  *exec.Cmd
	addr string
	once sync.Once
	done chan struct{}
}

func startShop(ctx context.Context, bin, service, intake string) (*shopProc, error) {
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(),
		"DD_TRACE_AGENT_URL="+intake,
		"DD_SERVICE="+service,
		"DD_ENV=demo",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true",
		"DD_TRACE_STARTUP_LOGS=false",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &shopProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case p.addr = <-addr:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening", bin)
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start listening", bin)
}

// stop ends the service: SIGTERM (it flushes its tracer), then SIGKILL.
func (p *shopProc) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// printDemo prints, per route, the handler the probes named and how many of
// the route's spans carry its tags; then the tags of one trace.
func printDemo(out io.Writer, a *agent, recs *recordLog, sent int) {
	type row struct {
		service, route string
		handler, loc   string
		tagged, spans  int
	}
	rows := map[string]*row{}
	var spans []export.Span
	if a.local != nil {
		spans = a.local.Spans()
	}
	for _, s := range spans {
		if s.Name != "http.request" {
			continue
		}
		k := s.Service + "\x00" + s.Resource
		r := rows[k]
		if r == nil {
			r = &row{service: s.Service, route: s.Resource}
			rows[k] = r
		}
		r.spans++
		if s.Meta[origin.TagType] != "" {
			r.tagged++
			r.handler = s.Meta[origin.TagFrameType] + "." + s.Meta[origin.TagFrameMethod]
			r.loc = s.Meta[origin.TagFrameFile] + ":" + s.Meta[origin.TagFrameLine]
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tROUTE\tHANDLER\tFILE:LINE\tSPANS TAGGED")
	for _, k := range keys {
		r := rows[k]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\n", r.service, r.route, r.handler, shortPath(r.loc), r.tagged, r.spans)
	}
	tw.Flush()
	recs.mu.Lock()
	nrec := len(recs.recs)
	recs.mu.Unlock()
	fmt.Fprintf(out, "\n%d requests sent, %d code origin records captured in the kernel, %d spans received upstream\n", sent, nrec, countSpans(spans))
	if nrec == 0 {
		// Say where the hits went, so that an empty table can be diagnosed.
		if st, err := a.engine.BPFStats(); err == nil {
			fmt.Fprintf(out, "probe hits: %d (no span in the request's context: %d, process not tracked: %d, ring buffer full: %d, read faults: %d)\n",
				st.Hits, st.NoSpan, st.NoProcess, st.RingbufFull, st.ReadErrors)
		}
	}
	if a.local == nil {
		fmt.Fprintln(out, "(spans went to the Datadog Agent; see them in Trace Explorer)")
		return
	}
	// One trace in full per service: the tags a user would see on its
	// entry span.
	shown := map[string]bool{}
	for _, k := range keys {
		r := rows[k]
		if shown[r.service] {
			continue
		}
		for _, s := range spans {
			if s.Service != r.service || s.Resource != r.route || s.Meta[origin.TagType] == "" {
				continue
			}
			shown[r.service] = true
			fmt.Fprintf(out, "\n%s: trace %s, span %d (%s %s):\n", s.Service, s.TraceID, s.SpanID, s.Name, s.Resource)
			var tags []string
			for t, v := range s.Meta {
				if strings.HasPrefix(t, "_dd.code_origin.") {
					tags = append(tags, fmt.Sprintf("  %s = %s", t, v))
				}
			}
			sort.Strings(tags)
			fmt.Fprintln(out, strings.Join(tags, "\n"))
			break
		}
	}
}

// shortPath trims the working directory from a file path for display.
func shortPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, ok := strings.CutPrefix(p, wd+"/"); ok {
			return rel
		}
	}
	return p
}
