package probes

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics. The BPF counters are read
// from the kernel at scrape time, so there is no copy to keep in sync.
type metrics struct {
	e           *Engine
	attached    prometheus.Gauge
	probes      prometheus.Gauge
	skipped     *prometheus.CounterVec
	events      prometheus.Counter
	records     prometheus.Counter
	dropped     *prometheus.CounterVec
	bpfStats    *prometheus.Desc
	bpfReadErrs *prometheus.Desc
}

func newMetrics(e *Engine) *metrics {
	return &metrics{
		e: e,
		attached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "originagent_processes_attached", Help: "Processes with origin probes attached.",
		}),
		probes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "originagent_probes_attached", Help: "Uprobes attached, over all processes.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "originagent_processes_skipped_total", Help: "Selected processes that were not instrumented, by reason.",
		}, []string{"reason"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "originagent_events_read_total", Help: "Events read from the kernel ring buffer.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "originagent_records_emitted_total", Help: "Code origin records handed to the exporters.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "originagent_events_dropped_total", Help: "Events read but not turned into records, by reason.",
		}, []string{"reason"}),
		bpfStats: prometheus.NewDesc("originagent_bpf_probe_hits_total",
			"Probe hits by outcome, counted by the BPF program: emitted, no_span (no dd-trace-go span in the request context), ringbuf_full (event lost), no_process (the process or its probe's recipe is gone).",
			[]string{"result"}, nil),
		bpfReadErrs: prometheus.NewDesc("originagent_bpf_read_errors_total",
			"Faults reading the target's memory in the BPF program (the walk stopped early).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.attached.Describe(ch)
	m.probes.Describe(ch)
	m.skipped.Describe(ch)
	m.events.Describe(ch)
	m.records.Describe(ch)
	m.dropped.Describe(ch)
	ch <- m.bpfStats
	ch <- m.bpfReadErrs
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.attached.Collect(ch)
	m.probes.Collect(ch)
	m.skipped.Collect(ch)
	m.events.Collect(ch)
	m.records.Collect(ch)
	m.dropped.Collect(ch)
	st, err := m.e.BPFStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.bpfStats, err)
		ch <- prometheus.NewInvalidMetric(m.bpfReadErrs, err)
		return
	}
	for _, o := range []struct {
		name string
		v    uint64
	}{{"emitted", st.Emitted}, {"no_span", st.NoSpan}, {"ringbuf_full", st.RingbufFull}, {"no_process", st.NoProcess}} {
		ch <- prometheus.MustNewConstMetric(m.bpfStats, prometheus.CounterValue, float64(o.v), o.name)
	}
	ch <- prometheus.MustNewConstMetric(m.bpfReadErrs, prometheus.CounterValue, float64(st.ReadErrors))
}
