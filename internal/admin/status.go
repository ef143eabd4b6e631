package admin

import "time"

// Status is the agent's self-report served as JSON on /status and printed
// by `originagent status`.
type Status struct {
	// Version is the agent's version string.
	Version string `json:"version"`
	// StartedAt is when the admin server was created, about when the
	// agent started. Filled in by the server.
	StartedAt time.Time `json:"started_at"`
	// UptimeSeconds is the time since StartedAt. Filled in by the server.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Ready and NotReadyReason mirror /readyz. Filled in by the server.
	Ready          bool   `json:"ready"`
	NotReadyReason string `json:"not_ready_reason,omitempty"`
	// Processes are the Go processes the agent has attached probes to.
	Processes []Process `json:"processes"`
	// Counters summarises the agent's counters: each originagent_* counter
	// of the registry, summed over its labels, keyed by metric name. The
	// server adds them to what the provider returns; a provider's own
	// entries win.
	Counters map[string]float64 `json:"counters,omitempty"`
}

// Process is one attached Go process.
type Process struct {
	PID int `json:"pid"`
	// Binary is the executable's path as the process sees it
	// (/proc/PID/exe's target).
	Binary string `json:"binary"`
	// BuildID is the Go build ID (or the ELF GNU build ID when the Go one
	// is missing), which names the symbol tables the agent loaded.
	BuildID string `json:"build_id,omitempty"`
	// GoVersion is the toolchain that built the binary, e.g. go1.26.8.
	GoVersion string `json:"go_version,omitempty"`
	// Service is the process's DD_SERVICE, when set.
	Service string `json:"service,omitempty"`
	// Frameworks are the web frameworks detected in the binary, e.g.
	// net/http, gin, echo.
	Frameworks []string `json:"frameworks,omitempty"`
	// Probes are the uprobes attached to the process.
	Probes []Probe `json:"probes,omitempty"`
	// Labels says where the process runs (pod, namespace, container).
	Labels map[string]string `json:"labels,omitempty"`
	// AttachedAt is when the probes were attached.
	AttachedAt time.Time `json:"attached_at,omitzero"`
}

// Probe is one attached uprobe.
type Probe struct {
	// Framework is the framework the probed function belongs to.
	Framework string `json:"framework,omitempty"`
	// Symbol is the probed function, e.g. net/http.HandlerFunc.ServeHTTP.
	Symbol string `json:"symbol"`
	// Hits counts the times the probe fired, when the agent tracks it.
	Hits uint64 `json:"hits,omitempty"`
}
