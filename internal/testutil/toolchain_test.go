package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGoTool checks that the newest toolchain is found and reports its own
// version, and that CI fetches the same one up front.
func TestGoTool(t *testing.T) {
	goTool := GoTool(t, NewestGo)
	cmd := exec.Command(goTool, "env", "GOVERSION")
	cmd.Env = GoToolEnv()
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != NewestGo {
		t.Fatalf("%s env GOVERSION = %q, %v; want %s", goTool, out, err, NewestGo)
	}
	if p, err := GoToolPath(""); p != "go" || err != nil {
		t.Errorf(`GoToolPath("") = %q, %v`, p, err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "GOTOOLCHAIN="+NewestGo+" ") {
		t.Errorf(".ci/run does not fetch %s", NewestGo)
	}
}
