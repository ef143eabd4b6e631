package export

import (
	"github.com/tinylib/msgp/msgp"
)

// maxV05Dict bounds the dictionary the walker indexes (the Agent allows more,
// but a real tracer's dictionary holds a few thousand strings); larger
// payloads are forwarded unchanged.
const maxV05Dict = 1 << 18

// v05Span locates the meta map of one v0.5 span.
type v05Span struct {
	metaStart, metaEnd int
}

// enrichV05 walks a v0.5 payload, [dictionary, traces] where every string is
// an index into the dictionary and a span is a 12-element array. New strings
// are appended to the dictionary, so existing indices keep their meaning.
func (st *encState) enrichV05(body []byte, s *store) error {
	p := body
	off := func() int { return len(body) - len(p) }
	n, p, err := readCount(p, false)
	if err != nil {
		return err
	}
	if n != 2 {
		return malformed("v0.5 payload has %d elements, want 2", n)
	}
	dictHdrStart := off()
	nd, p, err := readCount(p, false)
	if err != nil {
		return err
	}
	if nd > maxV05Dict {
		return malformed("v0.5 dictionary of %d strings", nd)
	}
	dictHdrEnd := off()
	for range nd {
		var str []byte
		if str, p, err = readStr(p); err != nil {
			return err
		}
		st.dict = append(st.dict, str)
	}
	dictEnd := off()
	dictStr := func(b []byte) ([]byte, []byte, error) {
		i, o, err := msgp.ReadUint32Bytes(b)
		if err != nil {
			return nil, b, malformed("dictionary index: %v", err)
		}
		if int(i) >= len(st.dict) {
			return nil, b, malformed("dictionary index %d out of range", i)
		}
		return st.dict[i], o, nil
	}
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
			var nf int
			nf, p, err = readCount(p, false)
			if err != nil {
				return err
			}
			if nf != 12 {
				return malformed("v0.5 span has %d elements, want 12", nf)
			}
			var cs chunkSpan
			var sp v05Span
			for f := range 12 {
				switch f {
				case 0:
					cs.service, p, err = dictStr(p)
				case 3:
					var t uint64
					t, p, err = readUint64(p)
					if i == 0 {
						traceLow = t
					}
				case 4:
					cs.id, p, err = readUint64(p)
				case 5:
					cs.parent, p, err = readUint64(p)
				case 9:
					sp.metaStart = off()
					p, err = skipMsgp(p)
					sp.metaEnd = off()
				default:
					p, err = skipMsgp(p)
				}
				if err != nil {
					return malformed("v0.5 span element %d: %v", f, err)
				}
			}
			st.spans = append(st.spans, cs)
			st.v05 = append(st.v05, sp)
		}
		if st.lookup(s, traceLow, func() (uint64, bool) { return st.v05TID(body) }) == 0 {
			continue
		}
		if st.resolve() == 0 {
			continue
		}
		for i := range st.assign {
			if a := st.assign[i]; a.tags != nil {
				if err := st.tagV05(body, st.v05[i], a.tags); err != nil {
					return err
				}
			}
		}
	}
	if len(p) != 0 {
		return malformed("%d trailing bytes", len(p))
	}
	if len(st.newList) > 0 {
		mark := len(st.extra)
		st.extra = msgp.AppendArrayHeader(st.extra, uint32(nd+len(st.newList)))
		st.addEdit(dictHdrStart, dictHdrEnd, mark)
		mark = len(st.extra)
		for _, s := range st.newList {
			st.extra = msgp.AppendString(st.extra, s)
		}
		st.addEdit(dictEnd, dictEnd, mark)
	}
	return nil
}

// v05Meta iterates the meta map of a v0.5 span, calling f with each key and
// value until f returns false. It returns the map's entry count and header end.
func (st *encState) v05Meta(body []byte, sp v05Span, f func(k, v []byte) bool) (int, int, error) {
	p := body[sp.metaStart:sp.metaEnd]
	n, p, err := readCount(p, true)
	if err != nil {
		return 0, 0, err
	}
	hdrEnd := sp.metaEnd - len(p)
	for range n {
		var ki, vi uint32
		if ki, p, err = msgp.ReadUint32Bytes(p); err != nil {
			return 0, 0, malformed("meta key: %v", err)
		}
		if vi, p, err = msgp.ReadUint32Bytes(p); err != nil {
			return 0, 0, malformed("meta value: %v", err)
		}
		if int(ki) >= len(st.dict) || int(vi) >= len(st.dict) {
			return 0, 0, malformed("meta index out of range")
		}
		if !f(st.dict[ki], st.dict[vi]) {
			break
		}
	}
	return n, hdrEnd, nil
}

func (st *encState) v05TID(body []byte) (high uint64, known bool) {
	for _, sp := range st.v05 {
		_, _, _ = st.v05Meta(body, sp, func(k, v []byte) bool {
			if string(k) == tidKey {
				high, known = parseTID(v)
				return false
			}
			return true
		})
		if known {
			return
		}
	}
	return 0, false
}

// dictIndex returns the index a new string will have in the dictionary.
func (st *encState) dictIndex(s string) uint32 {
	if st.newStr == nil {
		st.newStr = make(map[string]uint32)
	}
	if i, ok := st.newStr[s]; ok {
		return i
	}
	i := uint32(len(st.dict) + len(st.newList))
	st.newStr[s] = i
	st.newList = append(st.newList, s)
	return i
}

func (st *encState) tagV05(body []byte, sp v05Span, ts *tagSet) error {
	has := false
	n, hdrEnd, err := st.v05Meta(body, sp, func(k, _ []byte) bool {
		has = string(k) == tagKeys[0]
		return !has
	})
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	vals := tagValues(ts)
	mark := len(st.extra)
	st.extra = msgp.AppendMapHeader(st.extra, uint32(n+len(tagKeys)))
	st.addEdit(sp.metaStart, hdrEnd, mark)
	mark = len(st.extra)
	for k := range tagKeys {
		st.extra = msgp.AppendUint32(st.extra, st.dictIndex(tagKeys[k]))
		st.extra = msgp.AppendUint32(st.extra, st.dictIndex(vals[k]))
	}
	st.addEdit(sp.metaEnd, sp.metaEnd, mark)
	st.tagged++
	return nil
}
