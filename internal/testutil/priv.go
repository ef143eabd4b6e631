// Package testutil holds helpers shared by originagent's tests.
package testutil

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where privileged tests
// must run and fail rather than skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips t when the process is not root and CI is unset, and fails
// it when CI is set: in CI every privileged test must really run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("this test needs root (BPF, uprobes) and CI=true forbids skipping it")
	}
	t.Skip("needs root; skipped outside CI")
}
