package discover

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	rootutil "github.com/originagent/originagent/internal/testutil"
)

// BenchmarkStat compares reading /proc/self/stat with procfs and with
// parseStat, which the rescan calls for every process.
func BenchmarkStat(b *testing.B) {
	pid := os.Getpid()
	b.Run("procfs", func(b *testing.B) {
		fs, err := procfs.NewFS(DefaultProcRoot)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			p, err := fs.Proc(pid)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Stat(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("discover", func(b *testing.B) {
		rd, err := newProcReader(DefaultProcRoot)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := rd.stat(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScan measures a full /proc scan of this machine with the opt-in
// selector: "first" evaluates every process (the start-up scan), "rescan"
// re-checks known ones (the safety net, and the cost of polling without
// BPF). It reports the cost per process.
func BenchmarkScan(b *testing.B) {
	rootutil.RequireRoot(b)
	w, err := New(Config{}, OptInSelector(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	procs, err := w.rd.fs.AllProcs()
	if err != nil {
		b.Fatal(err)
	}
	n := float64(len(procs))
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			r := &run{w: w, h: HandlerFuncs{}, known: make(map[int]*instance)}
			r.scan()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/process")
		b.ReportMetric(n, "processes")
	})
	b.Run("rescan", func(b *testing.B) {
		r := &run{w: w, h: HandlerFuncs{}, known: make(map[int]*instance)}
		r.scan()
		for b.Loop() {
			r.scan()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/process")
	})
}

// BenchmarkProceventsPrograms reports the kernel's own accounting (BPF run
// time statistics) of the exec and exit programs while b.N processes run
// /bin/true. Both programs also run for every other exec and thread exit on
// the machine. Run it with -benchtime=300x: each iteration is a real
// fork+exec.
func BenchmarkProceventsPrograms(b *testing.B) {
	rootutil.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	pe, err := openProcEvents(0)
	if err != nil {
		b.Fatal(err)
	}
	defer pe.Close()
	// Drain the ring buffer so that the programs never take the loss path.
	done := make(chan struct{})
	out := make(chan event, 64)
	readErr := make(chan error, 1)
	go func() { readErr <- pe.read(out, done, func(error) {}) }()
	go func() {
		for {
			select {
			case <-out:
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		pe.Close()
		<-readErr
	}()
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := exec.Command(truePath).Run(); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{{"exec", pe.objs.ProceventsExec}, {"exit", pe.objs.ProceventsExit}} {
		s, err := p.prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if s.RunCount == 0 {
			b.Fatalf("%s program never ran", p.name)
		}
		b.ReportMetric(float64(s.Runtime.Nanoseconds())/float64(s.RunCount), p.name+"-ns/run")
		b.ReportMetric(float64(s.RunCount)/float64(b.N), p.name+"-runs/op")
	}
}

// BenchmarkExecToStart measures how long after cmd.Start the Watcher calls
// Start for an opted-in process. The interval includes fork and exec, so it
// bounds the exec-to-Start latency from above. Each spawn waits a random
// part of the reader's poll period first, so that spawns do not lock onto
// its phase. Run it with -benchtime=100x.
func BenchmarkExecToStart(b *testing.B) {
	rootutil.RequireRoot(b)
	w, err := New(Config{Rescan: time.Hour}, OptInSelector(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	started := make(chan int, 16)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- w.Run(ctx, HandlerFuncs{StartFunc: func(p *Process, d Decision) { started <- p.PID }})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Fatal(err)
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	env := append(os.Environ(), OptInEnv+"=true")
	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		time.Sleep(rand.N(pollEvery))
		b.StartTimer()
		cmd := exec.Command(sleep, "10")
		cmd.Env = env
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for pid := range started {
			if pid == cmd.Process.Pid {
				break
			}
		}
		lat = append(lat, time.Since(t0))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
