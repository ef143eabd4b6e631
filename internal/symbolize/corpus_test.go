package symbolize

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/originagent/originagent/internal/testutil"
)

// The corpus program testdata/symbolize/shop is built by the tests with the
// local toolchain in every variant people ship, and with the newest Go
// release (testutil.NewestGo) in the plainest and the most demanding
// variants, and run with -truth: it answers addresses of its own binary
// with runtime.CallersFrames, the ground truth these tests compare Lookup
// against.

// variant is one way to build the corpus program.
type variant struct {
	name      string
	args      []string // go build flags
	strip     bool     // run GNU strip on the result
	cgo       bool     // needs gcc
	toolchain string   // Go version to build with; "" for the local one
}

var variants = []variant{
	{name: "default"},
	{name: "sw", args: []string{"-ldflags=-s -w"}},
	{name: "pie", args: []string{"-buildmode=pie"}},
	{name: "trimpath", args: []string{"-trimpath"}},
	{name: "external", args: []string{"-ldflags=-linkmode=external"}, cgo: true},
	{name: "strip", strip: true},
	{name: "pie-external-sw", args: []string{"-buildmode=pie", "-ldflags=-linkmode=external -s -w"}, cgo: true},
	// The newest release: its plainest build and its hardest one (every
	// other variant combined), rather than every variant again.
	{name: "go1.27-default", toolchain: testutil.NewestGo},
	{name: "go1.27-pie-external-sw-trimpath-strip", args: []string{"-buildmode=pie", "-trimpath", "-ldflags=-linkmode=external -s -w"},
		strip: true, cgo: true, toolchain: testutil.NewestGo},
}

// hardest is the most demanding variant of the local toolchain;
// newestDefault the plainest build of the newest Go.
var hardest, newestDefault = variants[6], variants[7]

// corpusDir is where TestMain builds the corpus; removed when tests end.
var (
	corpusDir  string
	corpusOnce = map[string]*sync.Once{}
	corpusErr  = map[string]error{}
	corpusMu   sync.Mutex
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "symbolize-corpus-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	corpusDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// corpusBinary builds (once) and returns the path of the corpus in variant v.
func corpusBinary(t testing.TB, v variant) string {
	t.Helper()
	if err := buildOnce(v); err != nil {
		t.Fatalf("build corpus %s: %v", v.name, err)
	}
	return filepath.Join(corpusDir, "shop-"+v.name)
}

// buildOnce builds variant v the first time it is asked for and returns
// the error of that build every time. Different variants build in parallel.
func buildOnce(v variant) error {
	corpusMu.Lock()
	once, ok := corpusOnce[v.name]
	if !ok {
		once = new(sync.Once)
		corpusOnce[v.name] = once
	}
	corpusMu.Unlock()
	once.Do(func() {
		goTool, err := testutil.GoToolPath(v.toolchain)
		if err == nil {
			err = buildCorpus(goTool, v, filepath.Join(corpusDir, "shop-"+v.name))
		}
		corpusMu.Lock()
		corpusErr[v.name] = err
		corpusMu.Unlock()
	})
	corpusMu.Lock()
	defer corpusMu.Unlock()
	return corpusErr[v.name]
}

// prebuild builds the variants two at a time (the machine's cores), ahead
// of the tests that use them one after the other; corpusBinary reports
// the errors.
func prebuild(vs []variant) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, v := range vs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_ = buildOnce(v)
		})
	}
	wg.Wait()
}

