package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NewestGo is the newest Go release the tests build targets with, besides
// the local toolchain the project itself is built with.
const NewestGo = "go1.27.3"

// GoTool returns the go command of toolchain version (e.g. NewestGo), or of
// the running toolchain for "". Another version is fetched through
// GOTOOLCHAIN and the module proxy on first use (once per machine); when it
// cannot be had, t fails: a target that cannot be built is not a pass.
func GoTool(t testing.TB, version string) string {
	t.Helper()
	p, err := GoToolPath(version)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// GoToolPath is GoTool for callers without a testing.TB (builds running
// in their own goroutines).
func GoToolPath(version string) (string, error) {
	if version == "" {
		return "go", nil
	}
	cmd := exec.Command("go", "env", "GOROOT", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("fetch Go toolchain %s (GOTOOLCHAIN=%s, through the module proxy): %w\n%s", version, version, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[1] != version {
		return "", fmt.Errorf("GOTOOLCHAIN=%s go env GOROOT GOVERSION = %q", version, out)
	}
	return filepath.Join(f[0], "bin", "go"), nil
}

// GoToolEnv returns the environment for running a go command from GoTool:
// GOTOOLCHAIN=local, so that it builds with itself whatever go.mod asks for.
func GoToolEnv(env ...string) []string {
	return append(append(os.Environ(), "GOTOOLCHAIN=local"), env...)
}
