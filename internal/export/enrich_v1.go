package export

import (
	"encoding/binary"

	"github.com/tinylib/msgp/msgp"
)

// The v1.0 (idx) wire format, see the Agent's pkg/proto/pbgo/trace/idx:
// integer-keyed maps whose strings are "streaming strings": the first
// occurrence of a string is written inline and appended to a string table,
// later ones are written as the table index. Adding a tag therefore cannot
// be a plain splice: a new inline string shifts the index of every string
// first seen after it. v1Walker walks the payload once, recording where its
// streaming strings are, then copies it with the tags inserted and the
// indices that follow an insertion renumbered, replaying the record instead
// of walking again; the Agent decodes the result to the same spans, plus the
// tags.

// Field numbers.
const (
	v1PayloadStrings    = 1
	v1PayloadAttributes = 10
	v1PayloadChunks     = 11
	v1ChunkOrigin       = 2
	v1ChunkAttributes   = 3
	v1ChunkSpans        = 4
	v1ChunkTraceID      = 6
	v1SpanService       = 1
	v1SpanName          = 2
	v1SpanResource      = 3
	v1SpanID            = 4
	v1SpanParent        = 5
	v1SpanAttributes    = 9
	v1SpanType          = 10
	v1SpanLinks         = 11
	v1SpanEvents        = 12
	v1SpanEnv           = 13
	v1SpanVersion       = 14
	v1SpanComponent     = 15
	v1LinkAttributes    = 3
	v1LinkTracestate    = 4
	v1EventName         = 2
	v1EventAttributes   = 3
	v1AnyString         = 1
	v1AnyArray          = 6
	v1AnyKeyValueList   = 7
	v1MaxDepth          = 64 // the Agent's maxAnyValueDepth
)

// strTable mirrors the Agent's idx.StringTable: index 0 is "", Add returns
// the index of an existing equal string.
type strTable struct {
	strs   [][]byte
	lookup map[string]uint32
}

func (t *strTable) reset() {
	t.strs = append(t.strs[:0], nil)
	if t.lookup == nil {
		t.lookup = make(map[string]uint32)
	}
	clear(t.lookup)
	t.lookup[""] = 0
}

func (t *strTable) add(s []byte) (uint32, bool) {
	if i, ok := t.lookup[string(s)]; ok {
		return i, false
	}
	return t.addUnchecked(s), true
}

func (t *strTable) addUnchecked(s []byte) uint32 {
	i := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.lookup[string(s)] = i
	return i
}

// The walk records each streaming string of the input as its body offset,
// tagged with tokNew for a string's first occurrence (a new table entry);
// the copy decodes it again from there. Four bytes a string keep the
// record's cost near that of reading the payload; payloads are at most
// MaxBody bytes, far below 2^31.
const tokNew = 1 << 31

// v1Pending is an input string (table index in) that the tags added to
// the output (at index out) before the input's first occurrence of it.
type v1Pending struct{ in, out uint32 }

// v1Patch rewrites the index at body offset off to v, in an encoding of the
// same length.
type v1Patch struct {
	off int
	v   uint32
}

// v1Op is an edit of the output for a span that gets tags, in body order.
type v1Op struct {
	at, end int // body[at:end] is replaced; at == end inserts
	kind    uint8
	n       uint32 // opHeader: the element count of the new header
	isMap   bool   // opHeader: map (span) or array (attributes) header
	tags    *tagSet
}

const (
	opHeader     uint8 = iota + 1 // a span map or attributes array header, with room for the tags
	opAttrsField                  // a new attributes field holding the tags
	opTags                        // the tags, at the end of existing attributes
)

// v1SpanPos is where one span's parts are, for the edits.
type v1SpanPos struct {
	start, hdrEnd, end int // the span map and its header
	fields             int
	attrStart          int // attributes array header; -1 when absent
	attrHdrEnd         int
	attrEnd            int
	attrN              int
}

// v1Walker walks a v1.0 payload once, like the Agent's decoder, and records
// what the copy needs: the streaming strings (toks) and the edits (ops).
type v1Walker struct {
	body []byte
	i    int // read position in body; an offset, not a slice, so that
	// advancing it is a plain integer store (no GC write barrier)

	orig strTable // the table a decoder of the input builds
	toks []uint32 // toks[:nt] are recorded; written by index, not append,
	nt   int      // as this runs for every string of the payload
	ops  []v1Op
	pos  []v1SpanPos // spans of the current chunk

	// copy state
	remap    []uint32          // input index -> output index
	inserted map[string]uint32 // strings the tags added to the output table
	origLen  uint32            // input table length at the copy position
	outLen   uint32            // output table length at the copy position
	// Input strings first seen after a tag added them: the output's decoder
	// resolves them to the tag's copy. Few, so a list and its smallest index.
	pending    []v1Pending
	minPending uint32
	patches    []v1Patch // same-size index rewrites in the segment not yet copied

	hasOrigin bool // the current span already has _dd.code_origin.type

	st *encState
	s  *store
}

