//go:build bench

package probes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
	"golang.org/x/sys/unix"
)

// overheadMode is one way the benchmark target runs.
type overheadMode struct {
	name   string
	attach bool
	empty  bool // the empty BPF program instead of the real one
	reads  bool // the four-reads floor program instead of the real one
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
	cpu      time.Duration // the target's CPU time (user+system) per request
	hits     uint64
	progNs   float64 // BPF program run time per hit
}

// withMode runs f with the probes of mode m attached to pid.
func withMode(t *testing.T, pid int, m overheadMode, f func(*Engine)) {
	t.Helper()
	if !m.attach {
		f(nil)
		return
	}
	cfg := DefaultConfig()
	cfg.benchEmpty, cfg.benchReads, cfg.benchAtEntry = m.empty, m.reads, m.entry
	e, err := New(cfg, origin.SinkFunc(func(origin.Record) {}), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		e.Close()
	}()
	e.Start(processOf(pid), discover.Decision{Selected: true})
	if len(e.Processes()) != 1 {
		t.Fatalf("%s: not attached", m.name)
	}
	f(e)
}

// programNs returns the mean run time of e's BPF program, from the kernel's
// BPF_STATS_RUN_TIME accounting.
func programNs(e *Engine) (float64, bool) {
	ps, err := e.program().Stats()
	if err != nil || ps.RunCount == 0 {
		return 0, false
	}
	return float64(ps.Runtime) / float64(ps.RunCount), true
}

// cpuTime returns the CPU time all threads of pid have used, in
// nanoseconds from /proc/PID/task/*/schedstat (the clock-tick counters of
// /proc/PID/stat are too coarse). Uprobe handling is charged to the probed
// thread.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("schedstat of %d/%s: %q", pid, task.Name(), b)
		}
		total += time.Duration(ns)
	}
	return total
}

// drive sends n GET / requests with c concurrent keep-alive clients.
func drive(addr string, n, c int) (loadResult, error) { return drivePath(addr, "/", n, c) }

