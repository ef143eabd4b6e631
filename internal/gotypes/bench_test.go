package gotypes

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// goCommand is a large (15 MB, ~2000 packages) Go binary without DWARF: the
// start-up cost of the runtime-type path.
func goCommand(b *testing.B) string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		b.Skipf("no go command at %s: %v", p, err)
	}
	return p
}

// startup is what the probe engine does per target binary.
func startup(b *testing.B, path, typ, field string, opts ...Option) {
	bin, err := Open(path, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer bin.Close()
	if _, err := bin.FieldOffset(typ, field); err != nil {
		b.Fatal(err)
	}
	if _, err := bin.Type("*" + typ); err != nil {
		b.Fatal(err)
	}
	its, err := bin.Itabs()
	if err != nil || len(its) == 0 {
		b.Fatalf("Itabs: %d, %v", len(its), err)
	}
}

func BenchmarkStartup(b *testing.B) {
	dd := func(b *testing.B) string { return testCorpus.build(b, "ddtrace", variants[0]) }
	ddsw := func(b *testing.B) string { return testCorpus.build(b, "ddtrace", variants[1]) }
	for _, bc := range []struct {
		name        string
		path        func(*testing.B) string
		typ, field  string
		openOnly    bool
		warmLookups bool
		opts        []Option
	}{
		{name: "go-command/open", path: goCommand, openOnly: true},
		{name: "go-command/open+lookups", path: goCommand, typ: "net/http.Request", field: "ctx"},
		{name: "go-command/warm-FieldOffset", path: goCommand, typ: "net/http.Request", field: "ctx", warmLookups: true},
		{name: "ddtrace-dwarf/open+lookups", path: dd, typ: "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", field: "context"},
		{name: "ddtrace-dwarf-RuntimeFirst/open+lookups", path: dd, typ: "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", field: "context", opts: []Option{RuntimeFirst()}},
		{name: "ddtrace-sw/open+lookups", path: ddsw, typ: "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", field: "context"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := bc.path(b)
			switch {
			case bc.openOnly:
				for b.Loop() {
					bin, err := Open(path)
					if err != nil {
						b.Fatal(err)
					}
					bin.Close()
				}
			case bc.warmLookups:
				bin, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				defer bin.Close()
				if _, err := bin.FieldOffset(bc.typ, bc.field); err != nil {
					b.Fatal(err) // builds the index outside the timed loop
				}
				for b.Loop() {
					if _, err := bin.FieldOffset(bc.typ, bc.field); err != nil {
						b.Fatal(err)
					}
				}
			default:
				for b.Loop() {
					startup(b, path, bc.typ, bc.field, bc.opts...)
				}
			}
		})
	}
}
