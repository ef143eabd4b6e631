package export

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
	"github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace/idx"
	"github.com/tinylib/msgp/msgp"

	"github.com/originagent/originagent/internal/origin"
)

// genTraces builds nTraces realistic traces of nSpans spans: an http.request
// entry span of service "shop", handler and template children, and a
// database client span of service "shop-db" with its own child, with the
// meta and metrics dd-trace-go sets. The first span of every trace carries
// `_dd.p.tid` (128-bit trace IDs).
func genTraces(rng *rand.Rand, nTraces, nSpans int) pb.Traces {
	ts := make(pb.Traces, nTraces)
	for t := range ts {
		low, high := rng.Uint64()|1, rng.Uint64()>>1|1<<40
		start := int64(1_700_000_000_000_000_000) + rng.Int64N(1e12)
		tr := make(pb.Trace, nSpans)
		for i := range tr {
			s := &pb.Span{
				Service: "shop", Name: "handler", Resource: "GET /users/:id", TraceID: low, SpanID: rng.Uint64() | 1,
				Start: start + int64(i)*1000, Duration: 5_000_000 - int64(i)*1000, Type: "web",
				Meta: map[string]string{
					"component": "net/http", "span.kind": "internal", "env": "prod", "version": "1.4.2",
					"language": "go", "runtime-id": "5f1c0f52-3b0f-4d4e-9a8a-0b6cbbe0e1a1",
				},
				Metrics: map[string]float64{"process_id": 4242, "_dd.agent_psr": 1},
			}
			switch {
			case i == 0:
				s.Name = "http.request"
				s.Meta["http.method"] = "GET"
				s.Meta["http.url"] = "http://shop.local/users/" + strconv.Itoa(t)
				s.Meta["http.status_code"] = "200"
				s.Meta["span.kind"] = "server"
				s.Meta["_dd.p.tid"] = fmt.Sprintf("%016x", high)
				s.Meta["_dd.p.dm"] = "-0"
				s.Metrics["_dd.top_level"] = 1
				s.Metrics["_sampling_priority_v1"] = 1
			case i == nSpans-2 && nSpans >= 4:
				s.Service, s.Name, s.Resource, s.Type = "shop-db", "postgres.query", "SELECT * FROM users WHERE id = $1", "sql"
				s.Meta["db.system"] = "postgresql"
				s.Meta["span.kind"] = "client"
				s.Metrics["_dd.top_level"] = 1
			case i == nSpans-1 && nSpans >= 4:
				s.Service, s.Name, s.Resource, s.Type = "shop-db", "postgres.rows", "rows", "sql"
			}
			if i > 0 {
				s.ParentID = tr[i-1].SpanID
				if i < nSpans-2 {
					s.ParentID = tr[0].SpanID // siblings under the entry span
				}
			}
			tr[i] = s
		}
		ts[t] = tr
	}
	return ts
}

// traceIDOf returns the full 128-bit trace ID of a generated trace.
func traceIDOf(tr pb.Trace) origin.TraceID {
	h, _ := strconv.ParseUint(tr[0].Meta["_dd.p.tid"], 16, 64)
	return origin.TraceID{High: h, Low: tr[0].TraceID}
}

// metaMode selects how encodeV04 writes the meta of spans without tags.
type metaMode int

const (
	metaMap    metaMode = iota // always a map, possibly empty
	metaAbsent                 // no meta key when empty
	metaNil                    // meta: nil when empty
)