// rest returns the unread input.
func (w *v1Walker) rest() []byte { return w.body[w.i:] }

// adv moves the read position to o, a suffix of body.
func (w *v1Walker) adv(o []byte) { w.i = len(w.body) - len(o) }

// u32 reads an unsigned integer; field numbers, types and most string
// indices are positive fixints.
func (w *v1Walker) u32() (uint32, error) {
	if w.i < len(w.body) {
		if c := w.body[w.i]; c < 0x80 {
			w.i++
			return uint32(c), nil
		}
	}
	return w.u32Slow()
}

func (w *v1Walker) u32Slow() (uint32, error) {
	if p := w.body[w.i:]; len(p) > 0 {
		switch c := p[0]; {
		case c == 0xcc && len(p) >= 2:
			w.i += 2
			return uint32(p[1]), nil
		case c == 0xcd && len(p) >= 3:
			w.i += 3
			return uint32(binary.BigEndian.Uint16(p[1:])), nil
		}
	}
	v, o, err := msgp.ReadUint32Bytes(w.rest())
	if err != nil {
		return 0, malformed("v1.0 integer: %v", err)
	}
	w.adv(o)
	return v, nil
}

func (w *v1Walker) skip() error {
	o, err := skipMsgp(w.rest())
	if err != nil {
		return malformed("v1.0 value: %v", err)
	}
	w.adv(o)
	return nil
}

func (w *v1Walker) count(isMap bool) (int, error) {
	n, o, err := readCount(w.rest(), isMap)
	if err != nil {
		return 0, err
	}
	w.adv(o)
	return n, nil
}

// tok records a streaming string.
func (w *v1Walker) tok(t uint32) {
	if w.nt == len(w.toks) {
		w.toks = append(w.toks, make([]uint32, len(w.toks)+1024)...)
	}
	w.toks[w.nt] = t
	w.nt++
}

// inline registers an inline string that started at body offset at.
func (w *v1Walker) inline(at int, s []byte) uint32 {
	i, isNew := w.orig.add(s)
	if isNew {
		w.tok(uint32(at) | tokNew)
	}
	return i
}

// str reads a streaming string and returns its input table index.
func (w *v1Walker) str() (uint32, error) {
	at := w.i
	if at >= len(w.body) {
		return 0, malformed("v1.0: streaming string at EOF")
	}
	c := w.body[at]
	if c < 0x80 { // an index, the common case
		w.i++
		if int(c) >= len(w.orig.strs) {
			return 0, malformed("v1.0: string index %d beyond table of %d", c, len(w.orig.strs))
		}
		w.tok(uint32(at))
		return uint32(c), nil
	}
	if c&0xe0 == 0xa0 { // fixstr, the common inline string
		n := 1 + int(c&0x1f)
		if at+n > len(w.body) {
			return 0, malformed("v1.0 string truncated")
		}
		w.i += n
		return w.inline(at, w.body[at+1:at+n]), nil
	}
	if isStr(w.body[at:]) {
		s, o, err := msgp.ReadStringZC(w.rest())
		if err != nil {
			return 0, malformed("v1.0 string: %v", err)
		}
		w.adv(o)
		return w.inline(at, s), nil
	}
	ref, err := w.u32()
	if err != nil {
		return 0, err
	}
	if int(ref) >= len(w.orig.strs) {
		return 0, malformed("v1.0: string index %d beyond table of %d", ref, len(w.orig.strs))
	}
	w.tok(uint32(at))
	return ref, nil
}

// walk reads the payload and records its strings and the edits.
func (w *v1Walker) walk() error {
	w.i = 0
	w.orig.reset()
	w.nt, w.ops = 0, w.ops[:0]
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch {
		case key == v1PayloadStrings:
			if len(w.orig.strs) > 1 {
				return malformed("v1.0: string table after streaming strings")
			}
			n, err := w.count(false)
			if err != nil {
				return err
			}
			for range n {
				at := w.i
				s, o, err := msgp.ReadStringZC(w.rest())
				if err != nil {
					return malformed("v1.0 string table: %v", err)
				}
				w.adv(o)
				if len(s) == 0 {
					continue
				}
				w.orig.addUnchecked(s)
				w.tok(uint32(at) | tokNew)
			}
		case key >= 2 && key <= 9:
			_, err = w.str()
		case key == v1PayloadAttributes:
			err = w.keyValues(0)
		case key == v1PayloadChunks:
			var n int
			if n, err = w.count(false); err != nil {
				return err
			}
			for range n {
				if err = w.traceChunk(); err != nil {
					return err
				}
			}
		default:
			err = w.harvest(0)
		}
		if err != nil {
			return err
		}
	}
	if w.i != len(w.body) {
		return malformed("v1.0: %d trailing bytes", len(w.body)-w.i)
	}
	return nil
}

