package export

import (
	"math/rand/v2"
	"testing"
	"time"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"

	"github.com/originagent/originagent/internal/origin"
)

func newTestStore(t testing.TB, size int, ttl time.Duration, now func() time.Time) *store {
	t.Helper()
	m, err := newMetrics(nil, &budget{})
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	return newStore(size, ttl, m, now)
}

type encoding struct {
	name, path string
	encode     func(pb.Traces) []byte
	v          version
}

var encodings = []encoding{
	{"v0.4", "/v0.4/traces", func(ts pb.Traces) []byte { return encodeV04(ts, metaMap) }, v04},
	{"v0.4-absent-meta", "/v0.4/traces", func(ts pb.Traces) []byte { return encodeV04(ts, metaAbsent) }, v04},
	{"v0.4-nil-meta", "/v0.4/traces", func(ts pb.Traces) []byte { return encodeV04(ts, metaNil) }, v04},
	{"v0.4-agent-encoder", "/v0.4/traces", func(ts pb.Traces) []byte { b, _ := ts.MarshalMsg(nil); return b }, v04},
	{"v0.5", "/v0.5/traces", encodeV05, v05},
	{"v1.0", "/v1.0/traces", encodeV1, v1},
}

// enrichWith runs one enrichment like the proxy does.
func enrichWith(s *store, v version, body []byte) ([]byte, int, error) {
	p := &Proxy{store: s}
	return p.enrich(v, nil, body)
}

func TestEnrich(t *testing.T) {
	type scenario struct {
		name string
		// setup may change the traces and returns the records to store and
		// the spans (trace, index) expected to carry each record's tags.
		setup func(ts pb.Traces) (recs []origin.Record, want map[[2]int]int)
		only  func(e encoding) bool
	}
	rec := func(ts pb.Traces, tr, sp int, seq uint64, method string) origin.Record {
		return testRecord(traceIDOf(ts[tr]), ts[tr][sp].SpanID, seq, method)
	}
	scenarios := []scenario{
		{name: "direct", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{rec(ts, 0, 0, 1, "Get")}, map[[2]int]int{{0, 0}: 0}
		}},
		{name: "child tags entry span too", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{rec(ts, 0, 2, 1, "Get")}, map[[2]int]int{{0, 2}: 0, {0, 0}: 0}
		}},
		{name: "other service entry", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{rec(ts, 0, 5, 1, "Rows")}, map[[2]int]int{{0, 5}: 0, {0, 4}: 0}
		}},
		{name: "preset code origin left alone", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			ts[0][0].Meta[origin.TagType] = "entry"
			return []origin.Record{rec(ts, 0, 0, 1, "Get")}, nil
		}},
		{name: "upper trace ID differs", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			r := rec(ts, 0, 0, 1, "Get")
			r.TraceID.High++
			return []origin.Record{r}, nil
		}},
		{name: "no _dd.p.tid matches on low bits", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			r := rec(ts, 0, 0, 1, "Get")
			delete(ts[0][0].Meta, "_dd.p.tid")
			return []origin.Record{r}, map[[2]int]int{{0, 0}: 0}
		}},
		{name: "highest seq wins", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{rec(ts, 0, 0, 8, "Inner"), rec(ts, 0, 0, 3, "Outer")}, map[[2]int]int{{0, 0}: 0}
		}},
		{name: "several chunks", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{rec(ts, 1, 0, 1, "A"), rec(ts, 2, 3, 1, "B")},
				map[[2]int]int{{1, 0}: 0, {2, 3}: 1, {2, 0}: 1}
		}},
		{name: "span without meta", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			ts[0][2].Meta, ts[0][2].Metrics = nil, nil
			return []origin.Record{rec(ts, 0, 2, 1, "Get")}, map[[2]int]int{{0, 2}: 0, {0, 0}: 0}
		}},
		{name: "tag strings reappear later", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			// Strings the tags introduce show up again in later chunks: in
			// v1.0 the later inline copies must resolve to the new entries.
			r := rec(ts, 0, 0, 1, "Get")
			ts[1][0].Meta["note"] = "entry"
			ts[1][1].Meta[origin.TagFrameMethod] = "Get"
			ts[2][3].Meta["path"] = r.Frames[0].File
			ts[2][3].Meta["zz.after"] = "a string first seen after the insertion"
			return []origin.Record{r}, map[[2]int]int{{0, 0}: 0}
		}},
		{name: "records of other traces", setup: func(ts pb.Traces) ([]origin.Record, map[[2]int]int) {
			return []origin.Record{testRecord(origin.TraceID{High: 1, Low: ts[0][0].TraceID + 1}, ts[0][0].SpanID, 1, "X")}, nil
		}},
	}
	for _, enc := range encodings {
		for _, sc := range scenarios {
			if sc.only != nil && !sc.only(enc) {
				continue
			}
			t.Run(enc.name+"/"+sc.name, func(t *testing.T) {
				ts := genTraces(rand.New(rand.NewPCG(1, 2)), 3, 6)
				recs, want := sc.setup(ts)
				s := newTestStore(t, 100, time.Minute, nil)
				for _, r := range recs {
					s.put(r)
				}
				body := enc.encode(ts)
				orig := append([]byte(nil), body...)
				out, tagged, err := enrichWith(s, enc.v, body)
				if err != nil {
					t.Fatalf("enrich: %v", err)
				}
				if string(body) != string(orig) {
					t.Fatal("enrich modified its input")
				}
				if len(want) == 0 {
					if out != nil {
						t.Fatalf("payload changed although no span should be tagged (%d tagged)", tagged)
					}
					return
				}
				if out == nil {
					t.Fatal("payload unchanged, want tags")
				}
				wantTags := map[spanKey]map[string]string{}
				for pos, ri := range want {
					sp := ts[pos[0]][pos[1]]
					wantTags[spanKey{sp.TraceID, sp.SpanID}] = recs[ri].Tags()
				}
				if got := compareForwarded(t, enc.path, body, out, wantTags); got != len(want) || tagged != len(want) {
					t.Errorf("tagged %d (reported %d), want %d", got, tagged, len(want))
				}
			})
		}
	}
}

// TestEnrichEmptyStore checks the fast path: nothing is decoded when no
// record waits, and payloads without matches come back as nil (forwarded
// byte for byte).
func TestEnrichUnmatchedIsUnchanged(t *testing.T) {
	ts := genTraces(rand.New(rand.NewPCG(3, 4)), 10, 10)
	s := newTestStore(t, 100, time.Minute, nil)
	s.put(testRecord(origin.TraceID{Low: 42}, 43, 1, "X"))
	for _, enc := range encodings {
		out, n, err := enrichWith(s, enc.v, enc.encode(ts))
		if err != nil || out != nil || n != 0 {
			t.Errorf("%s: out=%v n=%d err=%v, want unchanged", enc.name, out != nil, n, err)
		}
	}
}
