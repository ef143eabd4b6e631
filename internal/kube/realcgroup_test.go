package kube

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
)

// cgroupMounts returns the cgroup v2 mount point and the v1 "pids"
// hierarchy's mount point of this machine, either of which may be "".
func cgroupMounts(t *testing.T) (v2, v1pids string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint opts ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || fields[3] != "/" {
			continue
		}
		switch {
		case tail[0] == "cgroup2" && v2 == "":
			v2 = fields[4]
		case tail[0] == "cgroup" && v1pids == "" && hasOpt(tail[2], "pids"):
			v1pids = fields[4]
		}
	}
	return v2, v1pids
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// makeCgroup creates dir (and parents) under a cgroup mount and removes
// what it created when the test ends, deepest first.
func makeCgroup(t *testing.T, mount, rel string) string {
	t.Helper()
	var created []string
	p := mount
	for _, e := range strings.Split(strings.Trim(rel, "/"), "/") {
		p = filepath.Join(p, e)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatalf("create cgroup %s: %v", p, err)
		}
		created = append(created, p)
	}
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			if err := os.Remove(created[i]); err != nil {
				t.Errorf("remove cgroup %s: %v", created[i], err)
			}
		}
	})
	return p
}

// startIn starts a bounded sleeper and moves it into the given cgroups.
func startIn(t *testing.T, cgroups ...string) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after makeCgroup's cleanups, so it runs first: the cgroups
	// must be empty before they can be removed.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for _, cg := range cgroups {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatalf("move %d into %s: %v", cmd.Process.Pid, cg, err)
		}
	}
	return cmd.Process.Pid
}

func procCgroup(pid int) func() ([]string, error) {
	return func() ([]string, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			return nil, err
		}
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
	}
}

// TestSelectRealCgroups puts real processes into kubelet-shaped cgroups (v2
// systemd driver, v1 cgroupfs driver) and selects them from the
// /proc/PID/cgroup files the kernel writes, read both from the host's cgroup
// namespace and, as a DaemonSet pod does, from another pod's container
// cgroup namespace.
func TestSelectRealCgroups(t *testing.T) {
	testutil.RequireRoot(t)
	v2, v1pids := cgroupMounts(t)
	if v2 == "" && v1pids == "" {
		if testutil.InCI() {
			t.Fatal("no cgroup v2 mount and no v1 pids hierarchy")
		}
		t.Skip("no cgroup v2 mount and no v1 pids hierarchy")
	}
	const (
		appUID    = "c0ffee00-1234-4abc-8def-0123456789ab"
		daemonUID = "da300000-1234-4abc-8def-0123456789ab"
	)
	// A prefix of our own keeps these cgroups apart from the machine's.
	root := fmt.Sprintf("originagent-test-%d", os.Getpid())
	appID, daemonID := hexID(0xa), hexID(0xd)
	app := newPod("shop", "api-0", appUID, map[string]string{EnabledLabel: "true"}, "api", "containerd://"+appID)

	type form struct {
		name      string
		mount     string
		appRel    string
		daemonRel string
	}
	var forms []form
	if v2 != "" {
		u, d := strings.ReplaceAll(appUID, "-", "_"), strings.ReplaceAll(daemonUID, "-", "_")
		forms = append(forms, form{"v2 systemd containerd", v2,
			root + "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice/cri-containerd-" + appID + ".scope",
			root + "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + d + ".slice/cri-containerd-" + daemonID + ".scope"})
	}
	if v1pids != "" {
		forms = append(forms, form{"v1 cgroupfs", v1pids,
			root + "/kubepods/burstable/pod" + appUID + "/" + appID,
			root + "/kubepods/pod" + daemonUID + "/" + daemonID})
	}
	s := startSelector(t, Options{Client: fake.NewClientset(app), NodeName: node})
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			appCG := makeCgroup(t, f.mount, f.appRel)
			daemonCG := makeCgroup(t, f.mount, f.daemonRel)
			pid := startIn(t, appCG)

			want := map[string]string{LabelPod: "api-0", LabelNamespace: "shop", LabelContainer: "api", LabelPodUID: appUID, LabelContainerID: appID}
			d := s.Select(&discover.Process{PID: pid, CgroupPaths: procCgroup(pid)})
			if !d.Selected || fmt.Sprint(d.Labels) != fmt.Sprint(want) {
				lines, _ := procCgroup(pid)()
				t.Errorf("host view: %+v, want selected with %v\n/proc/%d/cgroup: %q", d, want, pid, lines)
			}

			// The DaemonSet's view: a reader in its own pod's container
			// cgroup and cgroup namespace sees "/../../..." paths.
			reader := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec unshare --cgroup cat "/proc/$2/cgroup"`, "sh", daemonCG, strconv.Itoa(pid))
			out, err := reader.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("read from another cgroup namespace: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			t.Logf("/proc/%d/cgroup from the daemon's cgroup namespace: %q", pid, lines)
			if !strings.Contains(string(out), "/..") {
				t.Errorf("the reader's cgroup namespace did not make paths relative: %q", lines)
			}
			d = s.Select(&discover.Process{PID: pid, CgroupPaths: func() ([]string, error) { return lines, nil }})
			if !d.Selected || fmt.Sprint(d.Labels) != fmt.Sprint(want) {
				t.Errorf("view from another cgroup namespace %q: %+v, want selected with %v", lines, d, want)
			}
		})
	}
}
