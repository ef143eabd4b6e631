package probes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
)

// overheadMode is one way the benchmark target runs.
type overheadMode struct {
	name   string
	attach bool
	empty  bool // the empty BPF program instead of the real one
	entry  bool // on the function's first instruction instead of PUSHQ BP
}

var overheadModes = []overheadMode{
	{name: "no agent"},
	{name: "empty uprobe @PUSHQ BP", attach: true, empty: true},
	{name: "originagent @PUSHQ BP", attach: true},
	{name: "originagent @entry", attach: true, entry: true},
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	hits     uint64
}

// drive sends n GET requests with c concurrent keep-alive clients.
func drive(addr string, n, c int) (loadResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return loadResult{rps: float64(n) / wall.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}, firstErr
}

// TestOverheadReport measures what the probes add to a hello-world net/http
// service at fixed concurrency, interleaving the modes in rounds so that the
// machine's drift hits all of them alike, and prints a table of ratios. It is
// a report, not an assertion (timings on shared machines are noisy): `make
// bench` runs it with ORIGINAGENT_BENCH=1.
func TestOverheadReport(t *testing.T) {
	if os.Getenv("ORIGINAGENT_BENCH") == "" {
		t.Skip("set ORIGINAGENT_BENCH=1 (make bench) to run the overhead report")
	}
	testutil.RequireRoot(t)
	const (
		requests    = 20000
		concurrency = 8
		rounds      = 5
	)
	root, err := e2eservices.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.Command("go", "build", "-o", bin, "./testdata/bench/hello")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hello: %v\n%s", err, out)
	}
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=hello")
	pid := svc.PID
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	results := map[string][]loadResult{}
	if _, err := drive(svc.Addr, 2000, concurrency); err != nil { // warm up
		t.Fatal(err)
	}
	for r := 0; r < rounds; r++ {
		for _, m := range overheadModes {
			var e *Engine
			cancel := context.CancelFunc(func() {})
			done := make(chan error, 1)
			if m.attach {
				cfg := DefaultConfig()
				cfg.benchEmpty, cfg.benchAtEntry = m.empty, m.entry
				var err error
				e, err = New(cfg, origin.SinkFunc(func(origin.Record) {}), log, nil)
				if err != nil {
					t.Fatal(err)
				}
				var ctx context.Context
				ctx, cancel = context.WithCancel(context.Background())
				defer cancel()
				go func() { done <- e.Run(ctx) }()
				e.Start(processOf(pid), discover.Decision{Selected: true})
				if len(e.Processes()) != 1 {
					t.Fatalf("%s: not attached", m.name)
				}
			}
			res, err := drive(svc.Addr, requests, concurrency)
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			if e != nil {
				if st, err := e.BPFStats(); err == nil {
					res.hits = st[statHits]
				}
				cancel()
				<-done
				e.Close()
			}
			results[m.name] = append(results[m.name], res)
		}
	}
	median := func(rs []loadResult, f func(loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	base := results[overheadModes[0].name]
	baseRPS := median(base, func(r loadResult) float64 { return r.rps })
	baseCPU := 1e9 / baseRPS // ns of wall per request at this concurrency
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d requests x %d rounds, concurrency %d, medians over rounds\n", requests, rounds, concurrency)
	fmt.Fprintf(&b, "| mode | req/s | vs no agent | p50 | p99 | probe hits/req | added ns/req (wall) |\n|---|---|---|---|---|---|---|\n")
	added := map[string]float64{}
	for _, m := range overheadModes {
		rs := results[m.name]
		rps := median(rs, func(r loadResult) float64 { return r.rps })
		p50 := time.Duration(median(rs, func(r loadResult) float64 { return float64(r.p50) }))
		p99 := time.Duration(median(rs, func(r loadResult) float64 { return float64(r.p99) }))
		hits := median(rs, func(r loadResult) float64 { return float64(r.hits) }) / requests
		add := 1e9/rps - baseCPU
		added[m.name] = add
		fmt.Fprintf(&b, "| %s | %.0f | %.3f | %v | %v | %.2f | %.0f |\n", m.name, rps, rps/baseRPS, p50, p99, hits, add)
	}
	if e := added[overheadModes[1].name]; e > 0 {
		fmt.Fprintf(&b, "originagent @PUSHQ BP / empty uprobe @PUSHQ BP (added time per request): %.2f\n", added[overheadModes[2].name]/e)
	}
	t.Log(b.String())
}
