package symbolize

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/testutil"
)

// sourceLine returns the 1-based line of the first line of file that starts
// with prefix: the declaration line the pclntab must report.
func sourceLine(t *testing.T, file, prefix string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		if strings.HasPrefix(strings.TrimSpace(s.Text()), prefix) {
			return n
		}
	}
	t.Fatalf("%s: no line starts with %q", file, prefix)
	return 0
}

// TestCorpusOrigins checks the tag fields of the handler shapes of the
// corpus on the stripped, PIE, externally linked build.
func TestCorpusOrigins(t *testing.T) {
	// The newest Go's default build: its paths are absolute like the
	// source lines this test reads.
	for _, v := range []variant{hardest, newestDefault} {
		t.Run(v.name, func(t *testing.T) { testCorpusOrigins(t, v) })
	}
}

func testCorpusOrigins(t *testing.T, v variant) {
	b, err := Open(corpusBinary(t, v), Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Abs("../../testdata/symbolize/shop")
	apiGo := filepath.Join(src, "api", "api.go")
	mainGo := filepath.Join(src, "main.go")
	handlersGo := filepath.Join(src, "..", "handlers", "handlers.go")
	// Go 1.26 inlines newCounter into Counters, which names the closure
	// after both; Go 1.27 does not inline it.
	closure := "github.com/acme/shop/api.Counters.newCounter.func1"
	if _, ok := b.Func(closure); !ok && v.toolchain == testutil.NewestGo {
		closure = "github.com/acme/shop/api.newCounter.func1"
	}
	tests := []struct {
		symbol         string // function whose entry is looked up
		function, file string
		startLine      int
		typ, method    string
		user           bool
		wrapper        bool
	}{
		{"github.com/acme/shop/api.(*Users).Get-fm", "github.com/acme/shop/api.(*Users).Get", apiGo,
			sourceLine(t, apiGo, "func (u *Users) Get("), "github.com/acme/shop/api.Users", "Get", true, true},
		{"github.com/acme/shop/api.(*Users).Get", "github.com/acme/shop/api.(*Users).Get", apiGo,
			sourceLine(t, apiGo, "func (u *Users) Get("), "github.com/acme/shop/api.Users", "Get", true, false},
		{"github.com/acme/shop/api.(*Users).Name", "github.com/acme/shop/api.Users.Name", apiGo,
			sourceLine(t, apiGo, "func (u Users) Name("), "github.com/acme/shop/api.Users", "Name", true, true},
		{"github.com/acme/shop/api.Routes.func1", "github.com/acme/shop/api.Routes.func1", apiGo,
			sourceLine(t, apiGo, `"/echo": func(`), "github.com/acme/shop/api", "Routes.func1", true, false},
		{"github.com/acme/shop/api.Routes", "github.com/acme/shop/api.Routes", apiGo,
			sourceLine(t, apiGo, "func Routes("), "github.com/acme/shop/api", "Routes", true, false},
		// A closure made by newCounter inlined into Counters is a closure
		// of newCounter.
		{closure, closure, apiGo,
			sourceLine(t, apiGo, "return func(s string) string {"), "github.com/acme/shop/api", "newCounter.func1", true, false},
		// The method value of a generic method inlined into its wrapper
		// resolves to the method, as non-generic ones do (issue 11).
		{"main.(*Box[string]).Get-fm", "main.(*Box[go.shape.string]).Get", mainGo,
			sourceLine(t, mainGo, "func (b *Box[T]) Get("), "main.Box[...]", "Get", true, true},
		// A module replaced by a directory is user code (issue 11).
		{"github.com/acme/handlers.Hello", "github.com/acme/handlers.Hello", handlersGo,
			sourceLine(t, handlersGo, "func Hello("), "github.com/acme/handlers", "Hello", true, false},
		{"main.exercise", "main.exercise", mainGo,
			sourceLine(t, mainGo, "func exercise("), "main", "exercise", true, false},
		{"fmt.Sprint", "fmt.Sprint", filepath.Join(goroot(t, v), "src/fmt/print.go"),
			sourceLine(t, filepath.Join(goroot(t, v), "src/fmt/print.go"), "func Sprint("), "fmt", "Sprint", false, false},
	}
	for _, tt := range tests {
		fi, ok := b.Func(tt.symbol)
		if !ok {
			t.Errorf("Func(%q) not found", tt.symbol)
			continue
		}
		frames, err := b.Lookup(fi.Entry, false)
		if err != nil {
			t.Errorf("Lookup(%s) = %v", tt.symbol, err)
			continue
		}
		f := frames[len(frames)-1]
		if f.Function != tt.function || f.File != tt.file || f.StartLine != tt.startLine ||
			f.Type != tt.typ || f.Method != tt.method || f.User != tt.user || (f.Wrapper != "") != tt.wrapper {
			t.Errorf("Lookup(%s) = %+v; want %+v", tt.symbol, f, tt)
		}
		if b.IsUser(tt.symbol) != tt.user {
			t.Errorf("IsUser(%s) = %t", tt.symbol, !tt.user)
		}
	}

	// Generic instantiations print their type arguments "[...]".
	var generic int
	for fi := range b.Funcs() {
		if strings.HasPrefix(fi.Name, "github.com/acme/shop/api.Map[") {
			frames, err := b.Lookup(fi.Entry, false)
			if err != nil {
				t.Fatal(err)
			}
			f := frames[len(frames)-1]
			if f.Type != "github.com/acme/shop/api" || f.Method != "Map[...]" || !f.User {
				t.Errorf("%s: type %q method %q user %t", fi.Name, f.Type, f.Method, f.User)
			}
			generic++
		}
	}
	if generic == 0 {
		t.Error("no instantiation of api.Map in the corpus")
	}
}

// goroot returns the GOROOT of the toolchain that builds v.
func goroot(t *testing.T, v variant) string {
	cmd := exec.Command(testutil.GoTool(t, v.toolchain), "env", "GOROOT")
	cmd.Env = testutil.GoToolEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestTextStart checks that every way to find the text start agrees, and
// that for external linking it differs from the .text section.
func TestTextStart(t *testing.T) {
	for _, v := range variants {
		b, err := Open(corpusBinary(t, v), Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, pcln, _ := b.im.section(".gopclntab")
		s := b.im.f.Section(".gopclntab")
		md, ok := b.im.scanModuledata(b.tab, s.Addr, func(a uint64) (moduledata, bool) {
			md, _, ok := b.im.moduledataAt(b.tab, s.Addr, a)
			return md, ok
		})
		if !ok || md.text != b.text || len(b.gofunc) == 0 || len(b.im.rest(md.gofunc)) != len(b.gofunc) {
			t.Errorf("%s: moduledata scan = %+v, %t; want text %#x and the same gofunc", v.name, md, ok, b.text)
		}
		// The layout is told apart by the data alone; it must be the one
		// of the toolchain that built the binary.
		if want := map[bool]string{true: "go1.27", false: "go1.20"}[v.toolchain == testutil.NewestGo]; md.layout != want {
			t.Errorf("%s (%s): moduledata layout %s, want %s", v.name, b.info.GoVersion, md.layout, want)
		}
		if sym, ok := b.im.symbol("go:func.*"); ok && sym != md.gofunc {
			t.Errorf("%s: go:func.* at %#x, moduledata gofunc %#x", v.name, sym, md.gofunc)
		}
		if sym, ok := b.im.symbol("runtime.text"); ok && sym != b.text {
			t.Errorf("%s: runtime.text %#x, moduledata text %#x", v.name, sym, b.text)
		} else if !ok && !b.info.Stripped {
			t.Errorf("%s: no runtime.text in an unstripped binary", v.name)
		}
		textSect := b.im.f.Section(".text").Addr
		if ext := strings.Contains(v.name, "external"); ext != (textSect != b.text) {
			t.Errorf("%s: .text at %#x, text start %#x", v.name, textSect, b.text)
		}
		if b.info.PclntabSize != len(pcln) || b.ID() == "" || strings.HasPrefix(b.ID(), "file:") {
			t.Errorf("%s: pclntab size %d, ID %q", v.name, b.info.PclntabSize, b.ID())
		}
	}
}

// TestBadInput feeds files that are not usable Go binaries.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(corpusBinary(t, variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cBin := filepath.Join(dir, "c-program")
	cSrc := write("c.c", []byte("int main(void) { return 0; }\n"))
	if out, err := exec.Command("gcc", "-o", cBin, cSrc).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	b0, err := NewBinary("good", good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pclnOff := b0.im.f.Section(".gopclntab").Offset
	corrupt := func(at uint64, bytes ...byte) []byte {
		c := append([]byte(nil), good...)
		copy(c[at:], bytes)
		return c
	}
	tests := []struct {
		name string
		path string
		want error // nil: any error
	}{
		{"empty", write("empty", nil), ErrNotGo},
		{"text", write("text", []byte("#!/bin/sh\necho hello\n")), ErrNotGo},
		{"truncated-header", write("trunc64", good[:64]), nil},
		{"truncated-half", write("trunc-half", good[:len(good)/2]), nil},
		{"c-program", cBin, ErrNotGo},
		{"old-magic", write("old", corrupt(pclnOff, 0xfa, 0xff, 0xff, 0xff)), ErrUnsupported},
		{"bad-magic", write("badmagic", corrupt(pclnOff, 1, 2, 3, 4)), ErrCorrupt},
		{"bad-ptrsize", write("badptr", corrupt(pclnOff+7, 3)), ErrCorrupt},
		{"huge-nfunc", write("nfunc", corrupt(pclnOff+8, 0xff, 0xff, 0xff, 0x7f)), ErrCorrupt},
		{"bad-offset", write("badoff", corrupt(pclnOff+8+3*8, 0xff, 0xff, 0xff, 0x7f)), ErrCorrupt},
	}
	for _, tt := range tests {
		_, err := Open(tt.path, Options{})
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Open = %v, want %v", tt.name, err, tt.want)
		} else {
			t.Logf("%s: %v", tt.name, err)
		}
	}
}

// TestCorruptTables overwrites stretches of the pclntab and the moduledata
// and symbolizes every function: errors are fine, panics and hangs are not.
func TestCorruptTables(t *testing.T) {
	good, err := os.ReadFile(corpusBinary(t, variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	b0, err := NewBinary("good", good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sect := b0.im.f.Section(".gopclntab")
	var pcs []uint64
	for f := range b0.Funcs() {
		pcs = append(pcs, f.Entry, (f.Entry+f.End)/2)
	}
	for i := range 24 {
		c := append([]byte(nil), good...)
		// Deterministic spread of overwrite positions over the section.
		at := sect.Offset + uint64(i)*sect.Size/24 + uint64(i*7919)%4096
		for j := uint64(0); j < 512 && at+j < uint64(len(c)); j++ {
			c[at+j] = byte(j*31 + uint64(i))
		}
		b, err := NewBinary("corrupt", c, Options{PCCacheSize: -1})
		if err != nil {
			continue
		}
		for _, pc := range pcs {
			b.Lookup(pc, false)
		}
		for f := range b.Funcs() {
			_ = f
		}
	}
}

// TestLookupOutside checks addresses outside Go functions.
func TestLookupOutside(t *testing.T) {
	b, err := Open(corpusBinary(t, variants[0]), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range []uint64{0, 1, b.text - 1, 1 << 62, ^uint64(0)} {
		if _, err := b.Lookup(pc, false); !errors.Is(err, ErrNoFunc) {
			t.Errorf("Lookup(%#x) = %v, want ErrNoFunc", pc, err)
		}
	}
	if _, err := b.Lookup(0, true); !errors.Is(err, ErrNoFunc) {
		t.Errorf("Lookup(0, true) = %v, want ErrNoFunc", err)
	}
}

// TestTruncatedWhileMapped truncates an opened binary: reads of the mapping
// then raise SIGBUS, which must come back as errors.
func TestTruncatedWhileMapped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shop")
	copyFile(t, corpusBinary(t, variants[0]), p)
	b, err := Open(p, Options{PCCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	var funcs []FuncInfo
	for f := range b.Funcs() {
		funcs = append(funcs, f)
	}
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	var errs int
	for _, f := range funcs {
		if _, err := b.Lookup(f.Entry, false); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Lookup after truncation: %v", err)
			}
			errs++
		}
	}
	if errs == 0 {
		t.Error("no lookup noticed the truncation")
	}
	if _, ok := b.Func("main.main"); ok {
		t.Error("Func found a name in a truncated file")
	}
	if _, err := b.Code(funcs[len(funcs)-1]); err == nil {
		t.Error("Code read a truncated file")
	}
	t.Logf("%d of %d lookups failed cleanly", errs, len(funcs))
}

// TestFindBucket checks the runtime's bucket index against binary search
// at every 3rd byte of text.
func TestFindBucket(t *testing.T) {
	for _, v := range []variant{variants[0], hardest} {
		b, err := Open(corpusBinary(t, v), Options{})
		if err != nil {
			t.Fatal(err)
		}
		tab := *b.tab
		if tab.findfunctab == nil {
			t.Fatalf("%s: no findfunctab", v.name)
		}
		plain := tab
		plain.findfunctab = nil
		first, _ := tab.ftabEntry(0)
		last, _ := tab.ftabEntry(tab.nfunc)
		var n int
		for off := uint64(first); off < uint64(last); off += 3 {
			i, ok := tab.findBucket(off)
			j, _ := plain.find(off)
			if !ok || i != j {
				t.Fatalf("%s: offset %#x: bucket gives %d, %t; binary search %d", v.name, off, i, ok, j)
			}
			n++
		}
		t.Logf("%s: %d offsets agree", v.name, n)
	}
}

// TestWrapInfo checks that wrappers carrying FUNCDATA_WrapInfo resolve
// through it to a function whose name the wrapper's name implies.
func TestWrapInfo(t *testing.T) {
	b, err := Open(corpusBinary(t, hardest), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.once.Do(b.initLookup)
	var n int
	for i := 0; i < b.tab.nfunc; i++ {
		f, ok := b.tab.funcAt(i)
		if !ok {
			t.Fatal("bad function")
		}
		if _, ok := f.funcdataOff(funcdataWrapInfo); !ok {
			continue
		}
		n++
		j := b.wrapped(i, &f)
		if j < 0 {
			t.Errorf("%s: WrapInfo does not resolve", b.meta(f.nameOff).name)
			continue
		}
		g, _ := b.tab.funcAt(j)
		wrapper, target := b.meta(f.nameOff).name, b.meta(g.nameOff).name
		_, _, wm := SplitName(wrapper)
		_, _, tm := SplitName(target)
		// go and defer wrappers call whatever the statement names.
		deferOrGo := strings.Contains(wm, "deferwrap") || strings.Contains(wm, "gowrap")
		if !deferOrGo && strings.TrimSuffix(wm, "-fm") != tm {
			t.Errorf("wrapper %s resolved to %s", wrapper, target)
		}
	}
	if n == 0 {
		t.Error("no function with WrapInfo in the corpus")
	}
	t.Logf("%d wrappers with WrapInfo", n)
}

// TestCorpusInlinedClosures checks closures made by constructors inlined
// into main.exercise from other packages and modules (issue 11): the
// compiler names them main.exercise.Health.funcN, and they must split into
// the package and function that declare them, in the default build
// (absolute file names), the -trimpath one (module-path file names) and the
// stripped PIE one.
func TestCorpusInlinedClosures(t *testing.T) {
	src, _ := filepath.Abs("../../testdata/symbolize")
	for _, v := range variants {
		if v.name != "default" && v.name != "trimpath" && v.name != "pie-external-sw" ||
			testing.Short() && v.name == "trimpath" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b, err := Open(corpusBinary(t, v), Options{})
			if err != nil {
				t.Fatal(err)
			}
			file := func(rel string) string {
				if v.name == "trimpath" {
					return "github.com/acme/" + rel
				}
				return filepath.Join(src, rel)
			}
			tests := []struct {
				ctor, pkg, typ, file, decl string
				user                       bool
			}{
				// A package with no function left in the binary.
				{"Health", "github.com/acme/shop/health", "github.com/acme/shop/health", "shop/health/health.go",
					"return func(s string) string {", true},
				{"Ready", "github.com/acme/shop/api", "github.com/acme/shop/api", "shop/api/api.go",
					`return func(s string) string { return "ready "`, true},
				// A method's closure belongs to its receiver type.
				{"(*Users).Wrap", "github.com/acme/shop/api", "github.com/acme/shop/api.Users", "shop/api/api.go",
					"return func(s string) string { return prefix + u.Get(s) }", true},
				// A sibling module replaced by ../handlers.
				{"Greeter", "github.com/acme/handlers", "github.com/acme/handlers", "handlers/handlers.go",
					"return func(s string) string { return greeting", true},
			}
			for _, tt := range tests {
				re := regexp.MustCompile(`^main\.exercise\.` + regexp.QuoteMeta(tt.ctor) + `\.func(\d+)$`)
				var found bool
				for fi := range b.Funcs() {
					m := re.FindStringSubmatch(fi.Name)
					if m == nil {
						continue
					}
					found = true
					frames, err := b.Lookup(fi.Entry, false)
					if err != nil {
						t.Fatal(err)
					}
					f := frames[len(frames)-1]
					wantFile := file(tt.file)
					if v.name == "trimpath" && tt.pkg == "github.com/acme/handlers" {
						// A required module's files are under path@version.
						wantFile = "github.com/acme/handlers@v0.0.0/handlers.go"
					}
					method := strings.TrimPrefix(tt.ctor, "(*Users).") + ".func" + m[1]
					if f.Type != tt.typ || f.Method != method || f.User != tt.user || f.File != wantFile ||
						f.StartLine != sourceLine(t, filepath.Join(src, tt.file), tt.decl) {
						t.Errorf("%s: %+v; want type %s method %s file %s", fi.Name, f, tt.typ, method, wantFile)
					}
					if pkg, _, _ := b.SplitName(fi.Name); pkg != tt.pkg {
						t.Errorf("SplitName(%s) package %s, want %s", fi.Name, pkg, tt.pkg)
					}
					if b.IsUser(fi.Name) != tt.user {
						t.Errorf("IsUser(%s) = %t", fi.Name, !tt.user)
					}
				}
				if !found {
					t.Errorf("no closure main.exercise.%s.funcN in the corpus: not inlined?", tt.ctor)
				}
			}
			// The other signal, for binaries whose inline tree does not
			// name the constructor: the package of functions declared in
			// the closure's file or directory.
			if got := b.pkgOfFile(file("shop/api/api.go")); got != "github.com/acme/shop/api" {
				t.Errorf("pkgOfFile(api.go) = %q", got)
			}
			if got := b.pkgOfFile(file("shop/api/other.go")); got != "github.com/acme/shop/api" {
				t.Errorf("pkgOfFile(api/other.go) = %q (by directory)", got)
			}
			if got := b.pkgOfFile(file("shop/health/health.go")); got != "" {
				t.Errorf("pkgOfFile(health.go) = %q; the package has no function left", got)
			}
		})
	}
}

// TestUnknownModuledataLayout breaks the newest Go's moduledata so that no
// known layout fits it, as a future Go's might not: Open must refuse the
// binary naming its Go version, not answer without inline frames.
func TestUnknownModuledataLayout(t *testing.T) {
	good, err := os.ReadFile(corpusBinary(t, newestDefault))
	if err != nil {
		t.Fatal(err)
	}
	b0, err := NewBinary("good", good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	md := b0.im.f.Section(".go.module")
	if md == nil {
		t.Fatal("no .go.module section")
	}
	c := append([]byte(nil), good...)
	// Go 1.27's etypes (word 39) below types: no layout fits any more.
	clear(c[md.Offset+39*8 : md.Offset+40*8])
	_, err = NewBinary("future", c, Options{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), testutil.NewestGo) {
		t.Fatalf("NewBinary = %v; want ErrUnsupported naming %s", err, testutil.NewestGo)
	}
	t.Log(err)
}
