package probes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testbuild"
	"github.com/originagent/originagent/internal/testutil"
)

// variant is a test target: one of testdata/services built one way.
type variant struct {
	name      string
	svc       e2eservices.Name
	flags     []string
	toolchain string // Go version to build with; "" for the local one
}

// hardFlags make the most demanding build: stripped, position-independent,
// externally linked, trimmed paths.
var hardFlags = []string{"-buildmode=pie", "-trimpath", "-ldflags=-linkmode=external -s -w"}

// strippedFlags are the stripped PIE build of the local toolchain.
var strippedFlags = []string{"-buildmode=pie", "-trimpath", "-ldflags=-s -w"}

var variants = []variant{
	{"v2-default", e2eservices.NetHTTPV2, nil, ""},
	// The stripped builds also trim paths: one compile of each module's
	// dependencies serves them and the frameworks services.
	{"v2-stripped-pie-trimpath", e2eservices.NetHTTPV2, strippedFlags, ""},
	{"v1.73-default", e2eservices.NetHTTPV1, nil, ""},
	{"v1.73-stripped-pie-trimpath", e2eservices.NetHTTPV1, strippedFlags, ""},
	{"frameworks-v1.73-stripped-pie-trimpath", e2eservices.FrameworksV1, strippedFlags, ""},
	{"frameworks-v2-stripped-pie-trimpath", e2eservices.FrameworksV2, strippedFlags, ""},
	// The newest Go release: the v2 service plain and in the hardest
	// build, the v1 service in the hardest build only.
	{"go1.27-v2-default", e2eservices.NetHTTPV2, nil, testutil.NewestGo},
	{"go1.27-v2-stripped-pie-trimpath-external", e2eservices.NetHTTPV2, hardFlags, testutil.NewestGo},
	{"go1.27-v1.73-stripped-pie-trimpath-external", e2eservices.NetHTTPV1, hardFlags, testutil.NewestGo},
}

// targetBinary returns the path of v's binary, built once per test run
// (internal/testbuild) and shared by every test that runs it.
func targetBinary(v variant) (string, error) {
	spec, err := e2eservices.Spec(v.svc, v.toolchain, v.flags...)
	if err != nil {
		return "", err
	}
	return testbuild.Path(spec)
}

// prebuildTargets builds vs ahead of the tests that run them one after the
// other, as many at once as testbuild allows; errors surface in
// startTarget.
func prebuildTargets(vs []variant) {
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() { _, _ = targetBinary(v) })
	}
	wg.Wait()
}

// startTarget builds v and runs it with its tracer sending to a fake Agent
// (these tests look at the probes; the proxy's tests look at payloads).
func startTarget(t testing.TB, v variant) *e2eservices.Service {
	t.Helper()
	bin, err := targetBinary(v)
	if err != nil {
		t.Fatalf("build %s: %v", v.name, err)
	}
	agent := e2eservices.NewAgent(t)
	return e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=e2e-"+v.name,
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
}

// recorder keeps the records for each span, as a sink.
type recorder struct {
	mu   sync.Mutex
	recs map[uint64][]origin.Record
	cond *sync.Cond
}

func newRecorder() *recorder {
	r := &recorder{recs: map[uint64][]origin.Record{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) Put(rec origin.Record) {
	r.mu.Lock()
	r.recs[rec.SpanID] = append(r.recs[rec.SpanID], rec)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// origin waits for the records of span and returns the one naming the
// origin: the last in dispatch order.
func (r *recorder) origin(span uint64, wait time.Duration) (origin.Record, int, bool) {
	deadline := time.Now().Add(wait)
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if rs := r.recs[span]; len(rs) > 0 {
			// Records of one span come from one goroutine's nested calls;
			// give the innermost a moment to arrive.
			r.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			r.mu.Lock()
			rs = r.recs[span]
			best := rs[0]
			for _, x := range rs[1:] {
				if x.Seq > best.Seq {
					best = x
				}
			}
			return best, len(rs), true
		}
		if time.Now().After(deadline) {
			return origin.Record{}, 0, false
		}
		go func() { time.Sleep(10 * time.Millisecond); r.cond.Broadcast() }()
		r.cond.Wait()
	}
}

// all returns the records of span received so far.
func (r *recorder) all(span uint64) []origin.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]origin.Record(nil), r.recs[span]...)
}

