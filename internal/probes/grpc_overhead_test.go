//go:build bench

package probes

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/testutil"
)

// TestGRPCOverheadReport measures what the probes add to the gRPC test
// service (dd-trace-go v2 interceptors): probe hits per RPC and the
// process's added CPU time per RPC against no agent, for unary and
// server-streaming RPCs, in interleaved rounds. The service's own driver
// makes the RPCs over loopback (client and server in one process, so the
// CPU per RPC counts both ends; the added CPU is the probes'). A report,
// not an assertion; `make bench` runs it.
func TestGRPCOverheadReport(t *testing.T) {
	testutil.RequireRoot(t)
	const (
		rpcs        = 5000
		concurrency = 8
		rounds      = 7
	)
	bin := e2eservices.Build(t, e2eservices.GRPCV2, "-buildmode=pie", "-trimpath", "-ldflags=-s -w")
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=grpc-bench",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	bench := func(kind string, n int) time.Duration {
		resp, err := http.Get(fmt.Sprintf("http://%s/bench/%s?n=%d&c=%d", svc.Addr, kind, n, concurrency))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("bench %s: %s %q", kind, resp.Status, b)
		}
		return time.Duration(ns)
	}
	modes := []overheadMode{
		{name: "no agent"},
		{name: "empty uprobe @PUSHQ BP", attach: true, empty: true},
		{name: "originagent @PUSHQ BP", attach: true},
	}
	type result struct {
		cpu, wall time.Duration // per RPC
		hits      float64       // per RPC
		progNs    float64       // BPF program run time per hit
	}
	statsOn, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer statsOn.Close()
	var b strings.Builder
	for _, kind := range []string{"unary", "server-stream"} {
		bench(kind, 500) // warm up
		res := map[string][]result{}
		for r := 0; r < rounds; r++ {
			for _, m := range modes {
				withMode(t, svc.PID, m, func(e *Engine) {
					cpu0 := cpuTime(t, svc.PID)
					wall := bench(kind, rpcs)
					x := result{cpu: (cpuTime(t, svc.PID) - cpu0) / rpcs, wall: wall / rpcs}
					if e != nil && !m.empty { // the empty program counts nothing
						if st, err := e.BPFStats(); err == nil && st.Hits > 0 {
							// The driver's own HTTP request hits the
							// net/http probe once; it is not an RPC's.
							x.hits = float64(st.Hits-1) / rpcs
						}
					}
					if e != nil {
						if ns, ok := programNs(e); ok {
							x.progNs = ns
						}
					}
					res[m.name] = append(res[m.name], x)
				})
			}
		}
		med := func(rs []result, f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			sort.Float64s(v)
			return v[len(v)/2]
		}
		baseCPU := med(res[modes[0].name], func(r result) float64 { return float64(r.cpu) })
		fmt.Fprintf(&b, "\n%s: %d RPCs x %d rounds, concurrency %d, medians over rounds\n", kind, rpcs, rounds, concurrency)
		fmt.Fprintf(&b, "| mode | wall/RPC | process CPU/RPC | added CPU/RPC | probe hits/RPC | BPF ns/run |\n|---|---|---|---|---|---|\n")
		for _, m := range modes {
			rs := res[m.name]
			cpu := med(rs, func(r result) float64 { return float64(r.cpu) })
			fmt.Fprintf(&b, "| %s | %v | %v | %v | %.3f | %.0f |\n", m.name,
				time.Duration(med(rs, func(r result) float64 { return float64(r.wall) })).Round(100*time.Nanosecond),
				time.Duration(cpu).Round(100*time.Nanosecond), time.Duration(cpu-baseCPU).Round(100*time.Nanosecond),
				med(rs, func(r result) float64 { return r.hits }), med(rs, func(r result) float64 { return r.progNs }))
		}
	}
	t.Log(b.String())
}
