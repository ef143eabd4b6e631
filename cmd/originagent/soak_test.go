//go:build soak

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/testutil"
)

// faultyAgent is the upstream of the soak: a v0.4 trace intake (the real
// Agent cannot run here) whose behaviour the soak switches between normal,
// 500, slow (3 s before answering) and down (connections closed unanswered).
type faultyAgent struct {
	mode atomic.Value // string

	mu     sync.Mutex
	spans  map[uint64]bool // span ID -> tagged
	counts map[string]int
}

func (f *faultyAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/info" {
		io.WriteString(w, `{"version":"7.99.0","endpoints":["/v0.4/traces"]}`)
		return
	}
	if r.URL.Path != "/v0.4/traces" {
		http.NotFound(w, r)
		return
	}
	mode, _ := f.mode.Load().(string)
	f.mu.Lock()
	f.counts[mode]++
	f.mu.Unlock()
	switch mode {
	case "500":
		io.Copy(io.Discard, r.Body)
		http.Error(w, "agent error", http.StatusInternalServerError)
		return
	case "down":
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	case "slow":
		time.Sleep(3 * time.Second)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ts pb.Traces
	if _, err := ts.UnmarshalMsg(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	for _, tr := range ts {
		for _, s := range tr {
			_, tagged := s.Meta["_dd.code_origin.type"]
			f.spans[s.SpanID] = f.spans[s.SpanID] || tagged
		}
	}
	f.mu.Unlock()
	io.WriteString(w, `{"rate_by_service":{}}`)
}

// soakAgent is one originagent process of the soak.
type soakAgent struct {
	cmd   *exec.Cmd
	admin string
	log   *lockedLog
	peak  atomic.Int64 // VmHWM, bytes
	done  chan error
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startSoakAgent(t *testing.T, bin, sock, upstream, optIn string) *soakAgent {
	a := &soakAgent{admin: freeAddr(t), log: &lockedLog{}, done: make(chan error, 1)}
	a.cmd = exec.Command(bin, "run", "--listen=", "--listen-unix", sock, "--upstream", upstream,
		"--select-env", optIn, "--admin-addr", a.admin, "--local-agent", "never")
	a.cmd.Stderr = a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	go func() {
		for {
			select {
			case <-time.After(200 * time.Millisecond):
			case err := <-a.done:
				a.done <- err
				return
			}
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
						a.peak.Store(kb << 10)
					}
				}
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + a.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready within 60 s:\n%s", a.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *soakAgent) stop(t *testing.T) {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("agent pid %d exit: %v\n%s", a.cmd.Process.Pid, err, a.log.String())
		}
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		t.Errorf("agent pid %d still running 15 s after SIGTERM", a.cmd.Process.Pid)
	}
}