// dispatchProbed reports whether a route of the frameworks service is
// dispatched by a framework whose recipe reads the route's handler (gin,
// echo, httprouter, fiber), rather than through net/http handlers and their
// middleware, and is not a struct handler behind the framework's adapter.
func dispatchProbed(route string) bool {
	for _, p := range []string{"/gin/", "/echo/", "/httprouter/", "/fiber/"} {
		if strings.HasPrefix(route, p) {
			return !strings.HasSuffix(route, "/struct") && !strings.HasSuffix(route, "/handlerfunc")
		}
	}
	return false
}

func newEngine(t testing.TB, sink origin.Sink) *Engine {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("ORIGINAGENT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	e, err := New(DefaultConfig(), sink, log, nil)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine run: %v", err)
		}
		e.Close()
	})
	return e
}

func processOf(pid int) *discover.Process {
	return &discover.Process{
		PID: pid,
		Exe: fmt.Sprintf("/proc/%d/exe", pid),
		Environ: func() ([]string, error) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				return nil, err
			}
			return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
		},
	}
}

// TestEndToEnd attaches real uprobes to real dd-trace-go services and checks
// that every request's record names the handler the service itself reports,
// under the span the tracer reports.
func TestEndToEnd(t *testing.T) {
	testutil.RequireRoot(t)
	prebuildTargets(variants)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			svc := startTarget(t, v)
			rec := newRecorder()
			e := newEngine(t, rec)
			e.Start(processOf(svc.PID), discover.Decision{Selected: true, Reason: "test"})
			if ps := e.Processes(); len(ps) != 1 {
				t.Fatalf("attached processes = %d, want 1 (see log above)", len(ps))
			}
			checkFastLayouts(t, e, v.svc == e2eservices.NetHTTPV2 || v.svc == e2eservices.FrameworksV2)
			for _, r := range e2eservices.RoutesOf(v.svc) {
				route := r.Path
				for i := 0; i < 3; i++ {
					before, err := e.BPFStats()
					if err != nil {
						t.Fatal(err)
					}
					tr, err := svc.Get(context.Background(), route)
					if err != nil {
						t.Fatal(err)
					}
					// Every probe of the request has fired before its
					// handler answered; only this service is attached.
					after, err := e.BPFStats()
					if err != nil {
						t.Fatal(err)
					}
					if hits := after.Hits - before.Hits; i == 0 {
						t.Logf("%s: %d probe hits, %d under a span", route, hits, after.Emitted-before.Emitted)
						if dispatchProbed(route) && strings.HasPrefix(route, "/echo/") && hits != 1 {
							t.Errorf("%s: %d probe hits, want 1 (echo's route closure)", route, hits)
						}
						// fiber: the net/http adaptor's hit without a span and
						// the one of fiber's dispatch.
						if emitted := after.Emitted - before.Emitted; strings.HasPrefix(route, "/fiber/") && emitted != 1 {
							t.Errorf("%s: %d probe hits under a span, want 1 (fiber's matched route)", route, emitted)
						}
						// v1.73's gin contrib: its c.Next() call only.
						if dispatchProbed(route) && strings.HasPrefix(route, "/gin/") && v.svc == e2eservices.FrameworksV1 && hits != 1 {
							t.Errorf("%s: %d probe hits, want 1 (the gin contrib's c.Next call)", route, hits)
						}
					}
					span, err := strconv.ParseUint(tr.SpanID, 10, 64)
					if err != nil || span == 0 {
						t.Fatalf("%s: service reported no span: %+v", route, tr)
					}
					rec0, n, ok := rec.origin(span, 5*time.Second)
					if !ok {
						st, _ := e.BPFStats()
						t.Fatalf("%s: no record for span %d (trace %s); bpf stats %v", route, span, tr.TraceID, st)
					}
					if got := rec0.TraceID.String(); got != tr.TraceID {
						t.Errorf("%s: trace id %s, want %s", route, got, tr.TraceID)
					}
					f := rec0.Frames[0]
					if !r.Names(tr.Function) {
						t.Errorf("%s: service reports %s, routes table says %s", route, tr.Function, r.Function)
					}
					if f.Function != tr.Function || f.File != tr.File || f.StartLine != tr.Line {
						t.Errorf("%s: origin %s %s:%d, want %s %s:%d (%d records for the span)",
							route, f.Function, f.File, f.StartLine, tr.Function, tr.File, tr.Line, n)
					}
					if dispatchProbed(route) {
						// The framework's own dispatch probe reads the route's
						// handler: every record of the request names it, none
						// a middleware.
						for _, x := range rec.all(span) {
							if x.Frames[0].Function != tr.Function {
								t.Errorf("%s: a record names %s, want only %s", route, x.Frames[0].Function, tr.Function)
							}
						}
					}
					if route == "/mw" && n < 3 {
						t.Errorf("/mw: %d records, want one per user handler in the chain (>= 3)", n)
					}
					if route == "/mw" {
						// The user frames above the handler are the middleware
						// that called it, innermost first.
						want := []string{"withRequestID", "withUser", "countRequests"}
						var got []string
						for _, f := range rec0.Frames[1:] {
							got = append(got, f.Function)
						}
						if !inOrder(got, want) {
							t.Errorf("/mw: caller frames %v, want the middleware %v in that order", got, want)
						}
					}
				}
			}
		})
	}
}