func buildCorpus(goTool string, v variant, out string) error {
	src, err := filepath.Abs("../../testdata/symbolize/shop")
	if err != nil {
		return err
	}
	if goTool == "go" {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := append([]string{"build", "-o", out}, v.args...)
	cmd := exec.Command(goTool, append(args, ".")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOPROXY=off")
	if v.cgo {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %v\n%s", cmd.Args, err, b)
	}
	if v.strip {
		if b, err := exec.Command("strip", out).CombinedOutput(); err != nil {
			return fmt.Errorf("strip %s: %v\n%s", out, err, b)
		}
	}
	return nil
}

// truthFrame and truthAnswer mirror the JSON the corpus prints.
type truthFrame struct {
	Function  string `json:"function"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	StartLine int    `json:"start_line"`
	Entry     uint64 `json:"entry"`
}

type truthAnswer struct {
	Addr    uint64       `json:"addr"`
	Runtime uint64       `json:"runtime"`
	Func    string       `json:"func"`
	Frames  []truthFrame `json:"frames"`
}

// oracle is a running corpus program in -truth mode.
type oracle struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	bias uint64
	pid  int
}

func startOracle(t *testing.T, path string) *oracle {
	t.Helper()
	cmd := exec.Command(path, "-truth")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(stdout, 1<<20)}
	t.Cleanup(func() {
		o.in.Close()
		if err := o.cmd.Wait(); err != nil {
			t.Errorf("corpus program: %v", err)
		}
	})
	var hello struct {
		Bias uint64 `json:"bias"`
		PID  int    `json:"pid"`
	}
	line, err := o.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("corpus program: %v", err)
	}
	if err := json.Unmarshal(line, &hello); err != nil {
		t.Fatalf("corpus program greeting %q: %v", line, err)
	}
	o.bias, o.pid = hello.Bias, hello.PID
	return o
}

// ask sends addresses and reads one answer per address. Writing happens in
// a goroutine so neither side blocks on a full pipe.
func (o *oracle) ask(t *testing.T, addrs []uint64) []truthAnswer {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(o.in)
		for _, a := range addrs {
			fmt.Fprintf(w, "%x\n", a)
		}
		fmt.Fprintln(w) // flush request
		errc <- w.Flush()
	}()
	out := make([]truthAnswer, 0, len(addrs))
	for range addrs {
		line, err := o.out.ReadBytes('\n')
		if err != nil {
			t.Fatalf("corpus program answer: %v", err)
		}
		var a truthAnswer
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatalf("corpus program answer %q: %v", line, err)
		}
		out = append(out, a)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return out
}

func isCorpusFunc(name string) bool {
	return strings.HasPrefix(name, "main.") || strings.HasPrefix(name, "github.com/acme/shop") ||
		strings.HasPrefix(name, "github.com/acme/handlers")
}

// corpusPkg returns the package of the corpus source file file, absolute
// or -trimpath'd, by its directory.
func corpusPkg(file string) (string, bool) {
	dir := path.Dir(file)
	for _, d := range [...]struct{ suffix, pkg string }{
		{"/shop/api", "github.com/acme/shop/api"},
		{"/shop/health", "github.com/acme/shop/health"},
		{"/shop/internal/store", "github.com/acme/shop/internal/store"},
		{"/shop", "main"},
		{"/handlers", "github.com/acme/handlers"},
		{"/handlers@v0.0.0", "github.com/acme/handlers"},
	} {
		if strings.HasSuffix(dir, d.suffix) {
			return d.pkg, true
		}
	}
	return "", false
}

// samplePCs returns return-address style PCs in (entry, end): every byte of
// the corpus's own functions and a few of every other function.
func samplePCs(b *Binary) []uint64 {
	var pcs []uint64
	for f := range b.Funcs() {
		if f.End <= f.Entry {
			continue
		}
		step := uint64(1)
		if !isCorpusFunc(f.Name) {
			step = max((f.End-f.Entry)/3, 1)
		}
		// Not End: the runtime finds the function of a return address
		// before it backs up, so at End it answers the next function.
		for pc := f.Entry + 1; pc < f.End; pc += step {
			pcs = append(pcs, pc)
		}
	}
	return pcs
}

func TestCorpusAgainstRuntime(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("gcc is needed for the external-link variants: %v", err)
	}
	var run []variant
	for _, v := range variants {
		if testing.Short() && v.name != "default" && v.name != "pie-external-sw" {
			continue // -short: the plainest build and the hardest one
		}
		run = append(run, v)
	}
	prebuild(run)
	for _, v := range run {
		t.Run(v.name, func(t *testing.T) {
			path := corpusBinary(t, v)
			b, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkCorpus(t, v, b, path)
		})
	}
}

func checkCorpus(t *testing.T, v variant, b *Binary, path string) {
	info := b.Info()
	if info.Main.Path != "github.com/acme/shop" {
		t.Errorf("main module %q", info.Main.Path)
	}
	if want := cmp.Or(v.toolchain, runtime.Version()); info.GoVersion != want {
		t.Errorf("Go version %q, want %q", info.GoVersion, want)
	}
	wantStripped := v.strip || strings.Contains(strings.Join(v.args, " "), "-s -w")
	if info.Stripped != wantStripped || info.DWARF == wantStripped {
		t.Errorf("stripped %t, DWARF %t; want stripped %t", info.Stripped, info.DWARF, wantStripped)
	}
	if want := strings.Contains(v.name, "pie"); info.PIE != want {
		t.Errorf("PIE %t, want %t", info.PIE, want)
	}
	if want := strings.Contains(v.name, "external"); info.ExternalLink != want {
		t.Errorf("external link %t, want %t", info.ExternalLink, want)
	}
	if info.TrimPath != slices.Contains(v.args, "-trimpath") {
		t.Errorf("trimpath %t", info.TrimPath)
	}
	if info.TextSource != "moduledata" {
		t.Errorf("text start from %s, want moduledata", info.TextSource)
	}

	pcs := samplePCs(b)
	o := startOracle(t, path)
	truth := o.ask(t, pcs)

	proc, err := OpenProcess(o.pid, NewCache(2, Options{}))
	if err != nil {
		t.Fatal(err)
	}

	// Declaration line and file of every physical function, from the truth.
	decl := map[string]truthFrame{}
	for _, a := range truth {
		if n := len(a.Frames); n > 0 && a.Frames[n-1].File != "?" {
			decl[a.Frames[n-1].Function] = a.Frames[n-1]
		}
	}

	// Declaration of every function the runtime reports inlined, for
	// wrappers resolved to a method inlined into them.
	inlinedDecl := map[string]truthFrame{}
	for _, a := range truth {
		for _, f := range a.Frames[:max(len(a.Frames)-1, 0)] {
			inlinedDecl[f.Function] = f
		}
	}

	var nPC, nInlined, nWrapped, nProc, nPkg int
	for i, a := range truth {
		pc := pcs[i]
		got, err := b.Lookup(pc, true)
		if err != nil {
			t.Errorf("%#x (%s): %v", pc, a.Func, err)
			continue
		}
		if fa, ok := proc.FileAddr(a.Runtime); !ok || fa != pc {
			t.Errorf("FileAddr(%#x) = %#x, %t; want %#x", a.Runtime, fa, ok, pc)
		}
		if i%7 == 0 {
			pgot, err := proc.Lookup(a.Runtime, true)
			if err != nil || !equalFrames(pgot, got) {
				t.Errorf("Process.Lookup(%#x) = %v, %v; Binary.Lookup gives %v", a.Runtime, pgot, err, got)
			}
			nProc++
		}
		if i%11 == 0 {
			prefix := []Frame{{Function: "caller's"}}
			app, err := b.AppendLookup(prefix, pc, true)
			if err != nil || len(app) == 0 || app[0].Function != "caller's" || !equalFrames(app[1:], got) {
				t.Errorf("AppendLookup(%#x) = %v, %v; Lookup gives %v", pc, app, err, got)
			}
		}
		if again, _ := b.Lookup(pc-1, false); !equalFrames(again, got) {
			t.Errorf("Lookup(%#x, false) differs from Lookup(%#x, true)", pc-1, pc)
		}
		want := a.Frames
		if len(got) > 0 && got[0].Wrapper != "" {
			// The runtime reports the wrapper itself; we report what it wraps.
			if len(want) == 0 || want[0].Function != printName(got[0].Wrapper) ||
				want[0].File != autogenerated && want[0].File != "?" {
				t.Errorf("%#x: resolved wrapper %s, runtime says %+v", pc, got[0].Wrapper, want)
				continue
			}
			d, ok := decl[printName(got[0].Function)]
			if !ok {
				d, ok = inlinedDecl[printName(got[0].Function)]
			}
			if !ok && isCorpusFunc(got[0].Function) {
				t.Errorf("%#x: wrapper %s resolved to %s, which the runtime never reports", pc, got[0].Wrapper, got[0].Function)
			}
			if ok && (d.File != got[0].File || d.StartLine != got[0].StartLine) {
				t.Errorf("%#x: wrapper %s resolved to %s at %s:%d, runtime has it at %s:%d",
					pc, got[0].Wrapper, got[0].Function, got[0].File, got[0].StartLine, d.File, d.StartLine)
			}
			got, want = got[1:], want[1:]
			nWrapped++
		}
		if len(got) != len(want) {
			t.Errorf("%#x: got %d frames %v, runtime %d frames %v", pc, len(got), got, len(want), want)
			continue
		}
		for j := range got {
			g, w := got[j], want[j]
			// runtime.funcName returns "" for nameOff 0, the first function.
			if printName(g.Function) != w.Function && w.Function != "" || g.File != w.File || g.Line != w.Line || g.StartLine != w.StartLine {
				t.Errorf("%#x frame %d: got %s %s:%d start %d; runtime %s %s:%d start %d",
					pc, j, g.Function, g.File, g.Line, g.StartLine, w.Function, w.File, w.Line, w.StartLine)
			}
			if j < len(got)-1 && !g.Inlined {
				t.Errorf("%#x frame %d: Inlined %t", pc, j, g.Inlined)
			}
			if g.Inlined {
				nInlined++
			}
			// Go keeps one package per directory: the package a frame
			// is split into must be the one of its file's directory,
			// and all of the corpus is user code (main module and a
			// module replaced by ../handlers).
			if want, ok := corpusPkg(g.File); ok {
				pkg, _, _ := b.SplitName(g.Function)
				if pkg != want || g.Type != pkg && !strings.HasPrefix(g.Type, pkg+".") || !g.User {
					t.Errorf("%#x frame %d: %s in %s: package %s, type %s, user %t; want package %s, user",
						pc, j, g.Function, g.File, pkg, g.Type, g.User, want)
				}
				nPkg++
			}
		}
		nPC++
		if t.Failed() && nPC > 50 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%s: %d PCs compared with runtime.CallersFrames, %d inlined frames, %d wrappers resolved, %d through the process (load bias %#x), %d packages checked against directories",
		v.name, nPC, nInlined, nWrapped, nProc, o.bias, nPkg)
	if strings.Contains(v.name, "pie") && o.bias == 0 {
		t.Errorf("PIE loaded at its link address: the runtime-to-file mapping went untested")
	}
	if nPC < 5000 || nInlined < 500 || nWrapped == 0 || nPkg < 1000 {
		t.Errorf("corpus too small: %d PCs, %d inlined frames, %d wrappers", nPC, nInlined, nWrapped)
	}
}

func equalFrames(a, b []Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
