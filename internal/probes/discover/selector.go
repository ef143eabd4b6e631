package discover

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is what a Selector sees of a candidate process. PID, StartTime
// and Exe are read when the Watcher builds it; Environ and CgroupPaths read
// on their first call and keep the answer. A selector must treat a vanished
// process (an error from Environ) as "not selected".
type Process struct {
	// PID is the process ID in the PID namespace of the procfs read: the
	// host's, for the agent runs with hostPID.
	PID int
	// StartTime is the process start time in clock ticks since boot (field
	// 22 of /proc/PID/stat). With PID it names one process instance: a
	// reused PID has a different StartTime. An exec keeps it.
	StartTime uint64
	// Exe is the target of /proc/PID/exe as the kernel reports it, in the
	// process's own mount namespace.
	Exe string
	// Environ returns the process environment as KEY=VALUE strings.
	Environ func() ([]string, error)
	// CgroupPaths returns the lines of /proc/PID/cgroup.
	CgroupPaths func() ([]string, error)

	procRoot string    // procfs mount the process was read from
	env      *envCache // behind Environ, when the Watcher built it
}

// BinaryPath returns /proc/PID/exe. Opening it gives the process's
// executable from the host even when the process runs in another mount
// namespace (a container) or its file was deleted: the kernel resolves the
// link to the mapped file, not to a path.
func (p *Process) BinaryPath() string {
	return filepath.Join(p.root(), strconv.Itoa(p.PID), "exe")
}

// RootPath returns /proc/PID/root, the process's root directory seen from the
// host. RootPath()+Exe names the executable inside the process's mount
// namespace (unless Exe ends in " (deleted)"); other files of the process
// (shared libraries, configuration) are read the same way.
func (p *Process) RootPath() string {
	return filepath.Join(p.root(), strconv.Itoa(p.PID), "root")
}

func (p *Process) root() string {
	if p.procRoot == "" {
		return DefaultProcRoot
	}
	return p.procRoot
}

// Decision is a selector's answer for one process.
type Decision struct {
	// Selected is true when the process opted in.
	Selected bool
	// Reason says why, in a few words, for logs and metrics
	// (e.g. "env DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "pod label").
	Reason string
	// Labels describe where the process runs (keys "pod", "namespace",
	// "container", "pod_uid"); they go into logs and records.
	Labels map[string]string
}

// Selector decides whether a process opted in to code origin capture.
// Implementations must be safe for concurrent use.
type Selector interface {
	Select(p *Process) Decision
}

// SelectorFunc adapts a function to a Selector.
type SelectorFunc func(p *Process) Decision

// Select calls f(p).
func (f SelectorFunc) Select(p *Process) Decision { return f(p) }

// AnyOf returns a Selector that selects a process when any of sel does. The
// first selecting selector's decision wins; labels of non-selecting ones that
// know where the process runs are kept.
func AnyOf(sel ...Selector) Selector {
	return SelectorFunc(func(p *Process) Decision {
		var last Decision
		for _, s := range sel {
			d := s.Select(p)
			if d.Selected {
				if d.Labels == nil {
					d.Labels = last.Labels
				}
				return d
			}
			if d.Labels != nil {
				last.Labels = d.Labels
			}
			if last.Reason == "" {
				last.Reason = d.Reason
			}
		}
		return last
	})
}

// OptInEnv is the environment variable through which a process opts in, the
// one Datadog tracers of other languages read for Code Origin for Spans.
const OptInEnv = "DD_CODE_ORIGIN_FOR_SPANS_ENABLED"

// OptInSelector selects processes whose environment sets OptInEnv to a true
// value as dd-trace-go reads booleans (strconv.ParseBool: 1, t, T, TRUE,
// true, True), so that the agent and the tracer agree on what "enabled"
// means. The environment is fixed at exec: a process that calls setenv later
// changes only its own copy, which /proc/PID/environ does not show.
func OptInSelector() Selector {
	return SelectorFunc(func(p *Process) Decision {
		v, ok, err := lookupEnv(p, OptInEnv)
		if err != nil {
			return Decision{Reason: "environment unreadable: " + err.Error()}
		}
		if !ok {
			return Decision{Reason: "env " + OptInEnv + " unset"}
		}
		if b, err := strconv.ParseBool(v); err != nil || !b {
			return Decision{Reason: "env " + OptInEnv + "=" + v}
		}
		return Decision{Selected: true, Reason: "env " + OptInEnv + "=" + v}
	})
}

// EnvSelector selects processes whose environment sets key to value,
// compared case-insensitively ("TRUE" matches "true"). When key appears more
// than once, the first occurrence counts, as getenv(3) and os.Getenv do.
func EnvSelector(key, value string) Selector {
	return SelectorFunc(func(p *Process) Decision {
		v, ok, err := lookupEnv(p, key)
		if err != nil {
			return Decision{Reason: "environment unreadable: " + err.Error()}
		}
		if !ok {
			return Decision{Reason: "env " + key + " unset"}
		}
		return Decision{Selected: strings.EqualFold(v, value), Reason: "env " + key + "=" + v}
	})
}

// lookupEnv returns the first value of key in p's environment, or the error
// reading it (the process vanished, or the agent lacks CAP_SYS_PTRACE).
func lookupEnv(p *Process, key string) (string, bool, error) {
	if p.Environ == nil {
		return "", false, nil
	}
	env, err := p.Environ()
	if err != nil {
		return "", false, err
	}
	v, ok := envValue(env, key)
	return v, ok, nil
}

func envValue(env []string, key string) (string, bool) {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == key {
			return v, true
		}
	}
	return "", false
}

// ExePathSelector selects processes whose executable matches one of globs
// (path.Match syntax). A glob containing a slash is matched against the full
// path as the process sees it in its own mount namespace; a glob without one
// against the base name, so "api-*" selects /app/bin/api-server. The
// " (deleted)" the kernel appends to a replaced binary is ignored. It returns
// an error for a malformed glob, so that a typo fails at start-up rather than
// silently selecting nothing.
func ExePathSelector(globs []string) (Selector, error) {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("executable glob %q: %w", g, err)
		}
	}
	globs = append([]string(nil), globs...)
	return SelectorFunc(func(p *Process) Decision {
		exe := strings.TrimSuffix(p.Exe, " (deleted)")
		if exe == "" {
			return Decision{Reason: "no executable"}
		}
		base := path.Base(exe)
		for _, g := range globs {
			name := base
			if strings.Contains(g, "/") {
				name = exe
			}
			// The pattern was validated above, so err is always nil.
			if ok, _ := path.Match(g, name); ok {
				return Decision{Selected: true, Reason: "executable matches " + g}
			}
		}
		return Decision{Reason: "executable matches no glob"}
	}), nil
}