// checkFastLayouts checks that the analysis found the layouts that let the
// probe read every ID at once (without them it falls back to more reads and
// the end-to-end results alone would not show it).
func checkFastLayouts(t *testing.T, e *Engine, v2 bool) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, bs := range e.bins {
		for addr, l := range bs.an.spans {
			if l.Flags&layoutSCIDs == 0 {
				t.Errorf("span type %#x: span context IDs not adjacent in layout %+v", addr, l)
			}
		}
		snap := 0
		for _, n := range bs.an.nodes {
			if n.Kind == nodeSpanCtx && n.Flags&nodeFSnapshot != 0 {
				snap++
			}
		}
		if v2 && snap == 0 {
			t.Errorf("no dd-trace-go v2 span node with its snapshot after the span")
		}
	}
}

// TestEventsDoNotWaitForAttach holds the engine's attach lock, as the
// analysis of a new binary or a burst of process starts does for hundreds of
// milliseconds, and checks that a request's record still arrives: records
// that wait miss their spans, which the tracer flushes meanwhile (found when
// the agent under test also attached to other test packages' services).
func TestEventsDoNotWaitForAttach(t *testing.T) {
	testutil.RequireRoot(t)
	svc := startTarget(t, variants[0])
	rec := newRecorder()
	e := newEngine(t, rec)
	e.Start(processOf(svc.PID), discover.Decision{Selected: true, Reason: "test"})
	if len(e.Processes()) != 1 {
		t.Fatal("not attached (see log above)")
	}
	e.mu.Lock()
	tr, err := svc.Get(context.Background(), "/func")
	if err != nil {
		e.mu.Unlock()
		t.Fatal(err)
	}
	span, _ := strconv.ParseUint(tr.SpanID, 10, 64)
	_, _, ok := rec.origin(span, 2*time.Second)
	status := e.Processes() // the status endpoints must not wait either
	e.mu.Unlock()
	if !ok {
		t.Fatal("no record while an attach held the engine's lock")
	}
	if len(status) != 1 {
		t.Fatalf("status lists %d processes, want 1", len(status))
	}
}

