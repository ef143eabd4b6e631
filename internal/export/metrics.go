package export

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors. They are registered on the
// Registerer given to NewProxy, never on a global registry.
type metrics struct {
	payloads         *prometheus.CounterVec // endpoint, result
	decodeFailures   *prometheus.CounterVec // endpoint
	enrichSeconds    *prometheus.HistogramVec
	spansTagged      prometheus.Counter
	recordsReceived  prometheus.Counter
	recordsDropped   prometheus.Counter
	recordsStored    prometheus.Gauge
	recordsMatched   prometheus.Counter
	recordsUnmatched prometheus.Counter
	recordsEvicted   prometheus.Counter
	unenriched       prometheus.Counter
	bufferBytes      prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, bud *budget) (*metrics, error) {
	const ns, sub = "originagent", "export"
	m := &metrics{
		payloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "payloads_total",
			Help: "Requests handled by the intake proxy, by endpoint and result (forwarded: the upstream answered; failed: the upstream could not be reached; rejected: refused by the proxy like the Agent would, e.g. too large; throttled: 429, no free slot or buffer budget; timeout: 408, body slower than the body timeout; truncated: 400, body shorter than announced or failed).",
		}, []string{"endpoint", "result"}),
		decodeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decode_failures_total",
			Help: "Trace payloads that could not be decoded or enriched and were forwarded unchanged.",
		}, []string{"endpoint"}),
		enrichSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "enrich_duration_seconds",
			Help:    "Time spent scanning and enriching one trace payload.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10),
		}, []string{"endpoint"}),
		spansTagged: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "spans_tagged_total",
			Help: "Spans that received code origin tags.",
		}),
		recordsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "records_received_total",
			Help: "Code origin records accepted into the store.",
		}),
		recordsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "records_dropped_total",
			Help: "Code origin records refused because they lack frames, trace ID or span ID.",
		}),
		recordsStored: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "records_stored",
			Help: "Code origin records waiting in the store.",
		}),
		recordsMatched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "records_matched_total",
			Help: "Records whose span passed through the proxy.",
		}),
		recordsUnmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "records_unmatched_total",
			Help: "Records that expired before their span passed through the proxy.",
		}),
		recordsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "records_evicted_total",
			Help: "Unmatched records dropped to make room in a full store.",
		}),
		unenriched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "payloads_unenriched_total",
			Help: "Trace payloads forwarded without tags because the buffer budget had no room for them.",
		}),
		bufferBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "buffer_bytes",
			Help: "Bytes of trace payload buffers in use (bounded by the buffer budget).",
		}, func() float64 { return float64(bud.inUse()) }),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.payloads, m.decodeFailures, m.enrichSeconds, m.spansTagged, m.recordsReceived,
		m.recordsDropped, m.recordsStored, m.recordsMatched, m.recordsUnmatched, m.recordsEvicted,
		m.unenriched, m.bufferBytes,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
