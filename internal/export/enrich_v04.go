package export

import (
	"github.com/tinylib/msgp/msgp"
)

// v04Span locates one v0.4 span (a msgpack map) in the payload.
type v04Span struct {
	start, hdrEnd, end int // the span map, its header's end
	fields             int
	metaStart, metaEnd int // the meta value; metaStart < 0 when absent
}

// enrichV04 walks a v0.4 payload, an array of traces, each an array of span
// maps, and records the edits that add code origin tags to matching spans.
func (st *encState) enrichV04(body []byte, s *store) error {
	p := body
	off := func() int { return len(body) - len(p) }
	nt, p, err := readCount(p, false)
	if err != nil {
		return err
	}
	for range nt {
		var ns int
		ns, p, err = readCount(p, false)
		if err != nil {
			return err
		}
		st.startChunk(ns)
		var traceLow uint64
		for i := range ns {
			sp := v04Span{start: off(), metaStart: -1}
			var cs chunkSpan
			sp.fields, p, err = readCount(p, true)
			if err != nil {
				return err
			}
			sp.hdrEnd = off()
			for range sp.fields {
				var key []byte
				key, p, err = readKey(p)
				if err != nil {
					return malformed("span key: %v", err)
				}
				switch string(key) {
				case "trace_id":
					var t uint64
					t, p, err = readUint64(p)
					if i == 0 {
						traceLow = t
					}
				case "span_id":
					cs.id, p, err = readUint64(p)
				case "parent_id":
					cs.parent, p, err = readUint64(p)
				case "service":
					cs.service, p, err = readStr(p)
				case "meta":
					sp.metaStart = off()
					p, err = skipMsgp(p)
					sp.metaEnd = off()
				default:
					p, err = skipMsgp(p)
				}
				if err != nil {
					return malformed("span field %q: %v", key, err)
				}
			}
			sp.end = off()
			st.spans = append(st.spans, cs)
			st.v04 = append(st.v04, sp)
		}
		if st.lookup(s, traceLow, func() (uint64, bool) { return st.v04TID(body) }) == 0 {
			continue
		}
		if st.resolve() == 0 {
			continue
		}
		for i := range st.assign {
			if a := st.assign[i]; a.tags != nil {
				if err := st.tagV04(body, st.v04[i], a.tags); err != nil {
					return err
				}
			}
		}
	}
	if len(p) != 0 {
		return malformed("%d trailing bytes", len(p))
	}
	return nil
}

// v04TID finds `_dd.p.tid` in the current chunk: tracers put it on the first
// span, but a chunk reordered by a partial flush may carry it elsewhere.
func (st *encState) v04TID(body []byte) (uint64, bool) {
	for _, sp := range st.v04 {
		if sp.metaStart < 0 {
			continue
		}
		p := body[sp.metaStart:sp.metaEnd]
		if msgp.IsNil(p) {
			continue
		}
		n, p, err := readCount(p, true)
		if err != nil {
			continue
		}
		for range n {
			var k, v []byte
			if k, p, err = readStr(p); err != nil {
				break
			}
			if string(k) != tidKey {
				if p, err = skipMsgp(p); err != nil {
					break
				}
				continue
			}
			if v, _, err = readStr(p); err != nil {
				break
			}
			return parseTID(v)
		}
	}
	return 0, false
}

// tagV04 adds the tags to one span: appended to its meta map, or as a new
// meta map when the span has none. A span whose meta already has
// `_dd.code_origin.type` is left alone.
func (st *encState) tagV04(body []byte, sp v04Span, ts *tagSet) error {
	vals := tagValues(ts)
	appendPairs := func(b []byte) []byte {
		for k := range tagKeys {
			b = msgp.AppendString(b, tagKeys[k])
			b = msgp.AppendString(b, vals[k])
		}
		return b
	}
	switch {
	case sp.metaStart < 0:
		mark := len(st.extra)
		st.extra = msgp.AppendMapHeader(st.extra, uint32(sp.fields+1))
		st.addEdit(sp.start, sp.hdrEnd, mark)
		mark = len(st.extra)
		st.extra = msgp.AppendString(st.extra, "meta")
		st.extra = msgp.AppendMapHeader(st.extra, uint32(len(tagKeys)))
		st.extra = appendPairs(st.extra)
		st.addEdit(sp.end, sp.end, mark)
	case msgp.IsNil(body[sp.metaStart:sp.metaEnd]):
		mark := len(st.extra)
		st.extra = msgp.AppendMapHeader(st.extra, uint32(len(tagKeys)))
		st.extra = appendPairs(st.extra)
		st.addEdit(sp.metaStart, sp.metaEnd, mark)
	default:
		p := body[sp.metaStart:sp.metaEnd]
		n, p, err := readCount(p, true)
		if err != nil {
			return err
		}
		hdrEnd := sp.metaEnd - len(p)
		for range n {
			var k []byte
			if k, p, err = readStr(p); err != nil {
				return malformed("meta key: %v", err)
			}
			if string(k) == tagKeys[0] {
				return nil
			}
			if p, err = skipMsgp(p); err != nil {
				return malformed("meta value: %v", err)
			}
		}
		mark := len(st.extra)
		st.extra = msgp.AppendMapHeader(st.extra, uint32(n+len(tagKeys)))
		st.addEdit(sp.metaStart, hdrEnd, mark)
		mark = len(st.extra)
		st.extra = appendPairs(st.extra)
		st.addEdit(sp.metaEnd, sp.metaEnd, mark)
	}
	st.tagged++
	return nil
}
