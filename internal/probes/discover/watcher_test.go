package discover

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rootutil "github.com/originagent/originagent/internal/testutil"
)

// The tests in this file run the Watcher against the real kernel: BPF raw
// tracepoints, real child processes, real namespaces.

// startWithEvents starts a Watcher on the host's /proc and fails t unless
// the BPF exec/exit events are really in use (the poll fallback would make
// the timing assertions meaningless).
func startWithEvents(t *testing.T, sel Selector) (*Watcher, *recorder) {
	t.Helper()
	rootutil.RequireRoot(t)
	// A rescan period longer than any test: only events can pass.
	w, err := New(Config{Rescan: time.Hour, Poll: time.Hour}, sel, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runWatcher(t, w, rec)
	return w, rec
}

// spawn starts name with args and the extra environment, and kills and
// reaps it at cleanup.
func spawn(t *testing.T, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// Within is the discovery deadline the probe engine promises: probes on a new
// opted-in process within 1 s of its exec.
const within = time.Second

func TestWatcherFollowsExecAndExit(t *testing.T) {
	var asked sync.Map // pid -> Decision
	w, rec := startWithEvents(t, SelectorFunc(func(p *Process) Decision {
		d := OptInSelector().Select(p)
		asked.Store(p.PID, d)
		return d
	}))
	// Run has scanned once Start of an already running process arrives;
	// start the children only after that so that only events can find them.
	waitScanned(t, w)

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleep, err = filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	plain := spawn(t, []string{"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=false"}, sleep, "30")
	t0 := time.Now()
	opted := spawn(t, []string{"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true"}, sleep, "30")

	c := rec.wait(t, within, "Start of the opted-in child", func(c call) bool { return c.start && c.pid == opted.Process.Pid })
	t.Logf("Start %v after the child's exec", time.Since(t0))
	if c.exe != sleep {
		t.Errorf("Exe %q, want %q", c.exe, sleep)
	}
	if c.p.StartTime == 0 || !strings.Contains(c.d.Reason, "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true") {
		t.Errorf("Process %+v, Decision %+v", c.p, c.d)
	}
	if testutil.ToFloat64(w.m.execEvents) < 2 {
		t.Errorf("exec_events_total = %v, want >= 2", testutil.ToFloat64(w.m.execEvents))
	}

	// The plain child exec'd first, so its event was handled already.
	if got := rec.forPID(plain.Process.Pid); len(got) != 0 {
		t.Errorf("calls for a child without opt-in: %v", got)
	}
	if d, ok := asked.Load(plain.Process.Pid); !ok {
		t.Error("the selector was never asked about the child without opt-in")
	} else if d.(Decision).Reason != "env DD_CODE_ORIGIN_FOR_SPANS_ENABLED=false" {
		t.Errorf("decision for the child without opt-in: %+v", d)
	}

	// Observed once Handler.Start has returned, so maybe just after the
	// recorder saw the call.
	for deadline := time.Now().Add(10 * time.Second); latencySamples(t, w) < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("exec_to_start_seconds has no sample")
		}
	}

	if err := opted.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = opted.Wait()
	rec.wait(t, within, "Exit of the opted-in child", func(c call) bool { return !c.start && c.pid == opted.Process.Pid })
	if got := strs(rec.forPID(opted.Process.Pid)); len(got) != 2 {
		t.Errorf("calls for the opted-in child %q, want one Start and one Exit", got)
	}
}

// waitScanned waits until Run's first scan is done.
func waitScanned(t *testing.T, w *Watcher) {
	t.Helper()
	waitMetric(t, w.m.rescans, 1)
}

