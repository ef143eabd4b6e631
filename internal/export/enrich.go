package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tinylib/msgp/msgp"

	"github.com/originagent/originagent/internal/origin"
)

// Why a hand-written walker for v0.4 and v0.5 instead of decoding into the
// Agent's pb.Traces and re-encoding: the walker reads only the handful of
// fields matching needs (IDs, service, meta position), skips the rest (see
// skipMsgp), and splices the new tags into the original bytes. Every byte it
// does not change reaches the Agent as the tracer wrote it (including fields
// pb.Span does not know), and it costs a fraction of a decode/encode round
// trip (see BenchmarkProxy). The Agent's own decoders check its output in the
// tests and the fuzz target. v1.0 payloads get the same treatment, except
// that string references after an inserted string are renumbered (see
// v1Walker).

// errMalformed wraps every payload the walker cannot follow.
var errMalformed = errors.New("malformed payload")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, a...))
}

// chunkSpan is what matching needs to know about one span of a trace chunk.
type chunkSpan struct {
	id, parent uint64
	service    []byte // aliases the payload or the v0.5 dictionary
}

// assigned is the record chosen for one span of a chunk.
type assigned struct {
	match
	direct bool // the record names this span itself, not one of its children
}

// edit replaces body[at:end] with extra[off:off+n] in the output.
type edit struct {
	at, end int
	off, n  int
}

// encState is the scratch space of one enrichment, pooled by the proxy.
type encState struct {
	spans    []chunkSpan
	ids      []uint64
	direct   []match
	assign   []assigned
	idmap    map[uint64]int
	idmapMax int // the most entries idmap held (its size is kept by clear)
	v04      []v04Span
	v05      []v05Span
	dict     [][]byte
	newStr   map[string]uint32
	newList  []string
	edits    []edit
	extra    []byte
	// v1.0
	v1       v1Walker
	v1origin []bool // span already has _dd.code_origin.type
	tagged   int
	changed  bool
}

// maxPooledStrings bounds the walker state kept for reuse: a state grown by
// a huge payload is left to the garbage collector.
const maxPooledStrings = 1 << 16

// large reports whether st grew too large to be kept for reuse.
func (st *encState) large() bool {
	return cap(st.v1.orig.strs) > maxPooledStrings || cap(st.v1.toks) > 4*maxPooledStrings ||
		cap(st.extra) > maxPooled || st.idmapMax > maxPooledStrings
}

func (st *encState) reset() {
	st.edits = st.edits[:0]
	st.extra = st.extra[:0]
	st.dict = st.dict[:0]
	st.tagged = 0
	st.changed = false
	clear(st.newStr)
	st.newList = st.newList[:0]
}

// startChunk sizes the per-chunk slices for n spans.
func (st *encState) startChunk(n int) {
	st.spans = st.spans[:0]
	st.v1origin = st.v1origin[:0]
	st.v04 = st.v04[:0]
	st.v05 = st.v05[:0]
	st.ids = slices.Grow(st.ids[:0], n)
}

// addEdit records that body[at:end] becomes the bytes appended to st.extra
// since mark.
func (st *encState) addEdit(at, end, mark int) {
	st.edits = append(st.edits, edit{at: at, end: end, off: mark, n: len(st.extra) - mark})
	st.changed = true
}

// apply writes body with the edits applied to dst.
func (st *encState) apply(dst, body []byte) []byte {
	slices.SortStableFunc(st.edits, func(a, b edit) int { return a.at - b.at })
	last := 0
	for _, e := range st.edits {
		dst = append(dst, body[last:e.at]...)
		dst = append(dst, st.extra[e.off:e.off+e.n]...)
		last = e.end
	}
	return append(dst, body[last:]...)
}

