package symbolize

import (
	"debug/elf"
	"debug/gosym"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU measures the CPU time of the benchmark's thread: on a shared
// machine wall time includes time spent descheduled, thread CPU time does
// not. It reports cpu-ns/op next to ns/op.
type threadCPU struct {
	b     *testing.B
	start int64
}

func startCPU(b *testing.B) *threadCPU {
	runtime.LockOSThread()
	return &threadCPU{b: b, start: cpuNow()}
}

func (c *threadCPU) stop() {
	d := cpuNow() - c.start
	runtime.UnlockOSThread()
	c.b.ReportMetric(float64(d)/float64(c.b.N), "cpu-ns/op")
}

func cpuNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// The benchmarks use the go command of the local toolchain, a large Go
// binary (about 15k functions), and compare with debug/gosym in the same run.

func goCommand(b *testing.B) string {
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// benchPCs returns a spread of addresses inside functions: the middle of
// every function, at most n.
func benchPCs(b *testing.B, bin *Binary, n int) []uint64 {
	var all []uint64
	for f := range bin.Funcs() {
		all = append(all, f.Entry+(f.End-f.Entry)/2)
	}
	step := max(len(all)/n, 1)
	var pcs []uint64
	for i := 0; i < len(all) && len(pcs) < n; i += step {
		pcs = append(pcs, all[i])
	}
	return pcs
}

func BenchmarkOpen(b *testing.B) {
	path := goCommand(b)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	keep, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	retained := float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)
	runtime.KeepAlive(keep)
	b.ReportAllocs()
	c := startCPU(b)
	for b.Loop() {
		if _, err := Open(path, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	c.stop()
	// Reported after the loop: b.Loop resets metrics reported before it.
	b.ReportMetric(retained, "retained-B")
	b.ReportMetric(float64(keep.Info().PclntabSize), "pclntab-B")
	b.ReportMetric(float64(keep.Info().Funcs), "funcs")
}

func gosymTable(b *testing.B) (*gosym.Table, []byte) {
	f, err := elf.Open(goCommand(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pcln, err := f.Section(".gopclntab").Data()
	if err != nil {
		b.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, f.Section(".text").Addr))
	if err != nil {
		b.Fatal(err)
	}
	return tab, pcln
}

func BenchmarkGosymNewTable(b *testing.B) {
	f, err := elf.Open(goCommand(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pcln, err := f.Section(".gopclntab").Data()
	if err != nil {
		b.Fatal(err)
	}
	text := f.Section(".text").Addr
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	keep, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	retained := float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)
	runtime.KeepAlive(keep)
	b.ReportAllocs()
	c := startCPU(b)
	for b.Loop() {
		if _, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text)); err != nil {
			b.Fatal(err)
		}
	}
	c.stop()
	b.ReportMetric(retained, "retained-B")
}

func BenchmarkLookupUncached(b *testing.B) {
	bin, err := Open(goCommand(b), Options{PCCacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	pcs := benchPCs(b, bin, 4096)
	inlined := 0
	for _, pc := range pcs { // also warms the name and file intern tables
		fr, err := bin.Lookup(pc, false)
		if err != nil {
			b.Fatal(err)
		}
		inlined += len(fr) - 1
	}
	b.ReportAllocs()
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		if _, err := bin.Lookup(pcs[i%len(pcs)], false); err != nil {
			b.Fatal(err)
		}
	}
	c.stop()
	b.ReportMetric(float64(inlined)/float64(len(pcs)), "inlined-frames/op")
}

func BenchmarkGosymPCToLine(b *testing.B) {
	bin, err := Open(goCommand(b), Options{PCCacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	pcs := benchPCs(b, bin, 4096)
	tab, _ := gosymTable(b)
	b.ReportAllocs()
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		if _, _, fn := tab.PCToLine(pcs[i%len(pcs)]); fn == nil {
			b.Fatal("no function")
		}
	}
	c.stop()
}

func BenchmarkLookupCached(b *testing.B) {
	bin, err := Open(goCommand(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	pcs := benchPCs(b, bin, 256)
	for _, pc := range pcs {
		bin.Lookup(pc, false)
	}
	b.ReportAllocs()
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		if _, err := bin.Lookup(pcs[i%len(pcs)], false); err != nil {
			b.Fatal(err)
		}
	}
	c.stop()
}

func BenchmarkFunc(b *testing.B) {
	bin, err := Open(goCommand(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := startCPU(b)
	for b.Loop() {
		if _, ok := bin.Func("main.main"); !ok {
			b.Fatal("no main.main")
		}
	}
	c.stop()
}

func BenchmarkAppendLookup(b *testing.B) {
	bin, err := Open(goCommand(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	pcs := benchPCs(b, bin, 4096)
	buf := make([]Frame, 0, 16)
	for _, pc := range pcs {
		if buf, err = bin.AppendLookup(buf[:0], pc, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	c := startCPU(b)
	for i := 0; b.Loop(); i++ {
		buf, _ = bin.AppendLookup(buf[:0], pcs[i%len(pcs)], false)
	}
	c.stop()
}
