package discover

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The tests in this file drive Run's state machine (scan, events, retries,
// re-evaluation) synchronously over a fake procfs tree, so that every
// ordering is exact. The kernel side is covered by watcher_test.go.

// newTestRun returns a run over a fresh copy of testdata/proc.
func newTestRun(t *testing.T, sel Selector, self int) (*run, *recorder, string) {
	t.Helper()
	root := fakeProc(t)
	w, err := New(Config{ProcRoot: root, SelfPID: self}, sel, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	r := &run{w: w, h: rec, known: make(map[int]*instance)}
	t.Cleanup(func() {
		if r.timer != nil {
			r.timer.Stop()
		}
	})
	return r, rec, root
}

// execEvent is what bpf/procevents.c sends for an exec at this moment.
func execEvent(pid int, start uint64) event {
	return event{ktimeNS: uint64(monotonicNS()), startTime: start, typ: eventExec, pid: pid}
}

func exitEvent(pid int, start uint64) event {
	return event{ktimeNS: uint64(monotonicNS()), startTime: start, typ: eventExit, pid: pid}
}

func TestRunScanSelects(t *testing.T) {
	var asked []int
	sel := SelectorFunc(func(p *Process) Decision {
		asked = append(asked, p.PID)
		return OptInSelector().Select(p)
	})
	r, rec, _ := newTestRun(t, sel, 1)
	r.scan()
	want := []string{
		"Start(100 /app/bin/api-server)", "Start(101 /usr/local/bin/one)", "Start(103 /usr/local/bin/upper)",
		"Start(107 /srv/old-api (deleted))", "Start(109 /opt/my app/bin/app)",
	}
	got := strs(rec.take())
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("scan started %q, want %q", got, want)
	}
	slices.Sort(asked)
	// Not asked: 1 (self), 2 (kernel thread), 106 (zombie).
	if wantAsked := []int{100, 101, 102, 103, 104, 105, 107, 108, 109}; !slices.Equal(asked, wantAsked) {
		t.Errorf("selector asked about %v, want %v", asked, wantAsked)
	}
	if v := testutil.ToFloat64(r.w.m.vanished); v != 1 {
		t.Errorf("vanished = %v, want 1 (the zombie)", v)
	}
	if v := testutil.ToFloat64(r.w.m.started); v != 5 {
		t.Errorf("processes_started = %v, want 5", v)
	}

	// A second scan of an unchanged tree changes nothing and asks nobody.
	asked = nil
	r.scan()
	if c := rec.take(); len(c) != 0 || len(asked) != 0 {
		t.Errorf("rescan of an unchanged tree: calls %v, selector asked about %v", c, asked)
	}

	r.exitAll()
	got = strs(rec.take())
	if want := []string{"Exit(100)", "Exit(101)", "Exit(103)", "Exit(107)", "Exit(109)"}; !slices.Equal(got, want) {
		t.Errorf("exitAll: %q, want %q", got, want)
	}
	if v := testutil.ToFloat64(r.w.m.started); v != 0 {
		t.Errorf("processes_started after exitAll = %v, want 0", v)
	}
}