// encodeV04 writes ts like a tracer writes /v0.4/traces (field order and
// integer widths as dd-trace-go's encoder).
func encodeV04(ts pb.Traces, mode metaMode) []byte {
	b := msgp.AppendArrayHeader(nil, uint32(len(ts)))
	for _, tr := range ts {
		b = msgp.AppendArrayHeader(b, uint32(len(tr)))
		for _, s := range tr {
			fields := 12
			if len(s.Meta) == 0 && mode == metaAbsent {
				fields--
			}
			b = msgp.AppendMapHeader(b, uint32(fields))
			b = msgp.AppendString(b, "name")
			b = msgp.AppendString(b, s.Name)
			b = msgp.AppendString(b, "service")
			b = msgp.AppendString(b, s.Service)
			b = msgp.AppendString(b, "resource")
			b = msgp.AppendString(b, s.Resource)
			b = msgp.AppendString(b, "type")
			b = msgp.AppendString(b, s.Type)
			b = msgp.AppendString(b, "start")
			b = msgp.AppendInt64(b, s.Start)
			b = msgp.AppendString(b, "duration")
			b = msgp.AppendInt64(b, s.Duration)
			if len(s.Meta) > 0 || mode == metaMap {
				b = msgp.AppendString(b, "meta")
				b = appendStrMap(b, s.Meta)
			} else if mode == metaNil {
				b = msgp.AppendString(b, "meta")
				b = msgp.AppendNil(b)
			}
			b = msgp.AppendString(b, "metrics")
			b = msgp.AppendMapHeader(b, uint32(len(s.Metrics)))
			for _, k := range sortedKeys(s.Metrics) {
				b = msgp.AppendString(b, k)
				b = msgp.AppendFloat64(b, s.Metrics[k])
			}
			b = msgp.AppendString(b, "span_id")
			b = msgp.AppendUint64(b, s.SpanID)
			b = msgp.AppendString(b, "trace_id")
			b = msgp.AppendUint64(b, s.TraceID)
			b = msgp.AppendString(b, "parent_id")
			b = msgp.AppendUint64(b, s.ParentID)
			b = msgp.AppendString(b, "error")
			b = msgp.AppendInt32(b, s.Error)
		}
	}
	return b
}

func appendStrMap(b []byte, m map[string]string) []byte {
	b = msgp.AppendMapHeader(b, uint32(len(m)))
	for _, k := range sortedKeys(m) {
		b = msgp.AppendString(b, k)
		b = msgp.AppendString(b, m[k])
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// encodeV05 writes ts in the v0.5 dictionary format: [strings, traces] with
// 12-element span arrays whose strings are dictionary indices.
func encodeV05(ts pb.Traces) []byte {
	var dict []string
	index := map[string]uint32{}
	ref := func(s string) uint32 {
		if i, ok := index[s]; ok {
			return i
		}
		index[s] = uint32(len(dict))
		dict = append(dict, s)
		return index[s]
	}
	ref("")
	var body []byte
	body = msgp.AppendArrayHeader(body, uint32(len(ts)))
	for _, tr := range ts {
		body = msgp.AppendArrayHeader(body, uint32(len(tr)))
		for _, s := range tr {
			body = msgp.AppendArrayHeader(body, 12)
			body = msgp.AppendUint32(body, ref(s.Service))
			body = msgp.AppendUint32(body, ref(s.Name))
			body = msgp.AppendUint32(body, ref(s.Resource))
			body = msgp.AppendUint64(body, s.TraceID)
			body = msgp.AppendUint64(body, s.SpanID)
			body = msgp.AppendUint64(body, s.ParentID)
			body = msgp.AppendInt64(body, s.Start)
			body = msgp.AppendInt64(body, s.Duration)
			body = msgp.AppendInt32(body, s.Error)
			body = msgp.AppendMapHeader(body, uint32(len(s.Meta)))
			for _, k := range sortedKeys(s.Meta) {
				body = msgp.AppendUint32(body, ref(k))
				body = msgp.AppendUint32(body, ref(s.Meta[k]))
			}
			body = msgp.AppendMapHeader(body, uint32(len(s.Metrics)))
			for _, k := range sortedKeys(s.Metrics) {
				body = msgp.AppendUint32(body, ref(k))
				body = msgp.AppendFloat64(body, s.Metrics[k])
			}
			body = msgp.AppendUint32(body, ref(s.Type))
		}
	}
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendArrayHeader(b, uint32(len(dict)))
	for _, s := range dict {
		b = msgp.AppendString(b, s)
	}
	return append(b, body...)
}

// encodeV1 converts ts to a /v1.0/traces payload with the Agent's own v0.4 to
// v1.0 conversion, as the Agent does for old tracers.
func encodeV1(ts pb.Traces) []byte {
	v04, err := ts.MarshalMsg(nil)
	if err != nil {
		panic(err)
	}
	tp := &idx.InternalTracerPayload{}
	if _, err := tp.UnmarshalMsgConverted(v04); err != nil {
		panic(err)
	}
	tp.SetLanguageName("go")
	tp.SetTracerVersion("v2.12.0")
	out, err := tp.MarshalMsg(nil)
	if err != nil {
		panic(err)
	}
	return out
}
