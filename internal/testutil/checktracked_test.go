package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckTracked runs .ci/check-tracked (the first step of make test) on
// scratch repositories: it must pass a clean tree and fail, naming the file,
// on each kind of build output.
func TestCheckTracked(t *testing.T) {
	script, err := filepath.Abs("../../.ci/check-tracked")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // an ELF executable at hand
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file string
		data       []byte
		mode       os.FileMode
		want       string // "" to pass
	}{
		{"clean", "main.go", []byte("package main\n"), 0o644, ""},
		{"script", "run", []byte("#!/bin/sh\necho hi\n"), 0o755, ""},
		{"BPF object", "bpf/x_bpfel.o", elf[:4096], 0o644, ""},
		{"executable", "originagent", elf, 0o755, "tracked compiled binary: originagent"},
		{"binary without exec bit", "cmd/tool/tool", elf[:4096], 0o644, "tracked compiled binary: cmd/tool/tool"},
		{"large file", "data.bin", make([]byte, 2*1024*1024+1), 0o644, "tracked file over 2 MB: data.bin"},
		{"exec bit, not a script", "notes.txt", []byte("hello\n"), 0o755, "not a script: notes.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			if err := os.MkdirAll(filepath.Join(repo, ".ci"), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(repo, ".ci", "check-tracked"), b, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(repo, tc.file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			git := func(args ...string) {
				cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			git("init", "-q")
			git("add", "-A")
			out, err := exec.Command("bash", filepath.Join(repo, ".ci", "check-tracked")).CombinedOutput()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("clean tree refused: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("check-tracked = %v\n%s\nwant a failure saying %q", err, out, tc.want)
			}
		})
	}
}
