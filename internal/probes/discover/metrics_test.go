package discover

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsRegisteredAndLintClean(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.latency.Observe(0.01) // histograms and counters are gathered even at zero; this checks a sample too
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{
		"originagent_discover_bad_events_total",
		"originagent_discover_exec_events_total",
		"originagent_discover_exec_to_start_seconds",
		"originagent_discover_exit_events_total",
		"originagent_discover_processes_seen_total",
		"originagent_discover_processes_selected_total",
		"originagent_discover_processes_started",
		"originagent_discover_read_errors_total",
		"originagent_discover_rescans_total",
		"originagent_discover_ringbuf_lost_total",
		"originagent_discover_vanished_total",
	}
	if !slices.Equal(names, want) {
		t.Errorf("metrics %q, want %q", names, want)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
