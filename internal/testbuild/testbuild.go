// Package testbuild builds the Go programs that originagent's tests run or
// read, so that each distinct build happens once per test run however many
// tests and test packages ask for it.
//
// `go test ./...` runs each package's test binary as a child of one go
// command, in parallel; the packages ask for many of the same programs (the
// traced services, the example shop, the agent itself) and a link of a
// dd-trace-go service costs seconds. Builds are therefore shared through a
// directory on disk: ORIGINAGENT_TESTBUILD_DIR when set (make test sets it
// to a fresh directory for the run), else a directory named after the go
// command that started the test binaries, which every package of one
// `go test` run shares. Directories of earlier runs whose go command has
// exited are removed. A build is keyed by everything that selects it (the
// directory, package, flags, environment and post-processing name), not by
// the sources: within one run the sources do not change.
//
// File locks make concurrent test processes wait for a build another one is
// doing rather than repeat it, and let at most two builds of a run go at
// once (a link is mostly single-threaded; on these two-core machines more
// builds at once only slow each other down).
//
// A test binary run by hand rather than by go test shares its directory
// with every other one started from the same shell: set
// ORIGINAGENT_TESTBUILD_DIR to a fresh directory when the sources change
// between such runs.
package testbuild

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/testutil"
)

// DirEnv is the environment variable naming the shared build directory.
const DirEnv = "ORIGINAGENT_TESTBUILD_DIR"

// maxConcurrent bounds the builds of one run going at once across its test
// processes.
const maxConcurrent = 2

// Spec is one build of a main package.
type Spec struct {
	// Dir is the directory `go build` runs in (a module root or a package
	// directory).
	Dir string
	// Pkg is the package argument, e.g. "." or "./testdata/services/x".
	Pkg string
	// Flags go to `go build` before the package ("-trimpath",
	// "-ldflags=-s -w", "-buildmode=pie").
	Flags []string
	// Toolchain is the Go version to build with (testutil.NewestGo), or ""
	// for the go command on PATH. Another version is fetched through
	// GOTOOLCHAIN and the module proxy on first use, then run directly
	// with GOTOOLCHAIN=local, whatever go.mod asks for.
	Toolchain string
	// Env is added to the test's environment (CGO_ENABLED=1,
	// GOFLAGS=...).
	Env []string
	// Name is the output file's base name; the package's last element by
	// default.
	Name string
	// Post, when set, changes the built file in place before anyone uses it
	// (GNU strip, removing section headers). PostName names it in the key
	// and must be set with it.
	Post     func(path string) error
	PostName string
}

// Build returns the path of the program spec describes, building it unless
// this run already has. The file is shared by every test of the run: copy it
// before changing, moving or deleting it.
func Build(t testing.TB, spec Spec) string {
	t.Helper()
	path, err := Path(spec)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Path is Build for callers without a testing.TB (builds started ahead of
// the tests, in their own goroutines).
func Path(spec Spec) (string, error) { return build(spec) }

// BuildAll builds specs concurrently (bounded as every build is) and returns
// their paths in order, for tests that want several variants at once.
func BuildAll(t testing.TB, specs ...Spec) []string {
	t.Helper()
	paths := make([]string, len(specs))
	errs := make([]error, len(specs))
	done := make(chan struct{})
	for i, s := range specs {
		go func() {
			defer func() { done <- struct{}{} }()
			paths[i], errs[i] = build(s)
		}()
	}
	for range specs {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return paths
}

func (s Spec) key() (string, error) {
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return "", err
	}
	if s.Post != nil && s.PostName == "" {
		return "", errors.New("testbuild: Spec.Post without a PostName")
	}
	h := sha256.New()
	for _, part := range [][]string{{dir, s.Pkg, s.Name, s.PostName, s.Toolchain}, s.Flags, s.Env} {
		fmt.Fprintf(h, "%q\n", part)
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

func (s Spec) outName() string {
	if s.Name != "" {
		return s.Name
	}
	if base := filepath.Base(s.Pkg); base != "." && base != "/" {
		return base
	}
	if d, err := filepath.Abs(s.Dir); err == nil {
		return filepath.Base(d)
	}
	return "prog"
}

func build(s Spec) (string, error) {
	key, err := s.key()
	if err != nil {
		return "", err
	}
	root, err := runDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, key)
	out := filepath.Join(dir, s.outName())
	unlock, err := lockFile(filepath.Join(root, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return out, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	release, err := acquireSlot(root)
	if err != nil {
		return "", err
	}
	defer release()
	goTool, err := testutil.GoToolPath(s.Toolchain)
	if err != nil {
		return "", err
	}
	args := append(append([]string{"build", "-o", out}, s.Flags...), s.Pkg)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = s.Dir
	cmd.Env = testutil.GoToolEnv(s.Env...)
	if s.Toolchain == "" {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s %s (in %s, env %q): %v\n%s", goTool, strings.Join(args, " "), s.Dir, s.Env, err, b)
	}
	if s.Post != nil {
		if err := s.Post(out); err != nil {
			return "", fmt.Errorf("%s of %s: %w", s.PostName, out, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".done"), nil, 0o644); err != nil {
		return "", err
	}
	return out, nil
}

// runDir returns the run's shared directory, creating it.
func runDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	base := filepath.Join(os.TempDir(), fmt.Sprintf("originagent-testbuild-%d", os.Getuid()))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	ppid := os.Getppid()
	start, err := procStart(ppid)
	if err != nil {
		return "", err
	}
	removeStale(base)
	d := filepath.Join(base, fmt.Sprintf("run-%d-%s", ppid, start))
	return d, os.MkdirAll(d, 0o755)
}

// procStart returns the start time of pid in clock ticks since boot, which
// tells a go command from a later process that reuses its PID.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", fmt.Errorf("testbuild: read the go command's start time: %w", err)
	}
	// The command name is in parentheses and may hold spaces: fields
	// count from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("testbuild: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // field 22 (starttime), counted from field 3
	if len(f) <= startField {
		return "", fmt.Errorf("testbuild: short /proc/%d/stat", pid)
	}
	return f[startField], nil
}

// removeStale removes the run directories of go commands that have exited.
// A directory still locked by a build in progress is left alone.
func removeStale(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		parts := strings.Split(e.Name(), "-")
		if len(parts) != 3 || parts[0] != "run" {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		if start, err := procStart(pid); err == nil && start == parts[2] {
			continue // that go command still runs
		}
		// Old enough that no test of that run can still be building.
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

// lockFile takes an exclusive lock on path, waiting for it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("testbuild: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// acquireSlot waits for one of the run's build slots.
func acquireSlot(root string) (func(), error) {
	for {
		for i := range maxConcurrent {
			f, err := os.OpenFile(filepath.Join(root, fmt.Sprintf("slot-%d.lock", i)), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				return nil, err
			}
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
				return func() { f.Close() }, nil
			}
			f.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
}
