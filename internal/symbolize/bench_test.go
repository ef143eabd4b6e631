package symbolize

import (
	"debug/elf"
	"debug/gosym"
	"path/filepath"
	"runtime"
	"testing"
)

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
	b.ReportMetric(float64(ms1.HeapAlloc)-float64(ms0.HeapAlloc), "retained-B")
	b.ReportMetric(float64(keep.Info().PclntabSize), "pclntab-B")
	b.ReportMetric(float64(keep.Info().Funcs), "funcs")
	runtime.KeepAlive(keep)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(path, Options{}); err != nil {
			b.Fatal(err)
		}
	}
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
	b.ReportMetric(float64(ms1.HeapAlloc)-float64(ms0.HeapAlloc), "retained-B")
	runtime.KeepAlive(keep)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text)); err != nil {
			b.Fatal(err)
		}
	}
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
	b.ReportMetric(float64(inlined)/float64(len(pcs)), "inlined-frames/op")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := bin.Lookup(pcs[i%len(pcs)], false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGosymPCToLine(b *testing.B) {
	bin, err := Open(goCommand(b), Options{PCCacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	pcs := benchPCs(b, bin, 4096)
	tab, _ := gosymTable(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, fn := tab.PCToLine(pcs[i%len(pcs)]); fn == nil {
			b.Fatal("no function")
		}
	}
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
	for i := 0; b.Loop(); i++ {
		if _, err := bin.Lookup(pcs[i%len(pcs)], false); err != nil {
			b.Fatal(err)
		}
	}
}
