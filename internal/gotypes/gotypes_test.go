package gotypes

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/testutil"
)

// variant is one way of building a corpus program; the answers must not
// depend on it.
type variant struct {
	name  string
	env   []string // added to the go command's environment
	args  []string
	strip bool // run GNU strip on the result
	// noSections removes the section header table, as sstrip does: only
	// program headers (and the dynamic table) remain.
	noSections bool
	// zeroRelocated zeroes every word a RELATIVE relocation targets, as
	// lld does by default (--no-apply-dynamic-relocs): the loader fills
	// them, so the program still runs, and only relocations give values.
	zeroRelocated bool
	dwarf         bool   // the result keeps DWARF
	toolchain     string // Go version to build with; "" for the local one
}

var variants = []variant{
	{name: "default", dwarf: true},
	{name: "sw", args: []string{"-ldflags=-s -w"}},
	{name: "pie", args: []string{"-buildmode=pie"}, dwarf: true},
	{name: "external", args: []string{"-ldflags=-linkmode=external"}, dwarf: true},
	{name: "pie-external-sw", args: []string{"-buildmode=pie", "-ldflags=-linkmode=external -s -w"}},
	{name: "strip", strip: true},
	{name: "pie-external-zeroed", args: []string{"-buildmode=pie", "-ldflags=-linkmode=external"}, zeroRelocated: true, dwarf: true},
	{name: "pie-sw-nosections", args: []string{"-buildmode=pie", "-ldflags=-s -w"}, noSections: true},
	// DT_RELR packs relative relocations; the addends stay in the file.
	{name: "pie-external-relr", args: []string{"-buildmode=pie", "-ldflags=-linkmode=external -extldflags=-Wl,-z,pack-relative-relocs"}, dwarf: true},
	// The newest Go release, whose moduledata and type descriptors differ
	// (see the package documentation): its plainest build and its hardest
	// one, rather than every variant again.
	newestDefault,
	newestHardest,
}

var (
	newestDefault = variant{name: "go1.27-default", dwarf: true, toolchain: testutil.NewestGo}
	newestHardest = variant{name: "go1.27-pie-external-sw-trimpath-strip", toolchain: testutil.NewestGo, strip: true,
		args: []string{"-buildmode=pie", "-trimpath", "-ldflags=-linkmode=external -s -w"}}
)