// TestSoak runs a traced service through originagent for a couple of
// minutes of phases with faults: upstream 500, slow and down, an agent
// handover (a second agent started, then the first stopped) and a target
// restart. It prints, per phase, the spans the service produced, the
// ones the upstream received and the ones tagged, and the agents' peak RSS.
// Requests of the 3 s after each phase ("settle") are counted apart: their
// spans are flushed (every 2 s) under the next phase's fault.
// `make soak` runs it (build tag soak); SOAK_PHASE sets a phase's length.
func TestSoak(t *testing.T) {
	testutil.RequireRoot(t)
	phaseLen := 12 * time.Second
	if v := os.Getenv("SOAK_PHASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_PHASE: %v", err)
		}
		phaseLen = d
	}
	agentBin := e2eservices.BuildPackage(t, "./cmd/originagent")
	svcBin := e2eservices.Build(t, e2eservices.NetHTTPV2)
	up := &faultyAgent{spans: map[uint64]bool{}, counts: map[string]int{}}
	up.mode.Store("normal")
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	sock := filepath.Join(t.TempDir(), "apm.socket")
	optIn := "ORIGINAGENT_SOAK=" + strconv.Itoa(os.Getpid())
	svcEnv := []string{"DD_TRACE_AGENT_URL=unix://" + sock, "DD_SERVICE=soak", optIn,
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED=false", "DD_REMOTE_CONFIGURATION_ENABLED=false"}

	agents := []*soakAgent{startSoakAgent(t, agentBin, sock, upSrv.URL, optIn)}
	var svcMu sync.Mutex
	svc := e2eservices.Start(t, svcBin, svcEnv...)

	type sent struct {
		span  uint64
		phase string
	}
	var sentMu sync.Mutex
	var all []sent
	var reqErrs atomic.Int64
	phase := atomic.Value{}
	phase.Store("normal")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				svcMu.Lock()
				s := svc
				svcMu.Unlock()
				ph := phase.Load().(string)
				tr, err := s.Get(context.Background(), e2eservices.Routes[n%len(e2eservices.Routes)].Path)
				if err != nil {
					reqErrs.Add(1) // the service restarting
					continue
				}
				id, _ := strconv.ParseUint(tr.SpanID, 10, 64)
				sentMu.Lock()
				all = append(all, sent{id, ph})
				sentMu.Unlock()
			}
		})
	}
	run := func(name, mode string, mid func()) {
		phase.Store(name)
		up.mode.Store(mode)
		time.Sleep(phaseLen / 2)
		if mid != nil {
			mid()
		}
		time.Sleep(phaseLen / 2)
		// The tracer flushes every 2 s: spans of a phase's last moments
		// travel under the next phase's fault. Counted apart.
		phase.Store("settle")
		time.Sleep(3 * time.Second)
	}
	phases := []string{"normal", "upstream 500", "upstream slow", "upstream down", "agent handover", "target restart", "normal again"}
	run(phases[0], "normal", nil)
	run(phases[1], "500", nil)
	run(phases[2], "slow", nil)
	run(phases[3], "down", nil)
	run(phases[4], "normal", func() {
		next := startSoakAgent(t, agentBin, sock, upSrv.URL, optIn)
		agents[len(agents)-1].stop(t)
		agents = append(agents, next)
	})
	run(phases[5], "normal", func() {
		svcMu.Lock()
		old := svc
		svcMu.Unlock()
		next := e2eservices.Start(t, svcBin, svcEnv...)
		svcMu.Lock()
		svc = next
		svcMu.Unlock()
		if err := old.Stop(); err != nil { // flushes its tracer
			t.Errorf("stop target: %v", err)
		}
	})
	run(phases[6], "normal", nil)
	close(stop)
	wg.Wait()
	svcMu.Lock()
	if err := svc.Stop(); err != nil {
		t.Errorf("stop target: %v", err)
	}
	svcMu.Unlock()
	time.Sleep(time.Second)
	last := agents[len(agents)-1]
	last.stop(t)

	type row struct{ sent, delivered, tagged int }
	rows := map[string]*row{}
	up.mu.Lock()
	for _, s := range all {
		r := rows[s.phase]
		if r == nil {
			r = &row{}
			rows[s.phase] = r
		}
		r.sent++
		if tagged, ok := up.spans[s.span]; ok {
			r.delivered++
			if tagged {
				r.tagged++
			}
		}
	}
	up.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-16s %8s %10s %8s\n", "phase", "sent", "delivered", "tagged")
	var tot row
	for _, p := range append(phases, "settle") {
		r := rows[p]
		if r == nil {
			r = &row{}
		}
		fmt.Fprintf(&b, "%-16s %8d %10d %8d\n", p, r.sent, r.delivered, r.tagged)
		tot.sent, tot.delivered, tot.tagged = tot.sent+r.sent, tot.delivered+r.delivered, tot.tagged+r.tagged
	}
	fmt.Fprintf(&b, "%-16s %8d %10d %8d\n", "total", tot.sent, tot.delivered, tot.tagged)
	for i, a := range agents {
		fmt.Fprintf(&b, "agent %d (pid %d): peak RSS %.1f MiB\n", i+1, a.cmd.Process.Pid, float64(a.peak.Load())/(1<<20))
	}
	fmt.Fprintf(&b, "requests failed while the target restarted: %d; phase length %v\n", reqErrs.Load(), phaseLen)
	t.Log(b.String())

	// Without an upstream fault nothing may be lost, across the agent
	// handover and the target restart included.
	for _, p := range []string{"normal", "agent handover", "target restart", "normal again", "upstream slow"} {
		if r := rows[p]; r == nil || r.sent == 0 || r.delivered != r.sent {
			t.Errorf("%s: %+v, want every span delivered", p, r)
		}
	}
	for i, a := range agents {
		if a.peak.Load() > 256<<20 {
			t.Errorf("agent %d peak RSS %d MiB, over the chart's 256Mi limit", i+1, a.peak.Load()>>20)
		}
	}
}