// drivePath sends n GET requests for path with c concurrent keep-alive
// clients.
func drivePath(addr, path string, n, c int) (loadResult, error) {
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
				resp, err := client.Get("http://" + addr + path)
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
// a report, not an assertion (timings on shared machines are noisy); the bench
// build tag keeps it out of `make test`, `make bench` runs it.
func TestOverheadReport(t *testing.T) {
	testutil.RequireRoot(t)
	const (
		requests    = 20000
		concurrency = 8
		rounds      = 9
	)
	bin := e2eservices.BuildPackage(t, "./testdata/bench/hello")
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=hello")
	pid := svc.PID
	results := map[string][]loadResult{}
	statsOn, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer statsOn.Close()
	if _, err := drive(svc.Addr, 2000, concurrency); err != nil { // warm up
		t.Fatal(err)
	}
	for r := 0; r < rounds; r++ {
		for _, m := range overheadModes {
			var res loadResult
			withMode(t, pid, m, func(e *Engine) {
				cpu0 := cpuTime(t, pid)
				var err error
				res, err = drive(svc.Addr, requests, concurrency)
				if err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
				res.cpu = (cpuTime(t, pid) - cpu0) / requests
				if e != nil {
					if st, err := e.BPFStats(); err == nil {
						res.hits = st.Hits
					}
					if ns, ok := programNs(e); ok {
						res.progNs = ns
					}
				}
			})
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
	baseCPU := median(base, func(r loadResult) float64 { return float64(r.cpu) })
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d requests x %d rounds, concurrency %d, medians over rounds\n", requests, rounds, concurrency)
	fmt.Fprintf(&b, "| mode | req/s | vs no agent | p50 | p99 | target CPU/req | added CPU/req | probe hits/req | BPF ns/run |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range overheadModes {
		rs := results[m.name]
		rps := median(rs, func(r loadResult) float64 { return r.rps })
		p50 := time.Duration(median(rs, func(r loadResult) float64 { return float64(r.p50) }))
		p99 := time.Duration(median(rs, func(r loadResult) float64 { return float64(r.p99) }))
		hits := median(rs, func(r loadResult) float64 { return float64(r.hits) }) / requests
		cpu := median(rs, func(r loadResult) float64 { return float64(r.cpu) })
		prog := median(rs, func(r loadResult) float64 { return r.progNs })
		fmt.Fprintf(&b, "| %s | %.0f | %.3f | %v | %v | %v | %v | %.2f | %.0f |\n", m.name, rps, rps/baseRPS,
			p50.Round(time.Microsecond), p99.Round(time.Microsecond), time.Duration(cpu).Round(100*time.Nanosecond),
			time.Duration(cpu-baseCPU).Round(100*time.Nanosecond), hits, prog)
	}
	t.Log(b.String())
}

// TestProbeCostReport measures the cost of one probe hit: a target calls
// net/http.HandlerFunc.ServeHTTP through the http.Handler interface in a
// tight loop under a real span, and the time per call is compared across
// modes in interleaved rounds. `make bench` runs it (build tag bench).
func TestProbeCostReport(t *testing.T) {
	testutil.RequireRoot(t)
	const (
		calls  = 200000
		rounds = 7
	)
	bin := e2eservices.BuildPackage(t, "./testdata/bench/loop")
	agent := e2eservices.NewAgent(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DD_TRACE_AGENT_URL="+agent.URL, "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("loop target did not start: %q", lines.Text())
	}
	run := func(n int) time.Duration {
		fmt.Fprintln(stdin, n)
		if !lines.Scan() {
			t.Fatal("loop target stopped")
		}
		ns, err := strconv.ParseInt(lines.Text(), 10, 64)
		if err != nil {
			t.Fatalf("loop target: %q", lines.Text())
		}
		return time.Duration(ns)
	}
	modes := []overheadMode{
		{name: "no probe"},
		{name: "empty uprobe @PUSHQ BP", attach: true, empty: true},
		{name: "originagent @PUSHQ BP", attach: true},
		{name: "empty uprobe @entry", attach: true, empty: true, entry: true},
		{name: "originagent @entry", attach: true, entry: true},
		// The floor: four 8-byte reads of the target's memory, the least an
		// in-kernel capture of handler and span IDs needs (see reads_entry).
		{name: "4 user reads @PUSHQ BP", attach: true, reads: true},
	}
	// Kernel accounting of BPF run time separates the program's own cost
	// from the uprobe trap around it and from the reader on the other core.
	statsOn, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer statsOn.Close()
	per := map[string][]float64{}
	progNs := map[string][]float64{}
	var emitted, full uint64
	for r := 0; r < rounds; r++ {
		for _, m := range modes {
			withMode(t, cmd.Process.Pid, m, func(e *Engine) {
				run(calls / 10) // warm up
				d := run(calls)
				per[m.name] = append(per[m.name], float64(d)/calls)
				if e != nil {
					if ns, ok := programNs(e); ok {
						progNs[m.name] = append(progNs[m.name], ns)
					}
				}
				if e != nil && !m.empty {
					if st, err := e.BPFStats(); err == nil {
						emitted += st.Emitted
						full += st.RingbufFull
					}
				}
			})
		}
	}
	med := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	base := med(per[modes[0].name])
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d calls x %d rounds, median ns per call\n| mode | ns/call | added ns/hit | BPF program ns/run |\n|---|---|---|---|\n", calls, rounds)
	added := map[string]float64{}
	for _, m := range modes {
		v := med(per[m.name])
		added[m.name] = v - base
		prog := "-"
		if len(progNs[m.name]) > 0 {
			prog = fmt.Sprintf("%.0f", med(progNs[m.name]))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s |\n", m.name, v, v-base, prog)
	}
	fmt.Fprintf(&b, "originagent / empty uprobe, same place (PUSHQ BP): %.2f\n", added[modes[2].name]/added[modes[1].name])
	fmt.Fprintf(&b, "originagent @entry / originagent @PUSHQ BP: %.1f\n", added[modes[4].name]/added[modes[2].name])
	fmt.Fprintf(&b, "4 user reads / empty uprobe, same place (the floor of any in-kernel capture): %.2f\n", added[modes[5].name]/added[modes[1].name])
	fmt.Fprintf(&b, "one user read: %.0f ns\n", (added[modes[5].name]-added[modes[1].name])/4)
	fmt.Fprintf(&b, "events emitted %d, lost to a full ring buffer %d\n", emitted, full)
	t.Log(b.String())
}
