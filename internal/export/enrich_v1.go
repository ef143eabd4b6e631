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
// first seen after it. v1Walker copies the payload and renumbers the indices
// that follow an insertion; the Agent decodes the result to the same spans,
// plus the tags.

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

// v1Plan says that span `span` of chunk `chunk` gets tags.
type v1Plan struct {
	chunk, span int
	tags        *tagSet
	hasAttrs    bool
}

// v1Walker walks a v1.0 payload twice: to plan (which spans get tags) and to
// emit (copy with tags inserted and string indices renumbered).
type v1Walker struct {
	body []byte
	i    int // read position in body; an offset, not a slice, so that
	// advancing it is a plain integer store (no GC write barrier)
	emit bool

	orig  strTable // the table a decoder of the input builds (plan)
	remap []uint32 // input index -> output index (emit)
	// The emit pass does not rebuild tables: the input's final table (from
	// the plan pass) tells whether an inline string is new at its position
	// (its index is the table's length there), and the output's table is
	// the input's plus the few strings the tags add.
	origLen  uint32            // input table length at the read position (emit)
	outLen   uint32            // output table length at the write position (emit)
	inserted map[string]uint32 // strings the tags added to the output table (emit)

	dst  []byte // output (emit)
	last int    // body offset copied to dst so far (emit)

	plans  []v1Plan
	cursor int // next plan (emit)

	// planning state of the current span
	chunk, span int
	hasOrigin   bool
	hasAttrs    bool
	service     uint32

	st *encState
	s  *store
}

func (w *v1Walker) off() int { return w.i }

// rest returns the unread input.
func (w *v1Walker) rest() []byte { return w.body[w.i:] }

// adv moves the read position to o, a suffix of body.
func (w *v1Walker) adv(o []byte) { w.i = len(w.body) - len(o) }

// patch replaces body[at:w.off()] with b in the output.
func (w *v1Walker) patch(at int, b []byte) {
	w.dst = append(w.dst, w.body[w.last:at]...)
	w.dst = append(w.dst, b...)
	w.last = w.off()
}

// insert adds b to the output at the current position.
func (w *v1Walker) insert(b []byte) {
	w.dst = append(w.dst, w.body[w.last:w.off()]...)
	w.dst = append(w.dst, b...)
	w.last = w.off()
}