func TestRunEvents(t *testing.T) {
	const (
		pid   = 500
		start = 7000
	)
	optIn := "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true"
	tests := []struct {
		name string
		// before is applied to the tree before the initial scan; step
		// after it, then the calls step makes are compared with want.
		before func(t *testing.T, root string)
		step   func(t *testing.T, r *run, root string)
		want   []string
	}{{
		name: "exec of a new process",
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start, "/srv/app", optIn)
			r.event(execEvent(pid, start))
		},
		want: []string{"Start(500 /srv/app)"},
	}, {
		name: "exec without opt-in",
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start, "/srv/app", "PATH=/bin")
			r.event(execEvent(pid, start))
		},
	}, {
		name:   "exit of a started process",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/app", optIn) },
		step: func(t *testing.T, r *run, root string) {
			r.event(exitEvent(pid, start))
			r.event(exitEvent(pid, start)) // a duplicate is ignored
		},
		want: []string{"Exit(500)"},
	}, {
		name:   "exit of an older instance of a reused PID",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/app", optIn) },
		step:   func(t *testing.T, r *run, root string) { r.event(exitEvent(pid, start-1)) },
	}, {
		name:   "known PID execs a new image",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/bin/sh", optIn) },
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start, "/srv/app", optIn) // exec keeps the start time
			r.event(execEvent(pid, start))
		},
		want: []string{"Exit(500)", "Start(500 /srv/app)"},
	}, {
		name:   "known PID execs an image that does not opt in",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/bin/sh", optIn) },
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start, "/srv/app", "PATH=/bin")
			r.event(execEvent(pid, start))
		},
		want: []string{"Exit(500)"},
	}, {
		name:   "exec already seen by the scan",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/app", optIn) },
		step: func(t *testing.T, r *run, root string) {
			// The event was emitted before the scan read the process.
			ev := execEvent(pid, start)
			ev.ktimeNS = uint64(r.known[pid].readNS - 1)
			r.event(ev)
		},
	}, {
		name:   "exec of a reused PID whose exit was lost",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/old", optIn) },
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start+50, "/srv/new", optIn)
			r.event(execEvent(pid, start+50))
		},
		want: []string{"Exit(500)", "Start(500 /srv/new)"},
	}, {
		name: "process vanished before it was read",
		step: func(t *testing.T, r *run, root string) {
			r.event(execEvent(pid, start))
			if v := testutil.ToFloat64(r.w.m.vanished); v != 2 { // + the zombie in testdata
				t.Errorf("vanished = %v, want 2", v)
			}
		},
	}, {
		name:   "rescan finds a reused PID",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/app", optIn) },
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start+1, "/srv/app", optIn)
			r.scan()
		},
		want: []string{"Exit(500)", "Start(500 /srv/app)"},
	}, {
		name:   "rescan finds an exec the events missed",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/bin/sh", optIn) },
		step: func(t *testing.T, r *run, root string) {
			writeFakeProcess(t, root, pid, start, "/srv/app", optIn)
			r.scan()
		},
		want: []string{"Exit(500)", "Start(500 /srv/app)"},
	}, {
		name:   "rescan finds an exit the events missed",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, pid, start, "/srv/app", optIn) },
		step: func(t *testing.T, r *run, root string) {
			if err := os.RemoveAll(filepath.Join(root, strconv.Itoa(pid))); err != nil {
				t.Fatal(err)
			}
			r.scan()
		},
		want: []string{"Exit(500)"},
	}, {
		name:   "the agent's own PID",
		before: func(t *testing.T, root string) { writeFakeProcess(t, root, 1, 2, "/originagent", optIn) },
		step: func(t *testing.T, r *run, root string) {
			r.event(execEvent(1, 2))
			r.scan()
		},
	}, {
		name: "kernel thread exec event",
		step: func(t *testing.T, r *run, root string) { r.event(execEvent(2, 2)) },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rec, root := newTestRun(t, OptInSelector(), 1)
			if tt.before != nil {
				tt.before(t, root)
			}
			r.scan()
			rec.take()
			tt.step(t, r, root)
			if got := strs(rec.take()); !slices.Equal(got, tt.want) {
				t.Errorf("calls %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunEnvRetryAfterExec(t *testing.T) {
	r, rec, root := newTestRun(t, OptInSelector(), 1)
	r.scan()
	rec.take()

	// Right after exec the environment reads back empty ...
	writeFakeProcess(t, root, 600, 9000, "/srv/app")
	r.event(execEvent(600, 9000))
	if len(r.pending) != 1 {
		t.Fatalf("pending retries %d, want 1", len(r.pending))
	}
	// ... and is there at the retry.
	writeFakeProcess(t, root, 600, 9000, "/srv/app", "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true")
	<-r.retryTimerC()
	r.retries()
	if got, want := strs(rec.take()), []string{"Start(600 /srv/app)"}; !slices.Equal(got, want) {
		t.Errorf("after retry: %q, want %q", got, want)
	}

	// A process that really has an empty environment is retried a bounded
	// number of times, then left alone.
	writeFakeProcess(t, root, 601, 9001, "/srv/env-i")
	r.event(execEvent(601, 9001))
	retries := 0
	for len(r.pending) > 0 {
		<-r.retryTimerC()
		r.retries()
		retries++
	}
	if retries != envRetries {
		t.Errorf("retried %d times, want %d", retries, envRetries)
	}
	if c := rec.take(); len(c) != 0 {
		t.Errorf("calls for a process with an empty environment: %v", c)
	}
	if r.known[601] == nil || r.known[601].started {
		t.Errorf("process 601 not remembered as not selected: %+v", r.known[601])
	}
}

func TestRunReevaluate(t *testing.T) {
	var on atomic.Bool
	sel := SelectorFunc(func(p *Process) Decision {
		if p.Exe == "/srv/app" && on.Load() {
			return Decision{Selected: true, Reason: "pod label", Labels: map[string]string{"pod": "shop-1"}}
		}
		return Decision{Reason: "no pod label"}
	})
	r, rec, root := newTestRun(t, sel, 1)
	writeFakeProcess(t, root, 700, 9100, "/srv/app")
	r.scan()
	if c := rec.take(); len(c) != 0 {
		t.Fatalf("started before the label: %v", c)
	}

	on.Store(true)
	r.w.Reevaluate(700)
	r.w.Reevaluate(12345) // unknown: ignored
	<-r.w.reqC
	pids, all := r.w.takeRequests()
	r.reevaluate(pids, all)
	calls := rec.take()
	if got, want := strs(calls), []string{"Start(700 /srv/app)"}; !slices.Equal(got, want) {
		t.Fatalf("after label: %q, want %q", got, want)
	}
	if calls[0].d.Labels["pod"] != "shop-1" {
		t.Errorf("decision labels %v, want pod=shop-1", calls[0].d.Labels)
	}

	// Selected already: asking again starts nothing twice.
	r.w.ReevaluateAll()
	<-r.w.reqC
	pids, all = r.w.takeRequests()
	r.reevaluate(pids, all)
	if c := rec.take(); len(c) != 0 {
		t.Errorf("re-evaluating a selected process: %v", c)
	}

	on.Store(false)
	r.w.ReevaluateAll()
	<-r.w.reqC
	pids, all = r.w.takeRequests()
	r.reevaluate(pids, all)
	if got, want := strs(rec.take()), []string{"Exit(700)"}; !slices.Equal(got, want) {
		t.Errorf("after the label went away: %q, want %q", got, want)
	}
	r.exitAll()
	if c := rec.take(); len(c) != 0 {
		t.Errorf("exitAll after Exit: %v", c)
	}
}

// TestRunPolling runs the Watcher end to end without BPF over a fake tree
// that the test changes while Run polls it.
func TestRunPolling(t *testing.T) {
	root := fakeProc(t)
	w, err := New(Config{ProcRoot: root, NoEvents: true, Poll: 10 * time.Millisecond, SelfPID: 1}, OptInSelector(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	done := runWatcher(t, w, rec)

	rec.wait(t, 5*time.Second, "initial Start of 100", func(c call) bool { return c.start && c.pid == 100 })
	writeFakeProcess(t, root, 800, 9200, "/srv/app", "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=1")
	rec.wait(t, 5*time.Second, "Start of 800", func(c call) bool { return c.start && c.pid == 800 })
	if err := os.RemoveAll(filepath.Join(root, "800")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 5*time.Second, "Exit of 800", func(c call) bool { return !c.start && c.pid == 800 })
	done()
	if got := strs(rec.forPID(100)); !slices.Equal(got, []string{"Start(100 /app/bin/api-server)", "Exit(100)"}) {
		t.Errorf("pid 100 calls %q: want Start then Exit when Run returns", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New accepted a nil selector")
	}
	if _, err := New(Config{ProcRoot: filepath.Join(t.TempDir(), "missing")}, OptInSelector(), nil, nil); err == nil {
		t.Error("New accepted a missing ProcRoot")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, OptInSelector(), nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, OptInSelector(), nil, reg); err == nil {
		t.Error("second New on one registry did not report the duplicate metrics")
	}
}

// TestRunUnreadableEnvironment: an environment that cannot be read for a
// reason other than exit (here a directory in its place; on a real host a
// missing CAP_SYS_PTRACE) is counted and logged once per instance, not
// taken as "not opted in" in silence.
func TestRunUnreadableEnvironment(t *testing.T) {
	r, rec, root := newTestRun(t, OptInSelector(), 1)
	writeFakeProcess(t, root, 900, 9300, "/srv/app", "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true")
	environ := filepath.Join(root, "900", "environ")
	if err := os.Remove(environ); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(environ, 0o755); err != nil {
		t.Fatal(err)
	}
	r.scan()
	r.scan()
	if got := rec.forPID(900); len(got) != 0 {
		t.Errorf("calls for a process whose environment cannot be read: %v", got)
	}
	if v := testutil.ToFloat64(r.w.m.readErrors); v != 1 {
		t.Errorf("read_errors_total = %v, want 1", v)
	}
}