// corpus builds the programs of testdata/gotypes once per variant.
type corpus struct {
	dir   string
	mu    sync.Mutex
	built map[string]*buildResult
}

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var testCorpus *corpus

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gotypes-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCorpus = &corpus{dir: dir, built: make(map[string]*buildResult)}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build returns the path of program prog (a directory under
// testdata/gotypes) built as variant v with the local toolchain.
func (c *corpus) build(t testing.TB, prog string, v variant) string {
	t.Helper()
	key := prog + "-" + v.name
	c.mu.Lock()
	r, ok := c.built[key]
	if !ok {
		r = &buildResult{}
		c.built[key] = r
	}
	c.mu.Unlock()
	r.once.Do(func() {
		out := filepath.Join(c.dir, key)
		args := append([]string{"build", "-o", out}, v.args...)
		root := filepath.Join("..", "..")
		dir, pkg := root, "./testdata/gotypes/"+prog
		if _, err := os.Stat(filepath.Join(root, "testdata", "gotypes", prog, "go.mod")); err == nil {
			// A program with its own module (dd-trace-go v1).
			dir, pkg = filepath.Join(root, "testdata", "gotypes", prog), "."
		}
		args = append(args, pkg)
		goTool, err := testutil.GoToolPath(v.toolchain)
		if err != nil {
			r.err = err
			return
		}
		cmd := exec.Command(goTool, args...)
		cmd.Dir = dir
		cmd.Env = testutil.GoToolEnv(v.env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
			return
		}
		if v.strip {
			if b, err := exec.Command("strip", out).CombinedOutput(); err != nil {
				r.err = fmt.Errorf("strip %s: %v\n%s", out, err, b)
				return
			}
		}
		if v.zeroRelocated {
			if err := zeroRelocatedWords(out); err != nil {
				r.err = err
				return
			}
		}
		if v.noSections {
			if err := dropSectionHeaders(out); err != nil {
				r.err = err
				return
			}
		}
		r.path = out
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// zeroRelocatedWords zeroes the file bytes of every R_X86_64_RELATIVE
// relocation site of an x86-64 PIE.
func zeroRelocatedWords(path string) error {
	ef, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer ef.Close()
	var sites []int64
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_RELA {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return err
		}
		for i := 0; i+24 <= len(data); i += 24 {
			if elf.R_X86_64(binary.LittleEndian.Uint64(data[i+8:])&0xffffffff) != elf.R_X86_64_RELATIVE {
				continue
			}
			va := binary.LittleEndian.Uint64(data[i:])
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD && va >= p.Vaddr && va+8 <= p.Vaddr+p.Filesz {
					sites = append(sites, int64(p.Off+va-p.Vaddr))
				}
			}
		}
	}
	if len(sites) < 1000 {
		return fmt.Errorf("%s: only %d RELATIVE relocations", path, len(sites))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var zero [8]byte
	for _, off := range sites {
		if _, err := f.WriteAt(zero[:], off); err != nil {
			return err
		}
	}
	return nil
}

// dropSectionHeaders zeroes e_shoff, e_shnum and e_shstrndx of an ELF64
// little-endian file.
func dropSectionHeaders(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 8), 40); err != nil { // e_shoff
		return err
	}
	_, err = f.WriteAt(make([]byte, 4), 60) // e_shnum, e_shstrndx
	return err
}

// report mirrors testdata/gotypes/internal/truth.Report.
type report struct {
	Bias   uint64       `json:"bias"`
	Types  []truthType  `json:"types"`
	Fields []truthField `json:"fields"`
	Itabs  []truthItab  `json:"itabs"`
}

type truthType struct {
	Name string `json:"name"`
	Addr uint64 `json:"addr"`
	Kind uint   `json:"kind"`
	Size uint64 `json:"size"`
}

type truthField struct {
	Type   string `json:"type"`
	Path   string `json:"path"`
	Offset uint64 `json:"offset"`
}

type truthItab struct {
	Interface string `json:"interface"`
	Type      string `json:"type"`
	Addr      uint64 `json:"addr"`
}

// field returns the truth for typ.path.
func (r *report) field(typ, path string) (uint64, bool) {
	for _, f := range r.Fields {
		if f.Type == typ && f.Path == path {
			return f.Offset, true
		}
	}
	return 0, false
}

// closedLoopbackAddr returns a loopback address where nothing listens, as
// the agent address of the dd-trace-go corpus program: the tracer then
// fails fast and the test stays on loopback.
func closedLoopbackAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func runTruth(t testing.TB, bin string, args ...string) *report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED=false",
		"DD_REMOTE_CONFIGURATION_ENABLED=false",
		"DD_TRACE_STARTUP_LOGS=false",
		"DD_TRACE_AGENT_URL=",
		"DD_AGENT_HOST=",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: decode truth: %v", bin, err)
	}
	if len(r.Types) == 0 || len(r.Fields) == 0 || len(r.Itabs) == 0 {
		t.Fatalf("%s: empty truth report", bin)
	}
	return &r
}

