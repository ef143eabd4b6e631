package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/symbolize"
)

// The commands are run on the go command of the local toolchain, a real,
// large Go binary that is always present where the tests run.
func goCommand() string { return filepath.Join(runtime.GOROOT(), "bin", "go") }

func TestSymbolizeJSON(t *testing.T) {
	b, err := symbolize.Open(goCommand(), symbolize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, ok := b.Func("main.main")
	if !ok {
		t.Fatal("no main.main in the go command")
	}
	cmd := newSymbolizeCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--json", goCommand(), fmt.Sprintf("%#x", fi.Entry), fmt.Sprintf("%x", fi.Entry+1)})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var got [][]map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got) != 2 || len(got[0]) == 0 {
		t.Fatalf("got %s", out.String())
	}
	f := got[0][len(got[0])-1]
	for _, k := range []string{"function", "file", "line", "start_line", "type", "method", "user"} {
		if _, ok := f[k]; !ok {
			t.Errorf("frame lacks %q: %v", k, f)
		}
	}
	if f["function"] != "main.main" || f["type"] != "main" || f["method"] != "main" || f["user"] != true ||
		!strings.HasSuffix(f["file"].(string), "main.go") || f["start_line"].(float64) <= 0 {
		t.Errorf("frame %v", f)
	}
}

func TestSymbolizeBadAddress(t *testing.T) {
	cmd := newSymbolizeCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{goCommand(), "zz"})
	if err := cmd.Execute(); err == nil {
		t.Error("non-hex address accepted")
	}
	cmd.SetArgs([]string{goCommand(), "0x10"})
	if err := cmd.Execute(); err == nil {
		t.Error("address outside text accepted")
	}
}

func TestInspect(t *testing.T) {
	for _, arg := range []string{goCommand(), fmt.Sprint(os.Getpid())} {
		cmd := newInspectCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs([]string{"--json", arg})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("inspect %s: %v", arg, err)
		}
		var info symbolize.BuildInfo
		if err := json.Unmarshal(out.Bytes(), &info); err != nil {
			t.Fatal(err)
		}
		if info.GoVersion != runtime.Version() || info.Funcs == 0 || info.PclntabSize == 0 {
			t.Errorf("inspect %s: %+v", arg, info)
		}
	}
}
