package discover

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProc copies testdata/proc into a temporary directory, turning each
// exe.link file into the exe symlink it describes, and returns its path.
// Tests may change the copy.
func fakeProc(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata/proc", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("testdata/proc", path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "exe.link" {
			return os.Symlink(strings.TrimSpace(string(data)), filepath.Join(filepath.Dir(target), "exe"))
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy fake procfs: %v", err)
	}
	return dst
}

// fakeStat is a /proc/PID/stat line in the kernel's format.
func fakeStat(pid int, comm, state string, flags uint, start uint64) string {
	rest := []string{state, "1", fmt.Sprint(pid), fmt.Sprint(pid), "0", "-1", fmt.Sprint(flags)}
	rest = append(rest, strings.Fields("99 0 0 0 0 0 0 0 20 0 1 0")...)
	rest = append(rest, fmt.Sprint(start), "3133440", "381", "18446744073709551615")
	for range 29 {
		rest = append(rest, "0")
	}
	return fmt.Sprintf("%d (%s) %s\n", pid, comm, strings.Join(rest, " "))
}

// writeFakeProcess creates or replaces /proc/PID in a fake tree.
func writeFakeProcess(t testing.TB, root string, pid int, start uint64, exe string, env ...string) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var environ []byte
	for _, e := range env {
		environ = append(append(environ, e...), 0)
	}
	files := map[string][]byte{
		"stat":    []byte(fakeStat(pid, filepath.Base(exe), "S", 0x400100, start)),
		"environ": environ,
		"cgroup":  []byte("0::/user.slice\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "exe")
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
}

// call is one Handler call seen by a recorder.
type call struct {
	start bool
	pid   int
	exe   string
	p     *Process
	d     Decision
}

func (c call) String() string {
	if c.start {
		return fmt.Sprintf("Start(%d %s)", c.pid, c.exe)
	}
	return fmt.Sprintf("Exit(%d)", c.pid)
}

// recorder is a Handler that records its calls for tests.
type recorder struct {
	mu    sync.Mutex
	calls []call
	added chan struct{} // capacity 1: signals a new call
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1)} }

func (r *recorder) Start(p *Process, d Decision) {
	r.add(call{start: true, pid: p.PID, exe: p.Exe, p: p, d: d})
}

func (r *recorder) Exit(pid int) { r.add(call{pid: pid}) }

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

// take returns and clears the recorded calls.
func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// forPID returns the recorded calls about pid, in order.
func (r *recorder) forPID(pid int) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.pid == pid {
			out = append(out, c)
		}
	}
	return out
}

// wait returns the first call matching match, failing t after timeout.
func (r *recorder) wait(t testing.TB, timeout time.Duration, what string, match func(call) bool) call {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		i := slices.IndexFunc(r.calls, match)
		var c call
		if i >= 0 {
			c = r.calls[i]
		}
		r.mu.Unlock()
		if i >= 0 {
			return c
		}
		select {
		case <-r.added:
		case <-deadline.C:
			t.Fatalf("no %s within %v; calls: %v", what, timeout, r.take())
			return call{}
		}
	}
}

// strs formats calls for comparison.
func strs(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.String()
	}
	return out
}

// runWatcher runs w.Run(ctx, h) in a goroutine. The returned function
// cancels it and fails t if Run returned an error; it is also registered as
// a cleanup.
func runWatcher(t testing.TB, w *Watcher, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func itoa(i int) string { return strconv.Itoa(i) }