// TestAttachDetachUnderLoad drives a target with concurrent requests while
// engines attach, detach and restart, and checks that every response is
// right: the probes must never change the target's behaviour.
func TestAttachDetachUnderLoad(t *testing.T) {
	testutil.RequireRoot(t)
	svc := startTarget(t, variants[1]) // stripped PIE: the hardest layout
	pid := svc.PID

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, bad int
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				route := e2eservices.Routes[(w+i)%len(e2eservices.Routes)].Path
				tr, err := svc.Get(context.Background(), route)
				if err == nil && (tr.Route != route || tr.Function == "" || tr.SpanID == "") {
					err = fmt.Errorf("%s: unexpected answer %+v", route, tr)
				}
				mu.Lock()
				if err != nil {
					bad++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ok++
				}
				mu.Unlock()
			}
		}(w)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var records int
	var rmu sync.Mutex
	sink := origin.SinkFunc(func(origin.Record) { rmu.Lock(); records++; rmu.Unlock() })
	for round := 0; round < 6; round++ {
		e, err := New(DefaultConfig(), sink, log, nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		e.Start(processOf(pid), discover.Decision{Selected: true})
		if len(e.Processes()) != 1 {
			t.Fatalf("round %d: not attached", round)
		}
		time.Sleep(300 * time.Millisecond)
		if round%2 == 0 {
			e.Exit(pid) // detach, then shut down
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("round %d: run: %v", round, err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("round %d: close: %v", round, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if bad > 0 {
		t.Fatalf("%d of %d requests failed while probes came and went; first: %v", bad, ok+bad, firstErr)
	}
	if ok < 100 {
		t.Fatalf("only %d requests completed", ok)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("target died: %v", err)
	}
	rmu.Lock()
	defer rmu.Unlock()
	if records == 0 {
		t.Fatalf("no records in %d requests", ok)
	}
	t.Logf("%d requests, all correct; %d records", ok, records)
}

// kernelObjectFDs lists this process's file descriptors that hold BPF
// objects, perf events or epoll instances: what the engine opens. Other
// descriptors (the test's HTTP connections) come and go on their own.
func kernelObjectFDs(t testing.TB) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		for _, kind := range []string{"anon_inode:bpf", "anon_inode:[perf_event]", "anon_inode:[eventpoll]", "anon_inode:[eventfd]"} {
			if strings.HasPrefix(target, kind) {
				out = append(out, e.Name()+" -> "+target)
			}
		}
	}
	return out
}

// TestSharedBinaryAndNoLeaks attaches to two processes of one binary (one
// analysis, shared), detaches them one by one, and checks that closing the
// engine leaves no file descriptor behind: links, perf events and maps are
// all released.
func TestSharedBinaryAndNoLeaks(t *testing.T) {
	testutil.RequireRoot(t)
	bin, err := targetBinary(variants[0])
	if err != nil {
		t.Fatal(err)
	}
	agent := e2eservices.NewAgent(t)
	env := []string{"DD_TRACE_AGENT_URL=" + agent.URL, "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false"}
	a := e2eservices.Start(t, bin, env...)
	b := e2eservices.Start(t, bin, env...)
	before := kernelObjectFDs(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := newRecorder()
	e, err := New(DefaultConfig(), rec, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	e.Start(processOf(a.PID), discover.Decision{Selected: true})
	e.Start(processOf(b.PID), discover.Decision{Selected: true})
	if n := len(e.Processes()); n != 2 {
		t.Fatalf("attached %d processes, want 2", n)
	}
	if during := kernelObjectFDs(t); len(during) <= len(before) {
		t.Fatalf("no BPF or perf descriptors while attached: %v", during)
	}
	e.mu.Lock()
	nbins := len(e.bins)
	e.mu.Unlock()
	if nbins != 1 {
		t.Fatalf("%d binary analyses for one binary, want 1", nbins)
	}
	for _, s := range []*e2eservices.Service{a, b} {
		tr, err := s.Get(context.Background(), "/struct")
		if err != nil {
			t.Fatal(err)
		}
		span, _ := strconv.ParseUint(tr.SpanID, 10, 64)
		r, _, ok := rec.origin(span, 5*time.Second)
		if !ok || r.PID != s.PID {
			t.Fatalf("pid %d: record %+v, found %v", s.PID, r, ok)
		}
	}
	e.Exit(a.PID)
	if n := len(e.Processes()); n != 1 {
		t.Fatalf("after one exit: %d processes attached", n)
	}
	e.mu.Lock()
	nbins = len(e.bins)
	e.mu.Unlock()
	if nbins != 1 {
		t.Fatalf("binary analysis dropped while pid %d still uses it", b.PID)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if after := kernelObjectFDs(t); len(after) != len(before) {
		t.Fatalf("BPF, perf and epoll descriptors: %d before the engine, %d after Close:\nbefore %v\nafter %v", len(before), len(after), before, after)
	}
}

// TestSkipsWhatItCannotProbe hands the engine processes it must skip: not
// Go, and Go without a supported tracer. Each is skipped with a reason and
// the engine goes on.
func TestSkipsWhatItCannotProbe(t *testing.T) {
	testutil.RequireRoot(t)
	plainGo := filepath.Join(t.TempDir(), "plain")
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte("package main\nimport (\"net/http\"; \"time\")\nfunc main() { http.HandleFunc(\"/\", func(http.ResponseWriter, *http.Request) {}); time.Sleep(time.Minute) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", plainGo, src).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct{ name, bin string }{
		{"not Go", "/bin/sleep"},
		{"Go without dd-trace-go", plainGo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"60"}
			if tc.bin == plainGo {
				args = nil
			}
			cmd := exec.Command(tc.bin, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			var logs strings.Builder
			e, err := New(DefaultConfig(), newRecorder(), slog.New(slog.NewTextHandler(&logs, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.Start(processOf(cmd.Process.Pid), discover.Decision{Selected: true})
			if n := len(e.Processes()); n != 0 {
				t.Fatalf("attached to %s", tc.bin)
			}
			if !strings.Contains(logs.String(), "skipped process") || strings.Count(logs.String(), "\n") != 1 {
				t.Fatalf("want one 'skipped process' log line, got:\n%s", logs.String())
			}
			t.Log(strings.TrimSpace(logs.String()))
		})
	}
}

// inOrder reports whether each of want is a substring of a distinct element
// of got, in order.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.Contains(g, want[i]) {
			i++
		}
	}
	return i == len(want)
}
