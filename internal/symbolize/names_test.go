package symbolize

import "testing"

func TestSplitName(t *testing.T) {
	tests := []struct {
		name, pkg, typ, method string
	}{
		{"github.com/acme/shop/api.(*Users).Get", "github.com/acme/shop/api", "github.com/acme/shop/api.Users", "Get"},
		{"github.com/acme/shop/api.Users.Count", "github.com/acme/shop/api", "github.com/acme/shop/api.Users", "Count"},
		{"main.usersHandler", "main", "main", "usersHandler"},
		{"main.main", "main", "main", "main"},
		{"github.com/acme/shop/api.Routes.func1", "github.com/acme/shop/api", "github.com/acme/shop/api", "Routes.func1"},
		{"github.com/acme/shop/api.Routes.func3.1", "github.com/acme/shop/api", "github.com/acme/shop/api", "Routes.func3.1"},
		{"github.com/acme/shop/api.(*Users).Get.func1", "github.com/acme/shop/api", "github.com/acme/shop/api.Users", "Get.func1"},
		{"github.com/acme/shop/api.(*Users).Get-fm", "github.com/acme/shop/api", "github.com/acme/shop/api.Users", "Get-fm"},
		{"github.com/acme/shop/api.init.0", "github.com/acme/shop/api", "github.com/acme/shop/api", "init.0"},
		{"github.com/acme/shop/api.init", "github.com/acme/shop/api", "github.com/acme/shop/api", "init"},
		{"main.run.gowrap1", "main", "main", "run.gowrap1"},
		{"main.run.deferwrap2", "main", "main", "run.deferwrap2"},
		{"github.com/acme/shop/api.Map[go.shape.int,go.shape.string]", "github.com/acme/shop/api", "github.com/acme/shop/api", "Map[...]"},
		{"github.com/acme/shop/api.(*List[go.shape.int]).Push", "github.com/acme/shop/api", "github.com/acme/shop/api.List[...]", "Push"},
		{"github.com/acme/shop/api.List[go.shape.string].Len", "github.com/acme/shop/api", "github.com/acme/shop/api.List[...]", "Len"},
		{"github.com/acme/shop/api.Map[github.com/acme/shop/store.Item,go.shape.int]", "github.com/acme/shop/api", "github.com/acme/shop/api", "Map[...]"},
		{"gopkg.in/yaml%2ev3.(*parser).parse", "gopkg.in/yaml.v3", "gopkg.in/yaml.v3.parser", "parse"},
		{"net/http.HandlerFunc.ServeHTTP", "net/http", "net/http.HandlerFunc", "ServeHTTP"},
		{"github.com/acme/shop/api.glob..func1", "github.com/acme/shop/api", "github.com/acme/shop/api", "glob..func1"},
		{"github.com/acme/shop/api.Map[go.shape.int].func1", "github.com/acme/shop/api", "github.com/acme/shop/api", "Map[...].func1"},
		{"main.(*T).M.func1.1", "main", "main.T", "M.func1.1"},
		{"main.(*Box[string]).Get-fm", "main", "main.Box[...]", "Get-fm"},
		{"main.Pair[go.shape.int,go.shape.string].Key", "main", "main.Pair[...]", "Key"},
		{"runtime.goexit", "runtime", "runtime", "goexit"},
		{"type:.eq.[2]interface {}", "", "", "type:.eq.[2]interface {}"},
		{"go:buildid", "", "", "go:buildid"},
		{"weird", "", "", "weird"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		pkg, typ, method := SplitName(tt.name)
		if pkg != tt.pkg || typ != tt.typ || method != tt.method {
			t.Errorf("SplitName(%q) = %q, %q, %q; want %q, %q, %q", tt.name, pkg, typ, method, tt.pkg, tt.typ, tt.method)
		}
	}
}

func TestIsUserPkg(t *testing.T) {
	acme := classifier{mainModule: "github.com/acme/shop"}
	withOpts := classifier{
		mainModule: "github.com/acme/shop",
		include:    []string{"github.com/acme/lib", "github.com/acme/shop/vendor/github.com/acme/fork"},
		exclude:    []string{"github.com/acme/shop/gen"},
	}
	cmdLine := classifier{mainModule: "command-line-arguments"}
	dd := newClassifier(&BuildInfo{Main: Module{Path: "github.com/DataDog/ledger"},
		Deps: []Module{{Path: "github.com/DataDog/dd-trace-go/v2", Version: "v2.12.0"}}}, nil, nil)
	mods := newClassifier(&BuildInfo{Main: Module{Path: "github.com/acme/shop"}, Deps: []Module{
		{Path: "github.com/acme/handlers", Version: "v0.0.0", Replace: &Module{Path: "../handlers"}},
		{Path: "github.com/acme/abs", Version: "v0.0.0", Replace: &Module{Path: "/src/abs"}},
		{Path: "github.com/acme/remote", Version: "v1.0.0", Replace: &Module{Path: "github.com/fork/remote", Version: "v1.0.1"}},
		{Path: "github.com/acme/shop/tools", Version: "v1.2.0"},
		{Path: "github.com/acme/shop/plugins", Version: "v0.0.0", Replace: &Module{Path: "./plugins"}},
		{Path: "github.com/DataDog/dd-trace-go/v2", Version: "v0.0.0", Replace: &Module{Path: "../dd-trace-go"}},
		{Path: "github.com/acme/nomain", Version: "v0.0.0", Replace: &Module{Path: "nomain"}},
	}}, nil, []string{"github.com/acme/handlers/gen"})
	tests := []struct {
		c    classifier
		pkg  string
		want bool
	}{
		{acme, "github.com/acme/shop", true},
		{acme, "github.com/acme/shop/api", true},
		{acme, "github.com/acme/shopping", false},
		{acme, "main", true},
		{acme, "runtime", false},
		{acme, "net/http", false},
		{acme, "github.com/gin-gonic/gin", false},
		{acme, "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer", false},
		{acme, "golang.org/x/net/http2", false},
		{acme, "github.com/acme/shop/vendor/github.com/gin-gonic/gin", false},
		{acme, "github.com/acme/lib", false},
		{acme, "", false},
		{withOpts, "github.com/acme/lib/db", true},
		{withOpts, "github.com/acme/shop/gen/pb", false},
		{withOpts, "github.com/acme/shop/api", true},
		{withOpts, "github.com/acme/shop/vendor/github.com/acme/fork/x", true},
		{cmdLine, "main", true},
		{cmdLine, "command-line-arguments", false},
		{classifier{}, "main", true},
		{classifier{}, "fmt", false},
		// An include prefix wins over the known list (issue 11).
		{classifier{mainModule: "github.com/acme/shop", include: []string{"net/http"}}, "net/http", true},
		// So does the main module: Datadog's own services.
		{dd, "github.com/DataDog/ledger", true},
		{dd, "github.com/DataDog/ledger/internal/api", true},
		{dd, "main", true},
		{dd, "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer", false},
		{dd, "github.com/DataDog/ledger/vendor/github.com/DataDog/dd-trace-go/v2/ddtrace/tracer", false},
		// Modules replaced by a directory are user code, unless known or
		// excluded; the longest module path owns a package.
		{mods, "github.com/acme/handlers", true},
		{mods, "github.com/acme/handlers/users", true},
		{mods, "github.com/acme/abs/x", true},
		{mods, "github.com/acme/handlerskit", false},
		{mods, "github.com/acme/remote/x", false},
		{mods, "github.com/acme/shop/tools/gen", false}, // nested module, from a registry
		{mods, "github.com/acme/shop/plugins/p", true},  // nested module, replaced locally
		{mods, "github.com/acme/shop/api", true},
		{mods, "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer", false},
		{mods, "github.com/acme/handlers/gen", false},
		{mods, "github.com/acme/nomain", false},
	}
	for _, tt := range tests {
		if got := tt.c.isUserPkg(tt.pkg); got != tt.want {
			t.Errorf("%+v isUserPkg(%q) = %t, want %t", tt.c, tt.pkg, got, tt.want)
		}
	}
}

func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"a.(*B).C", "a/b.c[d.e/f].g", "(*", "x.(*y", "a.b.func1.2", "%2e.x", "p.(*T[a]).M-fm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		pkg, typ, method := SplitName(name)
		if len(pkg) > len(name) {
			t.Fatalf("SplitName(%q) = %q, %q, %q: package longer than the name", name, pkg, typ, method)
		}
		if k := matchClose(name); k >= len(name) {
			t.Fatalf("matchClose(%q) = %d", name, k)
		}
		isClosureSuffix(name)
		hasCompilerElem(name)
	})
}

