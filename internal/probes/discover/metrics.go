package discover

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Watcher's Prometheus counters, named
// originagent_discover_*.
type metrics struct {
	seen       prometheus.Counter
	selected   prometheus.Counter
	execEvents prometheus.Counter
	exitEvents prometheus.Counter
	lost       prometheus.Counter
	badEvents  prometheus.Counter
	vanished   prometheus.Counter
	readErrors prometheus.Counter
	rescans    prometheus.Counter
	started    prometheus.Gauge
	latency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "originagent", Subsystem: "discover", Name: name, Help: help,
		})
	}
	m := &metrics{
		seen:       counter("processes_seen_total", "Processes read from /proc and passed to the selector."),
		selected:   counter("processes_selected_total", "Process instances the selector opted in (Start calls)."),
		execEvents: counter("exec_events_total", "Exec events received from the kernel."),
		exitEvents: counter("exit_events_total", "Process exit events received from the kernel."),
		lost:       counter("ringbuf_lost_total", "Exec/exit events the kernel dropped because the ring buffer was full; each loss triggers a /proc rescan."),
		badEvents:  counter("bad_events_total", "Malformed ring-buffer records dropped."),
		vanished:   counter("vanished_total", "Processes that exited between their event or listing and the read of /proc/PID."),
		readErrors: counter("read_errors_total", "Processes skipped because /proc/PID could not be read for a reason other than exit."),
		rescans:    counter("rescans_total", "Completed full /proc scans (start, safety net, after ring-buffer loss, or polling without BPF)."),
		started: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "originagent", Subsystem: "discover", Name: "processes_started",
			Help: "Selected processes currently handed to the probe engine (Start without Exit yet).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "originagent", Subsystem: "discover", Name: "exec_to_start_seconds",
			Help:    "Time from a selected process's exec (kernel timestamp) to the return of Handler.Start, i.e. until its probes are attached. The target is under 1 s.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12), // 1 ms .. 2 s
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.seen, m.selected, m.execEvents, m.exitEvents, m.lost, m.badEvents,
		m.vanished, m.readErrors, m.rescans, m.started, m.latency,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register discover metrics: %w", err)
		}
	}
	return m, nil
}