// resolve decides which spans of a chunk get tags: a span whose own record
// matched (st.direct), and the service entry span above it, found by walking
// parent links inside the chunk while the service stays the same. When
// several records reach one span, the highest Seq wins; on a tie, the span's
// own record. It returns the number of spans with a record in st.assign.
func (st *encState) resolve() int {
	n := len(st.spans)
	st.assign = slices.Grow(st.assign[:0], n)[:n]
	clear(st.assign)
	better := func(i int, m match, direct bool) {
		cur := &st.assign[i]
		if cur.tags == nil || m.seq > cur.seq || (m.seq == cur.seq && direct && !cur.direct) {
			*cur = assigned{match: m, direct: direct}
		}
	}
	useMap := n > 32
	if useMap {
		if st.idmap == nil {
			st.idmap = make(map[uint64]int, n)
		}
		clear(st.idmap)
		st.idmapMax = max(st.idmapMax, n)
		for i := range st.spans {
			st.idmap[st.spans[i].id] = i
		}
	}
	find := func(id uint64) int {
		if useMap {
			if k, ok := st.idmap[id]; ok {
				return k
			}
			return -1
		}
		for k := range st.spans {
			if st.spans[k].id == id {
				return k
			}
		}
		return -1
	}
	for i := range st.spans {
		m := st.direct[i]
		if m.tags == nil {
			continue
		}
		better(i, m, true)
		j := i
		for range n { // bounded: a malformed chunk may have a parent cycle
			p := st.spans[j].parent
			if p == 0 || p == st.spans[j].id {
				break
			}
			k := find(p)
			if k < 0 || !bytes.Equal(st.spans[k].service, st.spans[j].service) {
				break
			}
			j = k
		}
		if j != i {
			better(j, m, false)
		}
	}
	c := 0
	for i := range st.assign {
		if st.assign[i].tags != nil {
			c++
		}
	}
	return c
}

// lookup fills st.direct for the current chunk. highOf is called only when
// the store holds records of the trace, since finding the upper trace ID
// bits may cost a second look at the payload.
func (st *encState) lookup(s *store, traceLow uint64, highOf func() (uint64, bool)) int {
	n := len(st.spans)
	st.direct = slices.Grow(st.direct[:0], n)[:n]
	clear(st.direct)
	if n == 0 || !s.hasTrace(traceLow) {
		return 0
	}
	high, known := highOf()
	st.ids = st.ids[:0]
	for i := range st.spans {
		st.ids = append(st.ids, st.spans[i].id)
	}
	return s.lookupChunk(traceLow, high, known, st.ids, st.direct)
}

// Tag keys in the order they are written.
var tagKeys = [...]string{origin.TagType, origin.TagFrameFile, origin.TagFrameLine, origin.TagFrameType, origin.TagFrameMethod}

func tagValues(t *tagSet) [5]string {
	return [5]string{"entry", t.file, t.line, t.typ, t.method}
}

// readUint64 reads an unsigned integer the way the Agent's decoder does:
// signed encodings are accepted (some tracers have no unsigned types) and nil
// is zero.
func readUint64(b []byte) (uint64, []byte, error) {
	if len(b) >= 9 && b[0] == 0xcf { // uint64: random IDs almost always
		return binary.BigEndian.Uint64(b[1:]), b[9:], nil
	}
	switch msgp.NextType(b) {
	case msgp.UintType:
		return msgp.ReadUint64Bytes(b)
	case msgp.IntType:
		v, o, err := msgp.ReadInt64Bytes(b)
		return uint64(v), o, err
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return 0, o, err
	default:
		return 0, b, malformed("expected integer, got %s", msgp.NextType(b))
	}
}

// readStr reads a string, binary or nil value without copying.
func readStr(b []byte) ([]byte, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		return msgp.ReadStringZC(b)
	case msgp.BinType:
		return msgp.ReadBytesZC(b)
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return nil, o, err
	default:
		return nil, b, malformed("expected string, got %s", msgp.NextType(b))
	}
}

// readCount reads an array or map header whose elements take at least one
// byte each, refusing counts the remaining input cannot hold (so that a
// forged header cannot make the walker allocate).
func readCount(b []byte, isMap bool) (int, []byte, error) {
	var (
		n   uint32
		o   []byte
		err error
	)
	if isMap {
		n, o, err = msgp.ReadMapHeaderBytes(b)
	} else {
		n, o, err = msgp.ReadArrayHeaderBytes(b)
	}
	if err != nil {
		return 0, b, fmt.Errorf("%w: %w", errMalformed, err)
	}
	per := 1
	if isMap {
		per = 2
	}
	if int64(n)*int64(per) > int64(len(o)) {
		return 0, b, malformed("header announces %d elements, %d bytes left", n, len(o))
	}
	return int(n), o, nil
}

// parseTID parses the `_dd.p.tid` tag: the upper 64 trace ID bits in hex.
func parseTID(v []byte) (uint64, bool) {
	if len(v) != 16 {
		return 0, false
	}
	h, err := strconv.ParseUint(string(v), 16, 64)
	return h, err == nil
}

const tidKey = "_dd.p.tid"
