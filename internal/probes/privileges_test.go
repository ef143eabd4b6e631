package probes

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/testutil"
)

// TestCheckPrivileges runs the check as root (must pass) and in a child
// that drops every capability (must name what is missing).
func TestCheckPrivileges(t *testing.T) {
	testutil.RequireRoot(t)
	if err := CheckPrivileges(); err != nil {
		t.Fatalf("as root: %v", err)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) not found: %v", err)
	}
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set=-all", "--", os.Args[0])
	cmd.Env = append(os.Environ(), "ORIGINAGENT_PRIVTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child's error does not name %s:\n%s", want, out)
		}
	}
}

// TestMain runs the unprivileged half of TestCheckPrivileges when the test
// binary is started as its child without capabilities: it prints the error
// CheckPrivileges returns and exits non-zero when there is none.
func TestMain(m *testing.M) {
	if os.Getenv("ORIGINAGENT_PRIVTEST_CHILD") == "1" {
		err := CheckPrivileges()
		if err == nil {
			fmt.Println("no error without capabilities")
			os.Exit(1)
		}
		fmt.Println(err)
		os.Exit(0)
	}
	code := m.Run()
	removeTargets()
	os.Exit(code)
}