func (w *v1Walker) traceChunk() error {
	w.st.startChunk(0)
	w.pos = w.pos[:0]
	var traceID []byte
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch key {
		case v1ChunkOrigin:
			_, err = w.str()
		case v1ChunkAttributes:
			err = w.keyValues(0)
		case v1ChunkSpans:
			var n int
			if n, err = w.count(false); err != nil {
				return err
			}
			for range n {
				if err = w.spanMap(); err != nil {
					return err
				}
			}
		case v1ChunkTraceID:
			var o []byte
			traceID, o, err = msgp.ReadBytesZC(w.rest())
			if err != nil {
				return malformed("v1.0 trace ID: %v", err)
			}
			w.adv(o)
		case 1, 5, 7:
			err = w.skip()
		default:
			err = w.harvest(0)
		}
		if err != nil {
			return err
		}
	}
	high, low := splitTraceID(traceID)
	// A zero upper half is a tracer in 64-bit mode: like a v0.4 chunk without
	// _dd.p.tid, the low half and the span ID decide.
	if w.st.lookup(w.s, low, func() (uint64, bool) { return high, high != 0 }) == 0 || w.st.resolve() == 0 {
		return nil
	}
	for i, a := range w.st.assign {
		if a.tags == nil || w.st.v1origin[i] {
			continue
		}
		p := w.pos[i]
		if p.attrStart < 0 {
			w.ops = append(w.ops,
				v1Op{at: p.start, end: p.hdrEnd, kind: opHeader, n: uint32(p.fields + 1), isMap: true},
				v1Op{at: p.end, end: p.end, kind: opAttrsField, tags: a.tags})
		} else {
			w.ops = append(w.ops,
				v1Op{at: p.attrStart, end: p.attrHdrEnd, kind: opHeader, n: uint32(p.attrN + 3*len(tagKeys))},
				v1Op{at: p.attrEnd, end: p.attrEnd, kind: opTags, tags: a.tags})
		}
	}
	return nil
}

func (w *v1Walker) spanMap() error {
	p := v1SpanPos{start: w.i, attrStart: -1}
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	p.fields, p.hdrEnd = nf, w.i
	var cs chunkSpan
	w.hasOrigin = false
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch key {
		case v1SpanService:
			var s uint32
			s, err = w.str()
			cs.service = w.orig.strs[s]
		case v1SpanName, v1SpanResource, v1SpanType, v1SpanEnv, v1SpanVersion, v1SpanComponent:
			_, err = w.str()
		case v1SpanID, v1SpanParent:
			var v uint64
			if q := w.rest(); len(q) >= 9 && q[0] == 0xcf {
				v = binary.BigEndian.Uint64(q[1:])
				w.i += 9
			} else {
				var o []byte
				if v, o, err = msgp.ReadUint64Bytes(q); err != nil {
					return malformed("v1.0 span ID: %v", err)
				}
				w.adv(o)
			}
			if key == v1SpanID {
				cs.id = v
			} else {
				cs.parent = v
			}
		case v1SpanAttributes:
			// The last attributes field is the one the tags go into, as the
			// Agent's decoder keeps the last.
			p.attrStart = w.i
			p.attrN, p.attrHdrEnd, err = w.spanAttributes()
			p.attrEnd = w.i
		case v1SpanLinks:
			err = w.list(w.spanLink)
		case v1SpanEvents:
			err = w.list(w.spanEvent)
		case 6, 7, 8, 16:
			err = w.skip()
		default:
			err = w.harvest(0)
		}
		if err != nil {
			return err
		}
	}
	p.end = w.i
	w.pos = append(w.pos, p)
	w.st.spans = append(w.st.spans, cs)
	w.st.v1origin = append(w.st.v1origin, w.hasOrigin)
	return nil
}