// programs lists the corpus programs with the facts the probe engine needs
// from each, which must be part of the program's truth report.
var programs = []struct {
	name      string
	args      func(testing.TB) []string
	mustField [][2]string // type, path
	mustItab  [][2]string // interface, type
	// chains are paths through pointers; parts name the truth field of
	// each dereference step.
	chains []chain
}{
	{
		name: "basic",
		mustField: [][2]string{
			{"net/http.Request", "ctx"},
			{"context.valueCtx", "Context"}, {"context.valueCtx", "key"}, {"context.valueCtx", "val"},
			{"context.cancelCtx", "Context"},
			{"context.timerCtx", "cancelCtx.Context"},
			{"context.withoutCancelCtx", "c"},
			{"main.userCtx", "Context"}, {"main.userCtx", "reqID"},
			{"main.Outer", "In.B"}, {"main.Outer", "anon.v"}, {"main.Outer", "Named"},
		},
		mustItab: [][2]string{
			{"context.Context", "*context.valueCtx"},
			{"context.Context", "*context.cancelCtx"},
			{"context.Context", "*context.timerCtx"},
			{"context.Context", "context.withoutCancelCtx"},
			{"context.Context", "*main.userCtx"},
			{"net/http.Handler", "*main.handler"},
			{"net/http.Handler", "net/http.HandlerFunc"},
		},
	},
	{
		name: "ddtrace",
		args: func(t testing.TB) []string { return []string{closedLoopbackAddr(t)} },
		mustField: [][2]string{
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx", "span"},
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx", "snapshot"},
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "spanID"},
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "traceID"},
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "context"},
			{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.SpanContext", "traceID.value"},
		},
		chains: []chain{{
			typ: "*github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", path: "context.traceID.value",
			parts: [][2]string{
				{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "context"},
				{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.SpanContext", "traceID.value"},
			},
		}, {
			typ: "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx", path: "span.context.traceID",
			parts: [][2]string{
				{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx", "span"},
				{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "context"},
				{"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.SpanContext", "traceID"},
			},
		}},
		mustItab: [][2]string{
			{"context.Context", "*github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx"},
			{"context.Context", "*context.valueCtx"},
		},
	},
	{
		name: "ddtrace-v1",
		args: func(t testing.TB) []string { return []string{closedLoopbackAddr(t)} },
		mustField: [][2]string{
			{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span", "SpanID"},
			{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span", "TraceID"},
			{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span", "context"},
			{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.spanContext", "traceID"},
		},
		chains: []chain{{
			typ: "gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span", path: "context.traceID",
			parts: [][2]string{
				{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span", "context"},
				{"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.spanContext", "traceID"},
			},
		}},
		mustItab: [][2]string{
			{"context.Context", "*context.valueCtx"},
		},
	},
}

type chain struct {
	typ, path string
	parts     [][2]string
}

// TestAgainstRunningProgram compares every answer with what the corpus
// programs report about themselves at run time, for every build variant.
func TestAgainstRunningProgram(t *testing.T) {
	for _, p := range programs {
		for _, v := range variants {
			if p.name == "ddtrace-v1" && v.name == newestDefault.name {
				// Each Go 1.27 variant compiles all of dd-trace-go v1 anew;
				// the hardest build (shared with the probes' end-to-end
				// target) covers it.
				continue
			}
			t.Run(p.name+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				bin := testCorpus.build(t, p.name, v)
				var args []string
				if p.args != nil {
					args = p.args(t)
				}
				truth := runTruth(t, bin, args...)
				b, err := Open(bin)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if got := b.HasDWARF(); got != v.dwarf {
					t.Errorf("HasDWARF() = %v, want %v", got, v.dwarf)
				}
				checkTruth(t, b, truth)
				if n, err := b.Dropped(); n != 0 || err != nil {
					t.Errorf("Dropped() = %d, %v; want 0", n, err)
				}
				if v.dwarf {
					// bpf/origin.c reads g.stack.hi at a fixed offset
					// (runtime.g has no runtime type descriptor).
					if off, err := b.FieldOffset("runtime.g", "stack.hi"); err != nil || off != 8 {
						t.Errorf("FieldOffset(runtime.g, stack.hi) = %d, %v; bpf/origin.c assumes 8", off, err)
					}
					rf, err := Open(bin, RuntimeFirst())
					if err != nil {
						t.Fatal(err)
					}
					defer rf.Close()
					checkTruth(t, rf, truth)
				}
				for _, f := range p.mustField {
					if _, ok := truth.field(f[0], f[1]); !ok {
						t.Errorf("truth report lacks field %s.%s", f[0], f[1])
					}
				}
				for _, c := range p.chains {
					var want []uint64
					for _, part := range c.parts {
						off, ok := truth.field(part[0], part[1])
						if !ok {
							t.Fatalf("truth report lacks field %s.%s", part[0], part[1])
						}
						want = append(want, off)
					}
					got, err := b.FieldOffsets(c.typ, c.path)
					if err != nil || !slices.Equal(got, want) {
						t.Errorf("FieldOffsets(%s, %s) = %v, %v; want %v", c.typ, c.path, got, err, want)
					}
					if _, err := b.FieldOffset(c.typ, c.path); !errors.Is(err, ErrPointerHop) {
						t.Errorf("FieldOffset(%s, %s): %v, want ErrPointerHop", c.typ, c.path, err)
					}
				}
				for _, it := range p.mustItab {
					if !slices.ContainsFunc(truth.Itabs, func(x truthItab) bool {
						return x.Interface == it[0] && x.Type == it[1]
					}) {
						t.Errorf("truth report lacks itab %s,%s", it[0], it[1])
					}
				}
			})
		}
	}
}

func checkTruth(t *testing.T, b *Binary, truth *report) {
	t.Helper()
	for _, want := range truth.Types {
		addrs, err := b.TypeAddrs(want.Name)
		if err != nil {
			t.Errorf("TypeAddrs(%q): %v", want.Name, err)
			continue
		}
		if !slices.Contains(addrs, want.Addr) {
			t.Errorf("TypeAddrs(%q) = %#x, want it to contain %#x", want.Name, addrs, want.Addr)
		}
		rt, err := b.RuntimeType(want.Addr)
		if err != nil {
			t.Errorf("RuntimeType(%#x) (%s): %v", want.Addr, want.Name, err)
		} else if rt.Name != want.Name || rt.Kind != reflect.Kind(want.Kind) || rt.Size != want.Size {
			t.Errorf("RuntimeType(%#x) = %s %v size %d, want %s %v size %d",
				want.Addr, rt.Name, rt.Kind, rt.Size, want.Name, reflect.Kind(want.Kind), want.Size)
		}
		ty, err := b.Type(want.Name)
		if err != nil {
			t.Errorf("Type(%q): %v", want.Name, err)
			continue
		}
		if ty.Size != want.Size || ty.Kind != reflect.Kind(want.Kind) {
			t.Errorf("Type(%q) = %v size %d, want %v size %d", want.Name, ty.Kind, ty.Size, reflect.Kind(want.Kind), want.Size)
		}
		if ty.Addr != addrs[0] {
			t.Errorf("Type(%q).Addr = %#x, want %#x", want.Name, ty.Addr, addrs[0])
		}
	}
	for _, want := range truth.Fields {
		got, err := b.FieldOffset(want.Type, want.Path)
		if err != nil {
			t.Errorf("FieldOffset(%q, %q): %v", want.Type, want.Path, err)
		} else if got != want.Offset {
			t.Errorf("FieldOffset(%q, %q) = %d, want %d", want.Type, want.Path, got, want.Offset)
		}
	}
	itabs, err := b.Itabs()
	if err != nil {
		t.Fatalf("Itabs: %v", err)
	}
	byAddr := make(map[uint64]Itab, len(itabs))
	for _, it := range itabs {
		byAddr[it.Addr] = it
	}
	for _, want := range truth.Itabs {
		got, ok := byAddr[want.Addr]
		if !ok {
			t.Errorf("no itab at %#x (%s, %s)", want.Addr, want.Interface, want.Type)
			continue
		}
		if got.Interface != want.Interface || got.Type != want.Type {
			t.Errorf("itab at %#x = (%s, %s), want (%s, %s)", want.Addr, got.Interface, got.Type, want.Interface, want.Type)
		}
		ms, err := b.Methods(want.Interface)
		if err != nil {
			t.Errorf("Methods(%q): %v", want.Interface, err)
		} else if len(got.Fun) != len(ms) {
			t.Errorf("itab (%s, %s): %d funcs, interface has %d methods", want.Interface, want.Type, len(got.Fun), len(ms))
		}
		for i, fn := range got.Fun {
			if fn == 0 {
				t.Errorf("itab (%s, %s): Fun[%d] is 0", want.Interface, want.Type, i)
			}
		}
		if addrs, err := b.TypeAddrs(want.Type); err != nil || !slices.Contains(addrs, got.TypeAddr) {
			t.Errorf("itab (%s, %s): TypeAddr %#x not among TypeAddrs %#x (%v)", want.Interface, want.Type, got.TypeAddr, addrs, err)
		}
	}
}

// TestStrippedMatchesDWARF checks the runtime-type answers of a stripped
// build against the DWARF answers of the default build, for every struct
// type both know: this covers unexported dd-trace-go fields that the
// program cannot report itself.
func TestStrippedMatchesDWARF(t *testing.T) {
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			compareBuilds(t, testCorpus.build(t, p.name, variants[0]), testCorpus.build(t, p.name, variants[1]))
			if p.name != "ddtrace-v1" { // see TestAgainstRunningProgram
				compareBuilds(t, testCorpus.build(t, p.name, newestDefault), testCorpus.build(t, p.name, newestHardest))
			}
		})
	}
}

// TestArm64 repeats the DWARF/runtime comparison on arm64 builds (internal
// linking; PIE uses R_AARCH64_RELATIVE relocations). They cannot run here,
// so the truth is the DWARF of the default build.
func TestArm64(t *testing.T) {
	t.Parallel()
	env := []string{"GOARCH=arm64"}
	withDWARF := testCorpus.build(t, "basic", variant{name: "arm64-default", env: env, dwarf: true})
	for _, v := range []variant{
		{name: "arm64-sw", env: env, args: []string{"-ldflags=-s -w"}},
		{name: "arm64-pie-sw", env: env, args: []string{"-buildmode=pie", "-ldflags=-s -w"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			compareBuilds(t, withDWARF, testCorpus.build(t, "basic", v))
		})
	}
}

// compareBuilds compares the DWARF answers of one build of a program with
// the runtime-type answers of another build without DWARF: type names,
// struct layouts and itabs.
func compareBuilds(t *testing.T, dwarfPath, strippedPath string) {
	t.Helper()
	withDWARF, err := Open(dwarfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer withDWARF.Close()
	stripped, err := Open(strippedPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stripped.Close()
	if !withDWARF.HasDWARF() || stripped.HasDWARF() {
		t.Fatalf("HasDWARF: %v and %v, want true and false", withDWARF.HasDWARF(), stripped.HasDWARF())
	}
	names, err := stripped.TypeNames()
	if err != nil {
		t.Fatal(err)
	}
	dnames, err := withDWARF.TypeNames()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, dnames) {
		t.Errorf("TypeNames differ: %d vs %d names", len(dnames), len(names))
	}
	compared := 0
	for _, name := range names {
		rt, err := stripped.Type(name)
		if err != nil {
			t.Errorf("stripped Type(%q): %v", name, err)
			continue
		}
		if rt.Kind != reflect.Struct {
			continue
		}
		dt, err := withDWARF.Type(name)
		if err != nil {
			t.Errorf("DWARF Type(%q): %v", name, err)
			continue
		}
		if _, ok := withDWARF.dw.byName[name]; !ok {
			continue // DWARF has no such type: dt came from the runtime
		}
		compared++
		if dt.Size != rt.Size || len(dt.Fields) != len(rt.Fields) {
			t.Errorf("%s: DWARF size %d, %d fields; runtime size %d, %d fields", name, dt.Size, len(dt.Fields), rt.Size, len(rt.Fields))
			continue
		}
		for i := range dt.Fields {
			d, r := dt.Fields[i], rt.Fields[i]
			if d.Name != r.Name || d.Offset != r.Offset || d.Embedded != r.Embedded || d.Type.Size != r.Type.Size || d.Type.Kind != r.Type.Kind {
				t.Errorf("%s field %d: DWARF %s@%d embedded=%v %v size %d; runtime %s@%d embedded=%v %v size %d",
					name, i, d.Name, d.Offset, d.Embedded, d.Type.Kind, d.Type.Size, r.Name, r.Offset, r.Embedded, r.Type.Kind, r.Type.Size)
			}
			// Unnamed structs and interfaces are spelled differently by
			// DWARF ("struct { pkg.f T }") and the runtime ("struct { f T }").
			unnamed := strings.Contains(d.Type.Name, "struct {") || strings.Contains(d.Type.Name, "interface {")
			if d.Type.Name != r.Type.Name && !unnamed {
				t.Errorf("%s field %s: DWARF type %q, runtime %q", name, d.Name, d.Type.Name, r.Type.Name)
			}
		}
	}
	if compared < 50 {
		t.Errorf("compared only %d struct types", compared)
	}
	t.Logf("compared %d struct types of %d runtime types", compared, len(names))
	key := func(its []Itab) []string {
		var out []string
		for _, it := range its {
			out = append(out, it.Interface+","+it.Type)
		}
		slices.Sort(out)
		return out
	}
	di, err := withDWARF.Itabs()
	if err != nil {
		t.Fatal(err)
	}
	si, err := stripped.Itabs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(key(di), key(si)) {
		t.Errorf("itabs differ: %d vs %d", len(di), len(si))
	}
}

// TestHandlerItab checks what the probe engine does with net/http.Handler
// itabs: Fun[0] is the ServeHTTP to probe. The truth is the symbol table of
// the variants that keep one, and the method table of the receiver type.
func TestHandlerItab(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			path := testCorpus.build(t, "basic", v)
			b, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			itabs, err := b.Itabs()
			if err != nil {
				t.Fatal(err)
			}
			var h *Itab
			for i := range itabs {
				if itabs[i].Interface == "net/http.Handler" && itabs[i].Type == "*main.handler" {
					h = &itabs[i]
				}
			}
			if h == nil || len(h.Fun) != 1 {
				t.Fatalf("no (net/http.Handler, *main.handler) itab with one method: %+v", h)
			}
			ms, err := b.Methods("*main.handler")
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ms, func(m Method) bool { return m.Name == "ServeHTTP" })
			if i < 0 {
				t.Fatalf("Methods(*main.handler) = %+v: no ServeHTTP", ms)
			}
			m := ms[i]
			if m.Ifn != h.Fun[0] || m.Tfn != h.Fun[0] {
				t.Errorf("ServeHTTP Ifn %#x Tfn %#x, itab Fun[0] %#x", m.Ifn, m.Tfn, h.Fun[0])
			}
			var in []string
			if m.Type != nil {
				for _, p := range m.Type.In {
					in = append(in, p.Name)
				}
			}
			if want := []string{"net/http.ResponseWriter", "*net/http.Request"}; !slices.Equal(in, want) {
				t.Errorf("ServeHTTP parameters %q, want %q", in, want)
			}
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syms, err := f.Symbols()
			if errors.Is(err, elf.ErrNoSymbols) {
				return // stripped: the method table above is the check
			}
			if err != nil {
				t.Fatal(err)
			}
			j := slices.IndexFunc(syms, func(s elf.Symbol) bool { return s.Name == "main.(*handler).ServeHTTP" })
			if j < 0 {
				t.Fatal("no symbol main.(*handler).ServeHTTP")
			}
			if syms[j].Value != h.Fun[0] {
				t.Errorf("itab Fun[0] = %#x, symbol main.(*handler).ServeHTTP = %#x", h.Fun[0], syms[j].Value)
			}
		})
	}
}
