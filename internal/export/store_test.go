package export

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/originagent/originagent/internal/origin"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestStore(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, &budget{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(3, 10*time.Second, m, clk.now)
	tid := origin.TraceID{High: 7, Low: 8}
	ids := func(span uint64) []match {
		out := make([]match, 1)
		s.lookupChunk(tid.Low, tid.High, true, []uint64{span}, out)
		return out
	}

	// Invalid records are counted and dropped.
	s.put(origin.Record{TraceID: tid, SpanID: 1})             // no frames
	s.put(testRecord(origin.TraceID{High: 1}, 1, 1, "NoLow")) // no trace ID
	s.put(testRecord(tid, 0, 1, "NoSpan"))                    // no span ID
	if got := testutil.ToFloat64(m.recordsDropped); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
	if !s.empty() {
		t.Fatal("store not empty after invalid records")
	}

	// Seq: highest wins whatever the order.
	s.put(testRecord(tid, 1, 5, "Five"))
	s.put(testRecord(tid, 1, 9, "Nine"))
	s.put(testRecord(tid, 1, 2, "Two"))
	if m := ids(1)[0]; m.tags == nil || m.tags.method != "Nine" || m.seq != 9 {
		t.Errorf("span 1 -> %+v, want Nine", m)
	}
	// A matched record stays for retries of the same payload.
	if m := ids(1)[0]; m.tags == nil {
		t.Error("matched record gone before its TTL")
	}
	if got := testutil.ToFloat64(m.recordsMatched); got != 1 {
		t.Errorf("matched = %v, want 1 (counted once)", got)
	}

	// Eviction: the store holds 3; the oldest live unmatched one goes.
	s.put(testRecord(tid, 2, 1, "Two"))
	s.put(testRecord(tid, 3, 1, "Three"))
	s.put(testRecord(tid, 4, 1, "Four")) // evicts span 1 (matched: not counted as evicted)
	s.put(testRecord(tid, 5, 1, "Five")) // evicts span 2 (unmatched: evicted)
	if ids(1)[0].tags != nil || ids(2)[0].tags != nil {
		t.Error("oldest records not evicted")
	}
	if got := testutil.ToFloat64(m.recordsEvicted); got != 1 {
		t.Errorf("evicted = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.recordsStored); got != 3 || s.len() != 3 {
		t.Errorf("stored = %v / %d, want 3", got, s.len())
	}

	// TTL: everything expires. Span 4 is matched now; 3 and 5 never are,
	// so they count as unmatched.
	ids(4)
	clk.t = clk.t.Add(11 * time.Second)
	s.expire()
	if !s.empty() || s.hasTrace(tid.Low) {
		t.Error("records survived their TTL")
	}
	if got := testutil.ToFloat64(m.recordsUnmatched); got != 2 {
		t.Errorf("unmatched = %v, want 2 (spans 3 and 5)", got)
	}
	if got := testutil.ToFloat64(m.recordsReceived); got != 7 {
		t.Errorf("received = %v, want 7", got)
	}

	// Upper trace ID bits.
	s.put(testRecord(tid, 6, 1, "Six"))
	out := make([]match, 1)
	if s.lookupChunk(tid.Low, tid.High+1, true, []uint64{6}, out); out[0].tags != nil {
		t.Error("matched across different upper trace ID bits")
	}
	if s.lookupChunk(tid.Low, 0, false, []uint64{6}, out); out[0].tags == nil {
		t.Error("no match on low bits when the payload lacks the upper bits")
	}
}

// TestRetryEnrichedAgain checks that a payload the tracer resends after an
// upstream error is enriched again.
func TestRetryEnrichedAgain(t *testing.T) {
	ts := genTraces(rand.New(rand.NewPCG(11, 12)), 2, 4)
	s := newTestStore(t, 10, time.Minute, nil)
	s.put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
	body := encodeV04(ts, metaMap)
	for i := range 2 {
		out, n, err := enrichWith(s, v04, body)
		if err != nil || out == nil || n != 1 {
			t.Fatalf("attempt %d: tagged %d, err %v", i, n, err)
		}
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	px, err := NewProxy(Config{Upstream: "http://127.0.0.1:1"}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	px.Put(testRecord(origin.TraceID{Low: 1}, 2, 1, "X"))
	px.m.payloads.WithLabelValues("v0.4/traces", "forwarded").Inc()
	px.m.decodeFailures.WithLabelValues("v0.4/traces").Inc()
	px.m.enrichSeconds.WithLabelValues("v0.4/traces").Observe(0.001)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{
		"originagent_export_payloads_total", "originagent_export_decode_failures_total",
		"originagent_export_enrich_duration_seconds", "originagent_export_spans_tagged_total",
		"originagent_export_records_received_total", "originagent_export_records_stored",
		"originagent_export_records_matched_total", "originagent_export_records_unmatched_total",
		"originagent_export_records_evicted_total", "originagent_export_records_dropped_total",
	} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("metric %s not registered (have %v)", want, names)
		}
	}
}

// TestStoreGrows checks that the ring grows from its initial size to the
// configured capacity, keeping FIFO order and the index right.
func TestStoreGrows(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	m, _ := newMetrics(nil, &budget{})
	const size = 3*initialSlots + 5
	s := newStore(size, time.Minute, m, clk.now)
	tid := origin.TraceID{High: 1, Low: 2}
	for i := range uint64(size + 10) {
		clk.t = clk.t.Add(time.Millisecond)
		s.put(testRecord(tid, i+1, 1, "M"))
		if i == 10 {
			// A matched record in the middle must keep its place.
			s.lookupChunk(tid.Low, tid.High, true, []uint64{5}, make([]match, 1))
		}
	}
	if len(s.ring) != size || s.len() != size {
		t.Fatalf("ring %d, live %d, want %d", len(s.ring), s.len(), size)
	}
	out := make([]match, 1)
	for i := range uint64(size + 10) {
		out[0] = match{}
		s.lookupChunk(tid.Low, tid.High, true, []uint64{i + 1}, out)
		if want := i >= 10; (out[0].tags != nil) != want {
			t.Fatalf("span %d present=%v, want %v (oldest 10 evicted)", i+1, out[0].tags != nil, want)
		}
	}
	// Nine unmatched records were evicted; span 5 was matched.
	if got := testutil.ToFloat64(m.recordsEvicted); got != 9 {
		t.Errorf("evicted = %v, want 9", got)
	}
}

// TestExpiredRecordsDoNotMatch checks that enrichment ignores records past
// their TTL even when nothing else expires the store.
func TestExpiredRecordsDoNotMatch(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := newTestStore(t, 10, time.Second, clk.now)
	ts := genTraces(rand.New(rand.NewPCG(13, 14)), 1, 4)
	s.put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
	clk.t = clk.t.Add(2 * time.Second)
	p := &Proxy{store: s}
	if out, n, err := p.enrich(v04, nil, encodeV04(ts, metaMap)); out != nil || n != 0 || err != nil {
		t.Errorf("expired record matched: out=%v n=%d err=%v", out != nil, n, err)
	}
	if got := testutil.ToFloat64(s.m.recordsUnmatched); got != 1 {
		t.Errorf("unmatched = %v, want 1", got)
	}
}