// waitMetric waits until c reaches at least min.
func waitMetric(t *testing.T, c prometheus.Collector, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(c) < min {
		if time.Now().After(deadline) {
			t.Fatalf("metric stayed at %v, want >= %v", testutil.ToFloat64(c), min)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatcherExecOfKnownPID(t *testing.T) {
	w, rec := startWithEvents(t, OptInSelector())
	waitScanned(t, w)

	// sh waits for a line on stdin, then execs sleep in the same process.
	cmd := exec.Command("sh", "-c", "read line; exec sleep 30")
	cmd.Env = append(os.Environ(), "DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	first := rec.wait(t, within, "Start of sh", func(c call) bool { return c.start && c.pid == pid })
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	second := rec.wait(t, within, "Start of the exec'd image", func(c call) bool {
		return c.start && c.pid == pid && c.exe != first.exe
	})
	if filepath.Base(second.exe) != "sleep" || second.p.StartTime != first.p.StartTime {
		t.Errorf("after exec: Exe %q StartTime %d, want sleep with the unchanged start time %d", second.exe, second.p.StartTime, first.p.StartTime)
	}
	if got := strs(rec.forPID(pid)); len(got) != 3 || got[1] != "Exit("+itoa(pid)+")" {
		t.Errorf("calls %q, want Start(sh), Exit, Start(sleep)", got)
	}
}

// TestWatcherOtherNamespaces: a process in its own PID and mount namespaces
// (made with unshare) runs a binary that exists only on a tmpfs mounted in
// its namespace. It is found, opted in, and its binary is readable from the
// host through BinaryPath and RootPath.
func TestWatcherOtherNamespaces(t *testing.T) {
	w, rec := startWithEvents(t, OptInSelector())
	waitScanned(t, w)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(mnt, "app")
	script := `mount -t tmpfs tmpfs "$1" && cp "$2" "$1/app" && exec env DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true "$1/app" 30`
	cmd := spawn(t, nil, "unshare", "--pid", "--mount", "--fork", "--kill-child", "--propagation", "private",
		"sh", "-c", script, "sh", mnt, sleep)

	c := rec.wait(t, 5*within, "Start of the namespaced process", func(c call) bool { return c.start && c.exe == prog })
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	if _, err := os.Stat(prog); !os.IsNotExist(err) {
		t.Fatalf("%s is visible on the host (err %v): the test would prove nothing", prog, err)
	}
	for _, ns := range []string{"pid", "mnt"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		its, err := os.Readlink(filepath.Join(DefaultProcRoot, itoa(c.pid), "ns", ns))
		if err != nil || its == host {
			t.Errorf("process %d %s namespace %q (err %v), host %q: want a different one", c.pid, ns, its, err, host)
		}
	}
	for _, path := range []string{c.p.BinaryPath(), filepath.Join(c.p.RootPath(), c.p.Exe)} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read the binary from the host: %v", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, differ from %s (%d bytes)", path, len(got), sleep, len(want))
		}
	}

	// Killing unshare kills its child (--kill-child), PID 1 of the namespace.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	rec.wait(t, within, "Exit of the namespaced process", func(c2 call) bool { return !c2.start && c2.pid == c.pid })
}

// TestWatcherSkipsSelfAndKernelThreads selects everything on the real /proc:
// the agent's own process and kernel threads are still never started.
func TestWatcherSkipsSelfAndKernelThreads(t *testing.T) {
	rootutil.RequireRoot(t)
	all := SelectorFunc(func(p *Process) Decision { return Decision{Selected: true, Reason: "all"} })
	w, err := New(Config{Rescan: time.Hour}, all, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	r := &run{w: w, h: rec, known: make(map[int]*instance)}
	child := spawn(t, nil, "sleep", "30")
	r.scan()
	if got := rec.forPID(child.Process.Pid); len(got) != 1 {
		t.Errorf("calls for a running child %v, want one Start", got)
	}
	if got := rec.forPID(os.Getpid()); len(got) != 0 {
		t.Errorf("the agent's own process was started: %v", got)
	}
	if got := rec.forPID(2); len(got) != 0 { // kthreadd
		t.Errorf("a kernel thread was started: %v", got)
	}
	r.exitAll()
}

// TestWatcherRecoversLostEvents overflows a deliberately small ring buffer
// while the handler is busy: the loss is counted and the opted-in process
// whose exec event was dropped is still started, by the rescan the loss
// triggers.
func TestWatcherRecoversLostEvents(t *testing.T) {
	rootutil.RequireRoot(t)
	w, err := New(Config{Rescan: time.Hour, Poll: time.Hour}, OptInSelector(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.ringSize = 4096 // one page: 128 records
	w.eventsCap = 1

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	blocker := copyFile(t, sleep, filepath.Join(t.TempDir(), "blocker"))
	gate, blocked := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	runWatcher(t, w, HandlerFuncs{
		StartFunc: func(p *Process, d Decision) {
			if p.Exe == blocker {
				close(blocked)
				<-gate // a slow handler: events pile up meanwhile
			}
			rec.Start(p, d)
		},
		ExitFunc: rec.Exit,
	})
	waitScanned(t, w)

	optIn := []string{"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true"}
	spawn(t, optIn, blocker, "30")
	select {
	case <-blocked:
	case <-time.After(5 * within):
		close(gate)
		t.Fatal("the blocking process was not started")
	}
	// 600 execs and exits: several times what the ring buffer holds.
	storm := exec.Command("sh", "-c", "i=0; while [ $i -lt 600 ]; do true; /bin/true; i=$((i+1)); done")
	if out, err := storm.CombinedOutput(); err != nil {
		close(gate)
		t.Fatalf("exec storm: %v: %s", err, out)
	}
	late := spawn(t, optIn, sleep, "30")
	close(gate)

	rec.wait(t, 5*within, "Start of the process whose exec was lost", func(c call) bool { return c.start && c.pid == late.Process.Pid })
	// The loss is counted when the watcher polls the BPF counter, which
	// may come after the Start its rescan produced.
	waitMetric(t, w.m.lost, 1)
	// The Start came from the rescan, which counts itself when done.
	waitMetric(t, w.m.rescans, 2)
}

// copyFile copies an executable to dst and returns dst.
func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// latencySamples returns the sample count of exec_to_start_seconds.
func latencySamples(t *testing.T, w *Watcher) uint64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(w.m.latency)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "originagent_discover_exec_to_start_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("exec_to_start_seconds not gathered")
	return 0
}

// TestWatcherFallsBackToPolling makes the BPF load fail (a ring buffer size
// the kernel refuses) and checks that the Watcher says so once and still
// finds a new opted-in process by polling /proc. Root is not needed: without
// it the load fails anyway.
func TestWatcherFallsBackToPolling(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := New(Config{Rescan: time.Hour, Poll: 20 * time.Millisecond}, OptInSelector(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.ringSize = 3 // not a power of two: the map cannot be created
	rec := newRecorder()
	runWatcher(t, w, rec)
	waitScanned(t, w)

	child := spawn(t, []string{OptInEnv + "=true"}, "sleep", "30")
	rec.wait(t, 5*time.Second, "Start found by polling", func(c call) bool { return c.start && c.pid == child.Process.Pid })
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	rec.wait(t, 5*time.Second, "Exit found by polling", func(c call) bool { return !c.start && c.pid == child.Process.Pid })

	out := logs.String()
	if n := strings.Count(out, "exec/exit events unavailable, polling /proc instead"); n != 1 {
		t.Errorf("fallback warning logged %d times, want once; logs:\n%s", n, out)
	}
	if testutil.ToFloat64(w.m.execEvents) != 0 {
		t.Error("exec events counted although BPF was not loaded")
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
