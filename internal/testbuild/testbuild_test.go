package testbuild

import (
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
)

func TestBuildOncePerRun(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	var posts atomic.Int32
	spec := Spec{
		Dir:      "testdata/hello",
		Pkg:      ".",
		Flags:    []string{"-trimpath"},
		Post:     func(string) error { posts.Add(1); return nil },
		PostName: "count",
	}
	paths := BuildAll(t, spec, spec, spec)
	if paths[0] != paths[1] || paths[1] != paths[2] {
		t.Fatalf("one spec gave different paths: %q", paths)
	}
	if again := Build(t, spec); again != paths[0] {
		t.Fatalf("second Build: %s, first %s", again, paths[0])
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("built %d times, want once", n)
	}
	out, err := exec.Command(paths[0]).Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("built program: %q, %v", out, err)
	}

	other := spec
	other.Flags = []string{"-trimpath", "-ldflags=-s -w"}
	if p := Build(t, other); p == paths[0] {
		t.Fatalf("different flags share %s", p)
	}
	if n := posts.Load(); n != 2 {
		t.Fatalf("after a second spec: built %d times, want 2", n)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	if _, err := build(Spec{Dir: "testdata/hello", Pkg: "./missing"}); err == nil {
		t.Fatal("building a missing package succeeded")
	}
	if _, err := build(Spec{Dir: "testdata/hello", Pkg: ".", Post: func(string) error { return nil }}); err == nil {
		t.Fatal("Post without PostName accepted")
	}
}

func TestRunDirFromGoCommand(t *testing.T) {
	t.Setenv(DirEnv, "")
	os.Unsetenv(DirEnv)
	d1, err := runDir()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := runDir()
	if err != nil || d1 != d2 {
		t.Fatalf("runDir not stable: %s, %s (%v)", d1, d2, err)
	}
	if _, err := os.Stat(d1); err != nil {
		t.Fatal(err)
	}
}
