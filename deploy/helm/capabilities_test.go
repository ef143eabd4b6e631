package helm_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/originagent/originagent/internal/testutil"
)

// capResult is one line of capcheck's output.
type capResult struct {
	Op    string `json:"op"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// capLab is a target process owned by another user and the capcheck binary
// that probes it.
type capLab struct {
	bin, private string
	pid          int
}

const nobody = 65534

func newCapLab(t *testing.T) *capLab {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		if testutil.InCI() {
			t.Fatalf("setpriv (util-linux) is needed: %v", err)
		}
		t.Skipf("no setpriv: %v", err)
	}
	dir := t.TempDir()
	// The target runs as nobody and must reach its binary.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lab := &capLab{bin: filepath.Join(dir, "capcheck"), private: filepath.Join(dir, "private", "secret")}
	build := exec.Command("go", "build", "-o", lab.bin, "./capcheck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build capcheck: %v\n%s", err, out)
	}
	// A file only the target's user may read, in a directory only it may
	// search: what a container image's application directory often is.
	if err := os.Mkdir(filepath.Dir(lab.private), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lab.private, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(lab.private), lab.private} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}

	target := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups", lab.bin, "target")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = target.Process.Kill()
		_ = target.Wait()
	})
	lab.pid = target.Process.Pid
	// setpriv execs the target; wait (bounded) until it has.
	for i := 0; ; i++ {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", lab.pid)); err == nil && exe == lab.bin {
			break
		}
		if i == 500 {
			t.Fatal("target never exec'd capcheck")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return lab
}

// run runs capcheck as uid 0 with exactly caps: no inheritable set and a
// bounding set of caps, so that uid 0's permitted and effective sets after
// exec are caps, as in a container with drop [ALL] and add caps.
func (lab *capLab) run(t *testing.T, caps []string) map[string]capResult {
	t.Helper()
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + strings.ToLower(c)
	}
	cmd := exec.Command("setpriv", "--inh-caps=-all", "--bounding-set="+bounding,
		lab.bin, "probe", strconv.Itoa(lab.pid), lab.bin, lab.private)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("capcheck with %v: %v\n%s", caps, err, stderr.Bytes())
	}
	res := map[string]capResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r capResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("capcheck output %q: %v", sc.Text(), err)
		}
		res[r.Op] = r
	}
	if len(res) == 0 {
		t.Fatalf("capcheck with %v printed nothing", caps)
	}
	return res
}

func without(caps []string, drop string) []string {
	var out []string
	for _, c := range caps {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

func summary(res map[string]capResult) string {
	var failed []string
	for op, r := range res {
		if !r.OK {
			failed = append(failed, op)
		}
	}
	slices.Sort(failed)
	return fmt.Sprintf("failed %v", failed)
}

// uprobesNeedSysAdmin reports whether the running kernel is 6.16 or later,
// where perf's uprobe PMU requires CAP_SYS_ADMIN again.
func uprobesNeedSysAdmin(t *testing.T) (bool, string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return major > 6 || major == 6 && minor >= 16, rel
}

// TestCapabilities runs the daemon's privileged operations on a process of
// another user with exactly the capabilities the chart renders, then with
// each one removed, and checks that the set suffices and every member is
// needed.
func TestCapabilities(t *testing.T) {
	lab := newCapLab(t)
	needSysAdmin, release := uprobesNeedSysAdmin(t)

	// Which operation fails without each capability.
	needs := map[string]string{
		"SYS_ADMIN":          "uprobe_attach_pid",
		"BPF":                "bpf_map_create",
		"PERFMON":            "bpf_prog_load_uprobe",
		"SYS_PTRACE":         "proc_exe_open",
		"DAC_READ_SEARCH":    "proc_root_private",
		"CHECKPOINT_RESTORE": "proc_map_files_open",
	}
	for _, profile := range []struct {
		name string
		set  string
		// uprobes says whether uprobe attachment must work with this set.
		uprobes bool
	}{
		{"sysAdmin", "capabilities.sysAdmin=true", true},
		{"perfmon", "capabilities.sysAdmin=false", !needSysAdmin},
	} {
		t.Run(profile.name, func(t *testing.T) {
			_, c := daemonContainer(t, render(t, profile.set))
			caps := capNames(c)
			all := lab.run(t, caps)
			for op, r := range all {
				uprobe := strings.HasPrefix(op, "uprobe_")
				switch {
				case uprobe && !profile.uprobes:
					if r.OK {
						t.Errorf("kernel %s: %s worked without CAP_SYS_ADMIN; the chart's comment on sysAdmin is wrong", release, op)
					} else {
						t.Logf("kernel %s: %s needs CAP_SYS_ADMIN, as documented: %s", release, op, r.Error)
					}
				case !r.OK:
					t.Errorf("with the chart's capabilities %v, %s failed: %s", caps, op, r.Error)
				}
			}
			for _, cp := range caps {
				res := lab.run(t, without(caps, cp))
				op := needs[cp]
				if op == "" {
					t.Fatalf("no operation known to need %s", cp)
				}
				if r, ok := res[op]; !ok || r.OK {
					t.Errorf("without %s, %s still worked: the capability looks unneeded", cp, op)
				}
				t.Logf("without %-18s %s", cp, summary(res))
			}
		})
	}
	// And nothing works with no capability at all: the checks are real.
	for op, r := range lab.run(t, nil) {
		if r.OK && op != "proc_maps" {
			t.Errorf("%s worked with no capability", op)
		}
	}
}