// spanAttributes walks a span's own attributes, noting a code origin tag
// already there; it returns the element count and the header's end.
func (w *v1Walker) spanAttributes() (n, hdrEnd int, err error) {
	n, err = w.count(false)
	if err != nil {
		return 0, 0, err
	}
	hdrEnd = w.i
	if n%3 != 0 {
		return 0, 0, malformed("v1.0: %d attribute elements, not a multiple of 3", n)
	}
	for range n / 3 {
		k, err := w.str()
		if err != nil {
			return 0, 0, err
		}
		if string(w.orig.strs[k]) == tagKeys[0] {
			w.hasOrigin = true
		}
		if err := w.anyValue(1); err != nil {
			return 0, 0, err
		}
	}
	return n, hdrEnd, nil
}

func (w *v1Walker) list(item func() error) error {
	n, err := w.count(false)
	if err != nil {
		return err
	}
	for range n {
		if err := item(); err != nil {
			return err
		}
	}
	return nil
}

func (w *v1Walker) spanLink() error {
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch key {
		case v1LinkAttributes:
			err = w.keyValues(0)
		case v1LinkTracestate:
			_, err = w.str()
		case 1, 2, 5:
			err = w.skip()
		default:
			err = w.harvest(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *v1Walker) spanEvent() error {
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch key {
		case v1EventName:
			_, err = w.str()
		case v1EventAttributes:
			err = w.keyValues(0)
		case 1:
			err = w.skip()
		default:
			err = w.harvest(0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keyValues walks a flat [key, type, value, ...] attribute array.
func (w *v1Walker) keyValues(depth int) error {
	n, err := w.count(false)
	if err != nil {
		return err
	}
	if n%3 != 0 {
		return malformed("v1.0: %d attribute elements, not a multiple of 3", n)
	}
	for range n / 3 {
		if _, err := w.str(); err != nil {
			return err
		}
		if err := w.anyValue(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (w *v1Walker) anyValue(depth int) error {
	if depth > v1MaxDepth {
		return malformed("v1.0: attribute nesting deeper than %d", v1MaxDepth)
	}
	typ, err := w.u32()
	if err != nil {
		return err
	}
	switch typ {
	case v1AnyString:
		_, err = w.str()
	case 2, 3, 4, 5:
		err = w.skip()
	case v1AnyArray:
		var n int
		if n, err = w.count(false); err != nil {
			return err
		}
		if n%2 != 0 {
			return malformed("v1.0: odd array attribute")
		}
		for range n / 2 {
			if err = w.anyValue(depth + 1); err != nil {
				return err
			}
		}
	case v1AnyKeyValueList:
		err = w.keyValues(depth + 1)
	default:
		return malformed("v1.0: attribute type %d", typ)
	}
	return err
}

// harvest walks a field the walker does not know, registering its inline
// strings like the Agent's decoder does (harvestUnknownFieldStrings).
func (w *v1Walker) harvest(depth int) error {
	if depth > v1MaxDepth {
		return malformed("v1.0: unknown field nesting deeper than %d", v1MaxDepth)
	}
	switch msgp.NextType(w.rest()) {
	case msgp.StrType:
		at := w.i
		s, o, err := msgp.ReadStringZC(w.rest())
		if err != nil {
			return malformed("v1.0 string: %v", err)
		}
		w.adv(o)
		w.inline(at, s)
	case msgp.ArrayType, msgp.MapType:
		isMap := msgp.NextType(w.rest()) == msgp.MapType
		n, err := w.count(isMap)
		if err != nil {
			return err
		}
		if isMap {
			n *= 2
		}
		for range n {
			if err := w.harvest(depth + 1); err != nil {
				return err
			}
		}
	default:
		return w.skip()
	}
	return nil
}

// putStr appends s to the output as a streaming string: its index when the
// output table has it, else inline (which adds it).
func (w *v1Walker) putStr(b []byte, s string) []byte {
	if i, ok := w.inserted[s]; ok {
		return msgp.AppendUint32(b, i)
	}
	k, inInput := w.orig.lookup[s]
	if inInput && k < w.origLen {
		return msgp.AppendUint32(b, w.remap[k])
	}
	w.inserted[s] = w.outLen
	if inInput { // k >= origLen: the input has it later
		w.pending = append(w.pending, v1Pending{in: k, out: w.outLen})
		w.minPending = min(w.minPending, k)
	}
	w.outLen++
	return msgp.AppendString(b, s)
}

func (w *v1Walker) appendTags(b []byte, ts *tagSet) []byte {
	vals := tagValues(ts)
	for k := range tagKeys {
		b = w.putStr(b, tagKeys[k])
		b = msgp.AppendUint32(b, v1AnyString)
		b = w.putStr(b, vals[k])
	}
	return b
}

// takePending returns the output index of the pending input string in and
// drops it from the list.
func (w *v1Walker) takePending(in uint32) uint32 {
	out := uint32(0)
	w.minPending = ^uint32(0)
	k := 0
	for _, p := range w.pending {
		if p.in == in {
			out = p.out
			continue
		}
		w.pending[k] = p
		k++
		w.minPending = min(w.minPending, p.in)
	}
	w.pending = w.pending[:k]
	return out
}

// copy writes the payload to dst with the recorded edits applied and the
// string indices renumbered: each string the tags add inline takes the next
// output index, so every input string first seen after it moves up one. Most
// renumbered indices keep their encoded length: they are patched in place
// after their stretch of the body is copied whole, so that the copy costs a
// memmove per insertion, not per index.
func (w *v1Walker) copy(dst []byte) []byte {
	w.origLen, w.outLen = 1, 1 // index 0 is ""
	w.remap = append(w.remap[:0], 0)
	if w.inserted == nil {
		w.inserted = make(map[string]uint32)
	}
	clear(w.inserted)
	w.pending, w.minPending = w.pending[:0], ^uint32(0)
	w.patches = w.patches[:0]
	body, last := w.body, 0
	toks := w.toks[:w.nt]
	ti, oi := 0, 0
	for ti < len(toks) || oi < len(w.ops) {
		if oi < len(w.ops) && (ti == len(toks) || w.ops[oi].at <= int(toks[ti]&^tokNew)) {
			op := &w.ops[oi]
			oi++
			dst = w.flush(dst, last, op.at)
			last = op.end
			switch op.kind {
			case opHeader:
				if op.isMap {
					dst = msgp.AppendMapHeader(dst, op.n)
				} else {
					dst = msgp.AppendArrayHeader(dst, op.n)
				}
			case opAttrsField:
				dst = msgp.AppendUint32(dst, v1SpanAttributes)
				dst = msgp.AppendArrayHeader(dst, uint32(3*len(tagKeys)))
				dst = w.appendTags(dst, op.tags)
				w.st.tagged++
			case opTags:
				dst = w.appendTags(dst, op.tags)
				w.st.tagged++
			}
			continue
		}
		t := toks[ti]
		ti++
		off := int(t &^ tokNew)
		if t&tokNew != 0 {
			in := w.origLen
			w.origLen++
			if in == w.minPending {
				w.remap = append(w.remap, w.takePending(in))
				continue
			}
			w.remap = append(w.remap, w.outLen)
			w.outLen++
			continue
		}
		// The walk read this index: it decodes again.
		ref, end := uint32(body[off]), off+1
		if ref >= 0x80 {
			v, o, _ := msgp.ReadUint32Bytes(body[off:])
			ref, end = v, len(body)-len(o)
		}
		ni := w.remap[ref]
		switch {
		case ni == ref:
		case uintLen(ni) == end-off:
			w.patches = append(w.patches, v1Patch{off: off, v: ni})
		default:
			dst = w.flush(dst, last, off)
			dst = msgp.AppendUint32(dst, ni)
			last = end
		}
	}
	return w.flush(dst, last, len(body))
}

// flush appends body[last:upto] to dst and applies the patches inside it.
func (w *v1Walker) flush(dst []byte, last, upto int) []byte {
	at := len(dst) - last // dst offset of body offset 0
	dst = append(dst, w.body[last:upto]...)
	for _, p := range w.patches {
		msgp.AppendUint32(dst[at+p.off:at+p.off], p.v) // in place: same length
	}
	w.patches = w.patches[:0]
	return dst
}

// uintLen is the length of msgp's encoding of v.
func uintLen(v uint32) int {
	switch {
	case v < 0x80:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	}
	return 5
}

// isStr reports a msgpack str (not bin) header, as the Agent's isString.
func isStr(b []byte) bool {
	return len(b) > 0 && (b[0]&0xe0 == 0xa0 || b[0] == 0xd9 || b[0] == 0xda || b[0] == 0xdb)
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

// enrichV1 walks the payload and, when a span gets tags, copies the
// enriched payload into dst. It returns nil when nothing changes.
func (st *encState) enrichV1(dst, body []byte, s *store) ([]byte, error) {
	w := &st.v1
	w.body, w.st, w.s = body, st, s
	st.v1origin = st.v1origin[:0]
	if err := w.walk(); err != nil {
		return nil, err
	}
	if len(w.ops) == 0 {
		return nil, nil
	}
	dst = w.copy(dst)
	st.changed = true
	return dst, nil
}
