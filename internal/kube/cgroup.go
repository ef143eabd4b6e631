package kube

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Container runtimes recognised in cgroup paths.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
)

// ErrNotInPod reports a /proc/PID/cgroup file whose paths name no Kubernetes
// pod: a host process, or a container started outside the kubelet.
var ErrNotInPod = errors.New("cgroup names no Kubernetes pod")

// Container is where a process runs, as its cgroup path tells it.
type Container struct {
	// PodUID is the pod's metadata.uid with dashes (systemd slice names
	// carry it with underscores), or a static pod's 32-hex config hash.
	PodUID string
	// ID is the container runtime's 64-hex container ID; empty when the
	// process sits in the pod's cgroup but in no container's.
	ID string
	// Runtime is RuntimeContainerd, RuntimeCRIO, RuntimeDocker, or "" when
	// the path form (the kubelet's cgroupfs driver) does not tell.
	Runtime string
	// QoS is the pod's QoS class as the kubelet's cgroup tree names it:
	// "guaranteed", "burstable" or "besteffort"; "" when a path relative to
	// another cgroup namespace does not show it.
	QoS string
}

// ParseCgroup finds the pod and container of a process from the lines of its
// /proc/PID/cgroup file. It understands cgroup v2 ("0::/path"), v1 and
// hybrid hierarchies ("12:memory:/path"), the kubelet's systemd and cgroupfs
// drivers, and the containerd, CRI-O and Docker path forms. Paths seen from
// another cgroup namespace ("/../../kubepods.slice/...") are fine: only the
// path's kubelet-made elements matter.
//
// It returns ErrNotInPod, wrapped, when no line names a pod, and an error
// naming the line when a line is malformed.
func ParseCgroup(lines []string) (Container, error) {
	var best Container
	found := false
	for i, line := range lines {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		// hierarchy-ID:controller-list:path; the path may hold colons.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[0] == "" {
			return Container{}, fmt.Errorf("cgroup line %d %q: want hierarchy-ID:controllers:path", i+1, line)
		}
		c, ok := parseCgroupPath(parts[2])
		if !ok {
			continue
		}
		// Every hierarchy of a container names the same pod; the first line
		// that also names the container wins.
		if !found || (best.ID == "" && c.ID != "") {
			best, found = c, true
		}
		if best.ID != "" {
			break
		}
	}
	if !found {
		return Container{}, fmt.Errorf("%w (%d lines)", ErrNotInPod, len(lines))
	}
	return best, nil
}

// parseCgroupPath reads one cgroup path. The pod element is
// "pod<uid>" (cgroupfs driver) or "kubepods[-<qos>]-pod<uid_>.slice"
// (systemd driver); the container element follows it.
func parseCgroupPath(path string) (Container, bool) {
	var c Container
	elems := strings.Split(path, "/")
	pod := -1
	for i, e := range elems {
		if uid, qos, ok := podElement(e); ok {
			c.PodUID, pod = uid, i
			if qos != "" {
				c.QoS = qos
			}
			break
		}
		switch {
		case e == "burstable", strings.HasSuffix(e, "kubepods-burstable.slice"):
			c.QoS = "burstable"
		case e == "besteffort", strings.HasSuffix(e, "kubepods-besteffort.slice"):
			c.QoS = "besteffort"
		}
	}
	if pod < 0 {
		return Container{}, false
	}
	if c.QoS == "" && !slices.Contains(elems[:pod], "..") {
		// The kubelet puts Guaranteed pods straight under kubepods. A path
		// relative to another cgroup namespace may have cut the QoS
		// element off: then the class is unknown.
		c.QoS = "guaranteed"
	}
	// The container is the element after the pod's; runtimes may nest
	// further cgroups below it (crun's "container" sub-cgroup, systemd in
	// a container), so only the first element counts.
	if pod+1 < len(elems) {
		c.ID, c.Runtime = containerElement(elems[pod+1])
	}
	return c, true
}

// podElement recognises a pod's cgroup element and returns its UID with
// dashes and, for the systemd form, the QoS class in the name.
func podElement(e string) (uid, qos string, ok bool) {
	// kind and other nested kubelets name slices "kubelet-kubepods-...".
	if i := strings.Index(e, "kubepods-"); i >= 0 && strings.HasSuffix(e, ".slice") {
		rest := strings.TrimSuffix(e[i+len("kubepods-"):], ".slice")
		switch {
		case strings.HasPrefix(rest, "burstable-pod"):
			qos, rest = "burstable", strings.TrimPrefix(rest, "burstable-pod")
		case strings.HasPrefix(rest, "besteffort-pod"):
			qos, rest = "besteffort", strings.TrimPrefix(rest, "besteffort-pod")
		case strings.HasPrefix(rest, "pod"):
			qos, rest = "guaranteed", strings.TrimPrefix(rest, "pod")
		default:
			return "", "", false
		}
		uid = strings.ReplaceAll(rest, "_", "-")
	} else if rest, found := strings.CutPrefix(e, "pod"); found {
		uid = rest
	} else {
		return "", "", false
	}
	if !validPodUID(uid) {
		return "", "", false
	}
	return uid, qos, true
}

// validPodUID accepts an RFC 4122 UUID in its 36-character form, as the API
// server assigns, or 32 lower-case hex digits, the config hash the kubelet
// uses as the UID of a static pod.
func validPodUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s)
	case 36:
		for i := 0; i < len(s); i++ {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return false
				}
				continue
			}
			if !isHexByte(s[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// containerElement recognises a container's cgroup element.
func containerElement(e string) (id, runtime string) {
	if scope, ok := strings.CutSuffix(e, ".scope"); ok {
		for _, f := range []struct{ prefix, runtime string }{
			{"cri-containerd-", RuntimeContainerd},
			{"crio-", RuntimeCRIO},
			{"docker-", RuntimeDocker},
		} {
			if rest, ok := strings.CutPrefix(scope, f.prefix); ok && isContainerID(rest) {
				return rest, f.runtime
			}
		}
		// "crio-conmon-<id>.scope" is CRI-O's monitor, not the container.
		return "", ""
	}
	if isContainerID(e) {
		return e, ""
	}
	return "", ""
}

func isContainerID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isHexByte(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' }
