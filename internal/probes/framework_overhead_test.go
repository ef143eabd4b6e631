//go:build bench

package probes

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/testbuild"
	"github.com/originagent/originagent/internal/testutil"
)

// benchFrameworks are the hello routes of testdata/bench/frameworks, one
// per framework, in the order the report lists them.
var benchFrameworks = []struct{ name, path string }{
	{"net/http", "/nethttp/hello"},
	{"chi", "/chi/hello"},
	{"gorilla/mux", "/mux/hello"},
	{"gin", "/gin/hello"},
	{"echo", "/echo/hello"},
	{"httprouter", "/httprouter/hello"},
}

// TestFrameworkOverheadReport measures, per framework, the probe hits per
// request and the target CPU each request gains with originagent and with
// an empty uprobe at the same places, on testdata/bench/frameworks (a hello
// route per framework, each traced by its dd-trace-go v1.73 contrib and no
// other middleware). Each round attaches each mode once and drives every
// framework in turn; modes are interleaved across rounds and the report
// takes medians. A report, not an assertion: timings here are noisy.
func TestFrameworkOverheadReport(t *testing.T) {
	testutil.RequireRoot(t)
	const (
		requests    = 10000
		concurrency = 8
		rounds      = 7
	)
	root, err := e2eservices.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := testbuild.Build(t, testbuild.Spec{
		Dir: filepath.Join(root, "testdata", "bench", "frameworks"), Pkg: ".",
		Flags: []string{"-trimpath", "-buildmode=pie", "-ldflags=-s -w"},
	})
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	pid := svc.PID
	statsOn, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		t.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer statsOn.Close()
	modes := []overheadMode{
		{name: "no agent"},
		{name: "empty uprobe @PUSHQ BP", attach: true, empty: true},
		{name: "originagent @PUSHQ BP", attach: true},
	}
	type sample struct {
		cpu           time.Duration // target CPU per request
		hits, emitted float64       // per request
		progNs        float64       // BPF program run time per hit
	}
	results := map[string][]sample{} // key: framework + "\x00" + mode
	for _, f := range benchFrameworks {
		if _, err := drivePath(svc.Addr, f.path, 2000, concurrency); err != nil { // warm up
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for _, m := range modes {
			withMode(t, pid, m, func(e *Engine) {
				var hits0, emitted0, runs0 uint64
				var runtime0 time.Duration
				for _, f := range benchFrameworks {
					cpu0 := cpuTime(t, pid)
					if _, err := drivePath(svc.Addr, f.path, requests, concurrency); err != nil {
						t.Fatalf("%s, %s: %v", f.name, m.name, err)
					}
					s := sample{cpu: (cpuTime(t, pid) - cpu0) / requests}
					if e != nil {
						st, err := e.BPFStats()
						if err != nil {
							t.Fatal(err)
						}
						s.hits = float64(st.Hits-hits0) / requests
						s.emitted = float64(st.Emitted-emitted0) / requests
						hits0, emitted0 = st.Hits, st.Emitted
						// The kernel's own accounting of the program, which
						// the machine's load does not inflate as it does the
						// target's CPU time.
						if ps, err := e.program().Stats(); err == nil && ps.RunCount > runs0 {
							s.progNs = float64(ps.Runtime-runtime0) / float64(ps.RunCount-runs0)
							runs0, runtime0 = ps.RunCount, ps.Runtime
						}
					}
					k := f.name + "\x00" + m.name
					results[k] = append(results[k], s)
				}
			})
		}
	}
	median := func(ss []sample, f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	us := func(ns float64) string { return fmt.Sprintf("%.1f us", ns/1e3) }
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d requests per framework x %d rounds, concurrency %d, medians over rounds\n", requests, rounds, concurrency)
	b.WriteString("| framework | CPU/req, no agent | added, empty uprobe | added, originagent | originagent / empty uprobe | probe hits/req | events/req | BPF ns/hit, empty | BPF ns/hit, originagent |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range benchFrameworks {
		cpu := func(m overheadMode) float64 {
			return median(results[f.name+"\x00"+m.name], func(s sample) float64 { return float64(s.cpu) })
		}
		base, empty, oa := cpu(modes[0]), cpu(modes[1]), cpu(modes[2])
		real := results[f.name+"\x00"+modes[2].name]
		prog := func(m overheadMode) float64 {
			return median(results[f.name+"\x00"+m.name], func(s sample) float64 { return s.progNs })
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.0f | %.0f |\n", f.name, us(base), us(empty-base), us(oa-base),
			(oa-base)/(empty-base), median(real, func(s sample) float64 { return s.hits }),
			median(real, func(s sample) float64 { return s.emitted }), prog(modes[1]), prog(modes[2]))
	}
	t.Log(b.String())
}
