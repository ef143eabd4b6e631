package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testUID       = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	testCID       = "3f5e2d4c1b0a99887766554433221100ffeeddccbbaa00112233445566778899"
	testStaticUID = "6d1e1b4b7f3c9a0e2d5f8a7b6c4e3d21"
	testStaticCID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// readCgroupFile splits a testdata /proc/PID/cgroup file as procfs gives it.
func readCgroupFile(t testing.TB, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cgroup", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func TestParseCgroup(t *testing.T) {
	notInPod := errors.New("not in pod")
	malformed := errors.New("malformed")
	tests := []struct {
		file string
		want Container
		err  error
	}{
		{"containerd-v2-systemd-burstable.txt", Container{testUID, testCID, RuntimeContainerd, "burstable"}, nil},
		{"containerd-v2-systemd-besteffort.txt", Container{testUID, testCID, RuntimeContainerd, "besteffort"}, nil},
		{"containerd-v2-systemd-guaranteed.txt", Container{testUID, testCID, RuntimeContainerd, "guaranteed"}, nil},
		{"containerd-v2-cgroupfs-burstable.txt", Container{testUID, testCID, "", "burstable"}, nil},
		{"containerd-v2-cgroupfs-besteffort.txt", Container{testUID, testCID, "", "besteffort"}, nil},
		{"containerd-v2-cgroupfs-guaranteed.txt", Container{testUID, testCID, "", "guaranteed"}, nil},
		{"containerd-v2-systemd-other-cgroupns.txt", Container{testUID, testCID, RuntimeContainerd, "besteffort"}, nil},
		{"containerd-v2-kind-nested.txt", Container{testUID, testCID, RuntimeContainerd, "besteffort"}, nil},
		{"containerd-v1-systemd-burstable.txt", Container{testUID, testCID, RuntimeContainerd, "burstable"}, nil},
		{"containerd-v1-cgroupfs-guaranteed-hybrid.txt", Container{testUID, testCID, "", "guaranteed"}, nil},
		{"crio-v2-systemd-burstable.txt", Container{testUID, testCID, RuntimeCRIO, "burstable"}, nil},
		{"crio-v2-systemd-nested-container.txt", Container{testUID, testCID, RuntimeCRIO, "besteffort"}, nil},
		{"crio-v2-conmon.txt", Container{testUID, "", "", "burstable"}, nil},
		{"crio-v1-systemd-guaranteed.txt", Container{testUID, testCID, RuntimeCRIO, "guaranteed"}, nil},
		{"docker-v1-systemd-burstable.txt", Container{testUID, testCID, RuntimeDocker, "burstable"}, nil},
		{"docker-v1-cgroupfs-besteffort.txt", Container{testUID, testCID, "", "besteffort"}, nil},
		{"docker-v2-systemd-besteffort.txt", Container{testUID, testCID, RuntimeDocker, "besteffort"}, nil},
		{"real-v2-systemd-seen-from-pod-cgroupns.txt", Container{"c0ffee00-1234-4abc-8def-0123456789ab", hexID(0xa), RuntimeContainerd, "besteffort"}, nil},
		{"real-v1-cgroupfs-seen-from-pod-cgroupns.txt", Container{"c0ffee00-1234-4abc-8def-0123456789ab", hexID(0xa), "", "burstable"}, nil},
		{"cgroupfs-same-qos-other-cgroupns.txt", Container{testUID, testCID, "", ""}, nil},
		{"static-pod-v2-cgroupfs.txt", Container{testStaticUID, testStaticCID, "", "burstable"}, nil},
		{"pod-cgroup-only-v2.txt", Container{testUID, "", "", "burstable"}, nil},
		{"docker-standalone-v2.txt", Container{}, notInPod},
		{"docker-standalone-v1.txt", Container{}, notInPod},
		{"host-v2-session.txt", Container{}, notInPod},
		{"host-v1-init.txt", Container{}, notInPod},
		{"bad-uid-v2.txt", Container{}, notInPod},
		{"malformed.txt", Container{}, malformed},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(strings.TrimSuffix(tt.file, ".txt"), func(t *testing.T) {
			got, err := ParseCgroup(readCgroupFile(t, tt.file))
			switch tt.err {
			case nil:
				if err != nil {
					t.Fatalf("ParseCgroup: %v", err)
				}
				if got != tt.want {
					t.Errorf("ParseCgroup = %+v, want %+v", got, tt.want)
				}
			case notInPod:
				if !errors.Is(err, ErrNotInPod) {
					t.Errorf("ParseCgroup = %+v, %v; want ErrNotInPod", got, err)
				}
			case malformed:
				if err == nil || errors.Is(err, ErrNotInPod) {
					t.Errorf("ParseCgroup = %+v, %v; want a malformed-line error", got, err)
				}
			}
		})
	}
	// Every corpus file must have an expectation, so the corpus cannot
	// grow files nobody checks.
	entries, err := os.ReadDir(filepath.Join("testdata", "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/cgroup/%s has no expectation in TestParseCgroup", e.Name())
		}
	}
}

// TestParseCgroupSelf parses this machine's own /proc/self/cgroup: whatever
// it is, the parser must answer without a malformed-line error.
func TestParseCgroupSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	_, err = ParseCgroup(strings.Split(strings.TrimRight(string(b), "\n"), "\n"))
	if err != nil && !errors.Is(err, ErrNotInPod) {
		t.Fatalf("ParseCgroup(/proc/self/cgroup %q): %v", b, err)
	}
}

func FuzzParseCgroup(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "cgroup"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "cgroup", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCgroup(strings.Split(s, "\n"))
		if err != nil {
			if c != (Container{}) {
				t.Fatalf("error %v with non-zero result %+v", err, c)
			}
			return
		}
		if !validPodUID(c.PodUID) {
			t.Fatalf("invalid pod UID %q from %q", c.PodUID, s)
		}
		if c.ID != "" && !isContainerID(c.ID) {
			t.Fatalf("invalid container ID %q from %q", c.ID, s)
		}
		if c.ID == "" && c.Runtime != "" {
			t.Fatalf("runtime %q without container ID", c.Runtime)
		}
		switch c.QoS {
		case "guaranteed", "burstable", "besteffort", "":
		default:
			t.Fatalf("QoS %q from %q", c.QoS, s)
		}
	})
}