func TestClosureNameParts(t *testing.T) {
	suffixes := []struct {
		s    string
		want bool
	}{
		{".func3", true}, {".func3.1", true}, {".gowrap2", true}, {".deferwrap1", true}, {"-range1", true},
		{".func1-range2.1", true}, {".1", true}, {"", false}, {".func", false}, {".Health.func3", false},
		{"func3", false}, {".func3x", false},
	}
	for _, tt := range suffixes {
		if got := isClosureSuffix(tt.s); got != tt.want {
			t.Errorf("isClosureSuffix(%q) = %t", tt.s, got)
		}
	}
	elems := []struct {
		method string
		want   bool
	}{
		{"Health", false}, {"Health.func3", true}, {"(*Users).Get", false}, {"Get-fm", true},
		{"init.0", true}, {"Map[...]", false}, {"Users.Count", false}, {"main.Health.func3", true},
	}
	for _, tt := range elems {
		if got := hasCompilerElem(tt.method); got != tt.want {
			t.Errorf("hasCompilerElem(%q) = %t", tt.method, got)
		}
	}
	for s, want := range map[string]int{"(*T).M": 3, "[a[b]].x": 5, "[a(b]": -1, "x": -1} {
		if got := matchClose(s); got != want {
			t.Errorf("matchClose(%q) = %d, want %d", s, got, want)
		}
	}
}
