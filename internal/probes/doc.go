// Package probes finds opted-in Go processes, attaches uprobes to the
// dispatch functions of the web frameworks they use, and turns the events the
// BPF programs send into code-origin records (package origin).
package probes
