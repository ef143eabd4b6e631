package probes

import (
	"sort"
	"time"
)

// ProcessStatus describes one instrumented process, for `originagent status`.
type ProcessStatus struct {
	PID        int               `json:"pid"`
	Exe        string            `json:"exe"`
	Service    string            `json:"service,omitempty"`
	BinaryID   string            `json:"binary_id"`
	Frameworks []string          `json:"frameworks"`
	Tracers    []string          `json:"tracers"`
	GoVersion  string            `json:"go_version"`
	Probes     []ProbeStatus     `json:"probes"`
	Labels     map[string]string `json:"labels,omitempty"`
	Attached   time.Time         `json:"attached"`
}

// ProbeStatus is one probed function.
type ProbeStatus struct {
	Framework string `json:"framework"`
	Symbol    string `json:"symbol"`
	AtEntry   bool   `json:"at_entry,omitempty"` // no PUSHQ BP found: probe on the first instruction
}

// Processes returns the instrumented processes, by PID.
func (e *Engine) Processes() []ProcessStatus {
	e.procMu.RLock()
	defer e.procMu.RUnlock()
	out := make([]ProcessStatus, 0, len(e.procs))
	for _, ps := range e.procs {
		out = append(out, ProcessStatus{
			PID: ps.pid, Exe: ps.exe, Service: ps.service, BinaryID: ps.bin.key,
			Frameworks: ps.bin.an.frameworks, Tracers: ps.bin.an.tracers,
			GoVersion: ps.bin.an.sym.Info().GoVersion,
			Probes:    ps.bin.an.probeStatus(), Labels: ps.labels, Attached: ps.attached,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// BPFStats returns the BPF program's counters, summed over CPUs.
func (e *Engine) BPFStats() (BPFStats, error) {
	return readStats(e.objs.Stats)
}
