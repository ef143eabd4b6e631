package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/originagent/originagent/internal/origin"
)

// This file keeps the first, two-pass v1.0 enricher as a test oracle.

// oStrTable mirrors the Agent's idx.StringTable: index 0 is "", Add returns
// the index of an existing equal string.
type oStrTable struct {
	strs   [][]byte
	lookup map[string]uint32
}

func (t *oStrTable) reset() {
	t.strs = append(t.strs[:0], nil)
	if t.lookup == nil {
		t.lookup = make(map[string]uint32)
	}
	clear(t.lookup)
	t.lookup[""] = 0
}

func (t *oStrTable) add(s []byte) (uint32, bool) {
	if i, ok := t.lookup[string(s)]; ok {
		return i, false
	}
	return t.addUnchecked(s), true
}

func (t *oStrTable) addUnchecked(s []byte) uint32 {
	i := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.lookup[string(s)] = i
	return i
}

// oV1Plan says that span `span` of chunk `chunk` gets tags.
type oV1Plan struct {
	chunk, span int
	tags        *tagSet
	hasAttrs    bool
}

// oV1Walker walks a v1.0 payload twice: to plan (which spans get tags) and to
// emit (copy with tags inserted and string indices renumbered).
type oV1Walker struct {
	attrs []bool // per span of the chunk: it has an attributes field
	body  []byte
	i     int // read position in body; an offset, not a slice, so that
	// advancing it is a plain integer store (no GC write barrier)
	emit bool

	orig  oStrTable // the table a decoder of the input builds (plan)
	remap []uint32  // input index -> output index (emit)
	// The emit pass does not rebuild tables: the input's final table (from
	// the plan pass) tells whether an inline string is new at its position
	// (its index is the table's length there), and the output's table is
	// the input's plus the few strings the tags add.
	origLen  uint32            // input table length at the read position (emit)
	outLen   uint32            // output table length at the write position (emit)
	inserted map[string]uint32 // strings the tags added to the output table (emit)

	dst  []byte // output (emit)
	last int    // body offset copied to dst so far (emit)

	plans  []oV1Plan
	cursor int // next plan (emit)

	// planning state of the current span
	chunk, span int
	hasOrigin   bool
	hasAttrs    bool
	service     uint32

	st *encState
	s  *store
}

func (w *oV1Walker) off() int { return w.i }

// rest returns the unread input.
func (w *oV1Walker) rest() []byte { return w.body[w.i:] }

// adv moves the read position to o, a suffix of body.
func (w *oV1Walker) adv(o []byte) { w.i = len(w.body) - len(o) }

// patch replaces body[at:w.off()] with b in the output.
func (w *oV1Walker) patch(at int, b []byte) {
	w.dst = append(w.dst, w.body[w.last:at]...)
	w.dst = append(w.dst, b...)
	w.last = w.off()
}

// insert adds b to the output at the current position.
func (w *oV1Walker) insert(b []byte) {
	w.dst = append(w.dst, w.body[w.last:w.off()]...)
	w.dst = append(w.dst, b...)
	w.last = w.off()
}

