package export

import (
	"encoding/binary"
	"fmt"

	"github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace/idx"
	"github.com/tinylib/msgp/msgp"
)

// Field numbers of the v1.0 (idx) wire format, see the Agent's
// pkg/proto/pbgo/trace/idx.
const (
	v1PayloadChunks = 11
	v1ChunkSpans    = 4
	v1ChunkTraceID  = 6
	v1SpanID        = 4
	v1SpanParent    = 5
)

// v1Matches scans a v1.0 payload for spans with a record, without building
// the string table: only chunk trace IDs and span IDs are read, every other
// value is skipped. It reports whether any span has a record.
func (st *encState) v1Matches(body []byte, s *store) (bool, error) {
	p := body
	nf, p, err := readCount(p, true)
	if err != nil {
		return false, err
	}
	for range nf {
		var key uint32
		if key, p, err = msgp.ReadUint32Bytes(p); err != nil {
			return false, malformed("payload field: %v", err)
		}
		if key != v1PayloadChunks {
			if p, err = msgp.Skip(p); err != nil {
				return false, malformed("payload field %d: %v", key, err)
			}
			continue
		}
		var nc int
		if nc, p, err = readCount(p, false); err != nil {
			return false, err
		}
		for range nc {
			var found bool
			if found, p, err = st.v1ScanChunk(p, s); err != nil {
				return false, err
			}
			if found {
				return true, nil
			}
		}
	}
	return false, nil
}

func (st *encState) v1ScanChunk(p []byte, s *store) (bool, []byte, error) {
	nf, p, err := readCount(p, true)
	if err != nil {
		return false, p, err
	}
	var traceID []byte
	st.startChunk(0)
	for range nf {
		var key uint32
		if key, p, err = msgp.ReadUint32Bytes(p); err != nil {
			return false, p, malformed("chunk field: %v", err)
		}
		switch key {
		case v1ChunkTraceID:
			traceID, p, err = msgp.ReadBytesZC(p)
		case v1ChunkSpans:
			var ns int
			if ns, p, err = readCount(p, false); err != nil {
				return false, p, err
			}
			for range ns {
				var cs chunkSpan
				if cs, p, err = v1ScanSpan(p); err != nil {
					return false, p, err
				}
				st.spans = append(st.spans, cs)
			}
		default:
			p, err = msgp.Skip(p)
		}
		if err != nil {
			return false, p, malformed("chunk field %d: %v", key, err)
		}
	}
	high, low := splitTraceID(traceID)
	n := st.lookup(s, low, func() (uint64, bool) { return high, high != 0 })
	return n > 0, p, nil
}

func v1ScanSpan(p []byte) (chunkSpan, []byte, error) {
	var cs chunkSpan
	nf, p, err := readCount(p, true)
	if err != nil {
		return cs, p, err
	}
	for range nf {
		var key uint32
		if key, p, err = msgp.ReadUint32Bytes(p); err != nil {
			return cs, p, malformed("span field: %v", err)
		}
		switch key {
		case v1SpanID:
			cs.id, p, err = msgp.ReadUint64Bytes(p)
		case v1SpanParent:
			cs.parent, p, err = msgp.ReadUint64Bytes(p)
		default:
			p, err = msgp.Skip(p)
		}
		if err != nil {
			return cs, p, malformed("span field %d: %v", key, err)
		}
	}
	return cs, p, nil
}

// splitTraceID reads a v1.0 chunk trace ID: 16 bytes, big-endian. Shorter
// IDs are right-aligned like the Agent's idx.InternalTraceChunk.LegacyTraceID.
func splitTraceID(b []byte) (high, low uint64) {
	var buf [16]byte
	if len(b) > 16 {
		b = b[len(b)-16:]
	}
	copy(buf[16-len(b):], b)
	return binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])
}

// enrichV1 decodes a v1.0 payload with the Agent's idx package, tags the
// matching spans and re-encodes it into dst. It is called only after
// v1Matches found a span with a record.
func (st *encState) enrichV1(dst, body []byte, s *store) ([]byte, error) {
	tp := &idx.InternalTracerPayload{}
	if _, err := tp.UnmarshalMsg(body); err != nil {
		return nil, fmt.Errorf("%w: v1.0: %w", errMalformed, err)
	}
	for _, c := range tp.Chunks {
		st.startChunk(len(c.Spans))
		for _, sp := range c.Spans {
			if sp == nil {
				return nil, malformed("v1.0: nil span")
			}
			st.spans = append(st.spans, chunkSpan{id: sp.SpanID(), parent: sp.ParentID(), service: []byte(sp.Service())})
		}
		high, low := c.TraceIDHigh(), c.LegacyTraceID()
		// A zero upper half is a tracer in 64-bit mode: like a v0.4 chunk
		// without _dd.p.tid, the low half and the span ID decide.
		if st.lookup(s, low, func() (uint64, bool) { return high, high != 0 }) == 0 || st.resolve() == 0 {
			continue
		}
		for i, a := range st.assign {
			if a.tags == nil {
				continue
			}
			sp := c.Spans[i]
			if _, ok := sp.GetAttributeAsString(tagKeys[0]); ok {
				continue
			}
			vals := tagValues(a.tags)
			for k := range tagKeys {
				sp.SetStringAttribute(tagKeys[k], vals[k])
			}
			st.tagged++
		}
	}
	if st.tagged == 0 {
		return nil, nil
	}
	st.changed = true
	out, err := tp.MarshalMsg(dst)
	if err != nil {
		return nil, fmt.Errorf("encode v1.0 payload: %w", err)
	}
	return out, nil
}