func (w *v1Walker) u32() (uint32, error) {
	// Field numbers, types and most string indices are positive fixints.
	if p := w.body[w.i:]; len(p) > 0 {
		switch c := p[0]; {
		case c < 0x80:
			w.i++
			return uint32(c), nil
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

// isStr reports a msgpack str (not bin) header, as the Agent's isString.
func isStr(b []byte) bool {
	return len(b) > 0 && (b[0]&0xe0 == 0xa0 || b[0] == 0xd9 || b[0] == 0xda || b[0] == 0xdb)
}

// inline registers an inline string of the input: in the plan pass in the
// input's table, in the emit pass in the index remapping.
func (w *v1Walker) inline(s []byte) (uint32, error) {
	if !w.emit {
		oi, _ := w.orig.add(s)
		return oi, nil
	}
	oi, ok := w.orig.lookup[string(s)]
	if !ok || oi > w.origLen {
		return 0, malformed("v1.0: input changed between passes")
	}
	if oi == w.origLen { // first occurrence
		w.origLen++
		ni, dup := w.inserted[string(s)]
		if !dup { // else the output's decoder finds the tag's copy
			ni = w.outLen
			w.outLen++
		}
		w.remap = append(w.remap, ni)
	}
	return oi, nil
}

// tableLen is the input table's length at the read position.
func (w *v1Walker) tableLen() int {
	if w.emit {
		return int(w.origLen)
	}
	return len(w.orig.strs)
}

// str reads a streaming string and returns its input table index.
func (w *v1Walker) str() (uint32, error) {
	p := w.rest()
	if len(p) == 0 {
		return 0, malformed("v1.0: streaming string at EOF")
	}
	if c := p[0]; c&0xe0 == 0xa0 { // fixstr, the common inline string
		n := 1 + int(c&0x1f)
		if n > len(p) {
			return 0, malformed("v1.0 string truncated")
		}
		w.i += n
		return w.inline(p[1:n])
	}
	if isStr(p) {
		s, o, err := msgp.ReadStringZC(p)
		if err != nil {
			return 0, malformed("v1.0 string: %v", err)
		}
		w.adv(o)
		return w.inline(s)
	}
	at := w.off()
	ref, err := w.u32()
	if err != nil {
		return 0, err
	}
	if int(ref) >= w.tableLen() {
		return 0, malformed("v1.0: string index %d beyond table of %d", ref, w.tableLen())
	}
	if w.emit {
		if ni := w.remap[ref]; ni != ref {
			w.patch(at, msgp.AppendUint32(w.st.extra[:0], ni))
		}
	}
	return ref, nil
}

// putStr appends s to the output as a streaming string: its index when the
// output table has it, else inline (which adds it).
func (w *v1Walker) putStr(b []byte, s string) []byte {
	if i, ok := w.inserted[s]; ok {
		return msgp.AppendUint32(b, i)
	}
	if k, ok := w.orig.lookup[s]; ok && k < w.origLen {
		return msgp.AppendUint32(b, w.remap[k])
	}
	w.inserted[s] = w.outLen
	w.outLen++
	return msgp.AppendString(b, s)
}

// walk runs one pass over the payload.
func (w *v1Walker) walk() error {
	w.i = 0
	if w.emit {
		w.origLen, w.outLen = 1, 1 // index 0 is ""
		if w.inserted == nil {
			w.inserted = make(map[string]uint32)
		}
		clear(w.inserted)
		w.remap = append(w.remap[:0], 0)
		w.last = 0
		w.cursor = 0
	} else {
		w.orig.reset()
	}
	w.chunk = -1
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
			if w.tableLen() > 1 {
				return malformed("v1.0: string table after streaming strings")
			}
			n, err := w.count(false)
			if err != nil {
				return err
			}
			for range n {
				s, o, err := msgp.ReadStringZC(w.rest())
				if err != nil {
					return malformed("v1.0 string table: %v", err)
				}
				w.adv(o)
				if len(s) == 0 {
					continue
				}
				if w.emit {
					w.origLen++
					w.remap = append(w.remap, w.outLen)
					w.outLen++
				} else {
					w.orig.addUnchecked(s)
				}
			}
		case key >= 2 && key <= 9:
			_, err = w.str()
		case key == v1PayloadAttributes:
			err = w.keyValues(0, nil)
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
	if w.emit {
		w.dst = append(w.dst, w.body[w.last:]...)
	}
	return nil
}

func (w *v1Walker) traceChunk() error {
	w.chunk++
	w.st.startChunk(0)
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
			err = w.keyValues(0, nil)
		case v1ChunkSpans:
			var n int
			if n, err = w.count(false); err != nil {
				return err
			}
			for i := range n {
				w.span = i
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
	if w.emit {
		return nil
	}
	// Plan this chunk.
	high, low := splitTraceID(traceID)
	// A zero upper half is a tracer in 64-bit mode: like a v0.4 chunk without
	// _dd.p.tid, the low half and the span ID decide.
	if w.st.lookup(w.s, low, func() (uint64, bool) { return high, high != 0 }) == 0 || w.st.resolve() == 0 {
		return nil
	}
	for i, a := range w.st.assign {
		if a.tags != nil && !w.st.v1origin[i] {
			w.plans = append(w.plans, v1Plan{chunk: w.chunk, span: i, tags: a.tags, hasAttrs: w.st.v1attrs[i]})
		}
	}
	return nil
}

// plan returns the plan of the current span, if it gets tags.
func (w *v1Walker) plan() *v1Plan {
	if w.cursor < len(w.plans) {
		if p := &w.plans[w.cursor]; p.chunk == w.chunk && p.span == w.span {
			return p
		}
	}
	return nil
}

func (w *v1Walker) spanMap() error {
	start := w.off()
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	var pl *v1Plan
	if w.emit {
		if pl = w.plan(); pl != nil {
			w.cursor++
			if !pl.hasAttrs {
				w.patch(start, msgp.AppendMapHeader(w.st.extra[:0], uint32(nf+1)))
			}
		}
	}
	var cs chunkSpan
	w.hasOrigin, w.hasAttrs = false, false
	for range nf {
		key, err := w.u32()
		if err != nil {
			return err
		}
		switch key {
		case v1SpanService:
			w.service, err = w.str()
			cs.service = w.orig.strs[w.service]
		case v1SpanName, v1SpanResource, v1SpanType, v1SpanEnv, v1SpanVersion, v1SpanComponent:
			_, err = w.str()
		case v1SpanID, v1SpanParent:
			var v uint64
			if p := w.rest(); len(p) >= 9 && p[0] == 0xcf {
				v = binary.BigEndian.Uint64(p[1:])
				w.i += 9
			} else {
				var o []byte
				if v, o, err = msgp.ReadUint64Bytes(p); err != nil {
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
			w.hasAttrs = true
			err = w.keyValues(0, pl)
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
	if pl != nil && !pl.hasAttrs {
		b := msgp.AppendUint32(w.st.extra[:0], v1SpanAttributes)
		b = msgp.AppendArrayHeader(b, uint32(3*len(tagKeys)))
		b = w.appendTags(b, pl.tags)
		w.insert(b)
		w.st.extra = b[:0]
		w.st.tagged++
	}
	if !w.emit {
		w.st.spans = append(w.st.spans, cs)
		w.st.v1origin = append(w.st.v1origin, w.hasOrigin)
		w.st.v1attrs = append(w.st.v1attrs, w.hasAttrs)
	}
	return nil
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
			err = w.keyValues(0, nil)
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
			err = w.keyValues(0, nil)
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

// keyValues walks a flat [key, type, value, ...] attribute array. With a
// plan (span attributes in the emit pass), the tags are appended to it.
func (w *v1Walker) keyValues(depth int, pl *v1Plan) error {
	start := w.off()
	n, err := w.count(false)
	if err != nil {
		return err
	}
	if n%3 != 0 {
		return malformed("v1.0: %d attribute elements, not a multiple of 3", n)
	}
	if pl != nil {
		w.patch(start, msgp.AppendArrayHeader(w.st.extra[:0], uint32(n+3*len(tagKeys))))
	}
	for range n / 3 {
		k, err := w.str()
		if err != nil {
			return err
		}
		if !w.emit && depth == 0 && string(w.orig.strs[k]) == tagKeys[0] {
			w.hasOrigin = true
		}
		if err := w.anyValue(depth + 1); err != nil {
			return err
		}
	}
	if pl != nil {
		b := w.appendTags(w.st.extra[:0], pl.tags)
		w.insert(b)
		w.st.extra = b[:0]
		w.st.tagged++
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
		err = w.keyValues(depth+1, nil)
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
		s, o, err := msgp.ReadStringZC(w.rest())
		if err != nil {
			return malformed("v1.0 string: %v", err)
		}
		w.adv(o)
		if _, err := w.inline(s); err != nil {
			return err
		}
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

// enrichV1 plans and, when a span gets tags, emits the enriched payload
// into dst. It returns nil when nothing changes.
func (st *encState) enrichV1(dst, body []byte, s *store) ([]byte, error) {
	w := &st.v1
	*w = v1Walker{body: body, st: st, s: s, plans: w.plans[:0], remap: w.remap, orig: w.orig, inserted: w.inserted}
	st.v1origin, st.v1attrs = st.v1origin[:0], st.v1attrs[:0]
	if err := w.walk(); err != nil {
		return nil, err
	}
	if len(w.plans) == 0 {
		return nil, nil
	}
	w.emit = true
	w.dst = dst
	if err := w.walk(); err != nil {
		return nil, err
	}
	st.changed = true
	return w.dst, nil
}