func (w *oV1Walker) u32() (uint32, error) {
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

func (w *oV1Walker) skip() error {
	o, err := skipMsgp(w.rest())
	if err != nil {
		return malformed("v1.0 value: %v", err)
	}
	w.adv(o)
	return nil
}

func (w *oV1Walker) count(isMap bool) (int, error) {
	n, o, err := readCount(w.rest(), isMap)
	if err != nil {
		return 0, err
	}
	w.adv(o)
	return n, nil
}

// inline registers an inline string of the input: in the plan pass in the
// input's table, in the emit pass in the index remapping.
func (w *oV1Walker) inline(s []byte) (uint32, error) {
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
func (w *oV1Walker) tableLen() int {
	if w.emit {
		return int(w.origLen)
	}
	return len(w.orig.strs)
}

// str reads a streaming string and returns its input table index.
func (w *oV1Walker) str() (uint32, error) {
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
func (w *oV1Walker) putStr(b []byte, s string) []byte {
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
func (w *oV1Walker) walk() error {
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

func (w *oV1Walker) traceChunk() error {
	w.chunk++
	w.st.startChunk(0)
	w.attrs = w.attrs[:0]
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
			w.plans = append(w.plans, oV1Plan{chunk: w.chunk, span: i, tags: a.tags, hasAttrs: w.attrs[i]})
		}
	}
	return nil
}

// plan returns the plan of the current span, if it gets tags.
func (w *oV1Walker) plan() *oV1Plan {
	if w.cursor < len(w.plans) {
		if p := &w.plans[w.cursor]; p.chunk == w.chunk && p.span == w.span {
			return p
		}
	}
	return nil
}

func (w *oV1Walker) spanMap() error {
	start := w.off()
	nf, err := w.count(true)
	if err != nil {
		return err
	}
	var pl *oV1Plan
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
		w.attrs = append(w.attrs, w.hasAttrs)
	}
	return nil
}

func (w *oV1Walker) appendTags(b []byte, ts *tagSet) []byte {
	vals := tagValues(ts)
	for k := range tagKeys {
		b = w.putStr(b, tagKeys[k])
		b = msgp.AppendUint32(b, v1AnyString)
		b = w.putStr(b, vals[k])
	}
	return b
}

func (w *oV1Walker) list(item func() error) error {
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

func (w *oV1Walker) spanLink() error {
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

func (w *oV1Walker) spanEvent() error {
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
func (w *oV1Walker) keyValues(depth int, pl *oV1Plan) error {
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

func (w *oV1Walker) anyValue(depth int) error {
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
func (w *oV1Walker) harvest(depth int) error {
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

// oracleEnrichV1 is the first v1.0 enricher, which walked the payload twice
// (plan, then emit); the tests hold the replaying one to its output byte
// for byte.
func oracleEnrichV1(st *encState, dst, body []byte, s *store) ([]byte, error) {
	w := &oV1Walker{body: body, st: st, s: s}
	st.v1origin = st.v1origin[:0]
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

// TestV1MatchesOracle holds the replaying v1.0 enricher to the output of the
// first, two-pass one, byte for byte, on generated payloads with records for
// random spans (entry spans, children, several per trace, tag strings that
// reappear later in the payload).
func TestV1MatchesOracle(t *testing.T) {
	enriched := 0
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		ts := genTraces(r, 1+r.IntN(20), 1+r.IntN(12))
		s := newTestStore(t, 1000, time.Minute, nil)
		for _, tr := range ts {
			for si, sp := range tr {
				if r.IntN(3) == 0 {
					s.put(testRecord(traceIDOf(tr), sp.SpanID, uint64(r.IntN(4)), fmt.Sprintf("H%d", r.IntN(5))))
				}
				if r.IntN(8) == 0 && sp.Meta != nil {
					// a string a tag adds, seen again later in the payload
					sp.Meta[fmt.Sprintf("k%d", si)] = []string{"entry", "H1", origin.TagFrameFile}[r.IntN(3)]
				}
			}
		}
		body := encodeV1(ts)
		want, wantErr := oracleEnrichV1(new(encState), nil, body, s)
		st := new(encState)
		got, gotErr := st.enrichV1(nil, body, s)
		if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("seed %d: got %d bytes (err %v), oracle %d bytes (err %v)", seed, len(got), gotErr, len(want), wantErr)
		}
		// The same encState again: pooled state must not leak between runs.
		if again, _ := st.enrichV1(nil, body, s); !bytes.Equal(again, want) {
			t.Fatalf("seed %d: second run on a reused state differs", seed)
		}
		if want != nil {
			enriched++
		}
	}
	if enriched < 250 {
		t.Fatalf("only %d of 300 payloads were enriched: the comparison covers too little", enriched)
	}
}
