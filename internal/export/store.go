package export

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/originagent/originagent/internal/origin"
)

// tagSet holds the values of the code-origin tags of one record. Records of
// the same handler share one tagSet (interned), so a full store costs a few
// words per record, not five strings.
type tagSet struct {
	file, line, typ, method string
}

func newTagSet(r origin.Record) (tagSet, bool) {
	if len(r.Frames) == 0 {
		return tagSet{}, false
	}
	f := r.Frames[0]
	line := f.StartLine
	if line == 0 {
		line = f.Line
	}
	// Same values as origin.Record.Tags, without building a map per record.
	return tagSet{file: f.File, line: strconv.Itoa(line), typ: f.Type, method: f.Method}, true
}

// storeKey identifies a span: the low 64 bits of its trace ID and its span ID.
// The high 64 bits are checked after the lookup because v0.4 payloads may not
// carry them (see matchHigh).
type storeKey struct{ traceLow, spanID uint64 }

type slot struct {
	key     storeKey
	high    uint64
	seq     uint64
	tags    *tagSet
	expires int64 // unix nanoseconds
	live    bool  // false once the slot was replaced, expired or evicted
	matched bool
}

// match is the result of a store lookup.
type match struct {
	tags *tagSet
	seq  uint64
}

// store keeps records until their spans pass through the proxy. It is a FIFO
// ring with an index: every record has the same time-to-live, so insertion
// order is expiry order and both expiry and eviction pop the ring's head.
// Matched records stay until they expire so that a payload the tracer retries
// after an upstream error is enriched again.
type store struct {
	mu       sync.Mutex
	ttl      time.Duration
	max      int // capacity: the ring grows up to max slots
	ring     []slot
	head, n  int
	index    map[storeKey]int
	traces   map[uint64]int // live records per trace (low 64 bits)
	interned map[tagSet]*tagSet
	live     atomic.Int64
	m        *metrics
	now      func() time.Time
}

// maxInterned bounds the tag-set intern table; it is reset when full, which
// only costs sharing.
const maxInterned = 1 << 14

// initialSlots is the ring's starting size: the default capacity (600k
// records, ~34 MB of slots) is only allocated when the load needs it.
const initialSlots = 1024

func newStore(size int, ttl time.Duration, m *metrics, now func() time.Time) *store {
	return &store{
		ttl:      ttl,
		max:      size,
		ring:     make([]slot, min(size, initialSlots)),
		index:    make(map[storeKey]int),
		traces:   make(map[uint64]int),
		interned: make(map[tagSet]*tagSet),
		m:        m,
		now:      now,
	}
}

// put stores r. A record without frames or span ID cannot tag anything and is
// counted as dropped.
func (s *store) put(r origin.Record) {
	ts, ok := newTagSet(r)
	if !ok || r.SpanID == 0 || r.TraceID.Low == 0 {
		s.m.recordsDropped.Inc()
		return
	}
	key := storeKey{r.TraceID.Low, r.SpanID}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now.UnixNano())
	s.m.recordsReceived.Inc()
	if i, ok := s.index[key]; ok {
		sl := &s.ring[i]
		// Several handlers under one span: the highest Seq is the innermost.
		if r.Seq >= sl.seq {
			sl.seq, sl.tags, sl.high = r.Seq, s.internLocked(ts), r.TraceID.High
		}
		return
	}
	if s.n == len(s.ring) {
		if len(s.ring) < s.max {
			s.growLocked()
		} else {
			s.popLocked(true)
		}
	}
	i := (s.head + s.n) % len(s.ring)
	s.ring[i] = slot{
		key:     key,
		high:    r.TraceID.High,
		seq:     r.Seq,
		tags:    s.internLocked(ts),
		expires: now.Add(s.ttl).UnixNano(),
		live:    true,
	}
	s.n++
	s.index[key] = i
	s.traces[key.traceLow]++
	s.live.Add(1)
	s.m.recordsStored.Set(float64(s.live.Load()))
}

// growLocked doubles the ring (up to max), moving the slots in FIFO order to
// its start and re-pointing the index.
func (s *store) growLocked() {
	ring := make([]slot, min(2*len(s.ring), s.max))
	for i := range s.n {
		sl := s.ring[(s.head+i)%len(s.ring)]
		ring[i] = sl
		if sl.live {
			s.index[sl.key] = i
		}
	}
	s.ring, s.head = ring, 0
}

func (s *store) internLocked(ts tagSet) *tagSet {
	if p, ok := s.interned[ts]; ok {
		return p
	}
	if len(s.interned) >= maxInterned {
		clear(s.interned)
	}
	p := &ts
	s.interned[ts] = p
	return p
}

// popLocked removes the ring's head. evict says whether a live head is
// dropped for room (evicted) rather than for age (expired).
func (s *store) popLocked(evict bool) {
	sl := &s.ring[s.head]
	if sl.live {
		switch {
		case sl.matched:
			// Served its purpose.
		case evict:
			s.m.recordsEvicted.Inc()
		default:
			s.m.recordsUnmatched.Inc()
		}
		delete(s.index, sl.key)
		if c := s.traces[sl.key.traceLow]; c <= 1 {
			delete(s.traces, sl.key.traceLow)
		} else {
			s.traces[sl.key.traceLow] = c - 1
		}
		s.live.Add(-1)
	}
	*sl = slot{}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
}

func (s *store) expireLocked(now int64) {
	before := s.live.Load()
	for s.n > 0 && s.ring[s.head].expires <= now {
		s.popLocked(false)
	}
	if s.live.Load() != before {
		s.m.recordsStored.Set(float64(s.live.Load()))
	}
}

// expire drops records older than the TTL. The proxy calls it periodically
// so that unmatched records are counted even when no records arrive.
func (s *store) expire() {
	now := s.now().UnixNano()
	s.mu.Lock()
	s.expireLocked(now)
	s.mu.Unlock()
}

// empty reports whether no record is waiting; it lets payloads skip decoding.
func (s *store) empty() bool { return s.live.Load() == 0 }

// len returns the number of live records.
func (s *store) len() int { return int(s.live.Load()) }

// lookupChunk finds the records of the spans ids of one trace chunk and
// writes them to out (same length as ids; zero match when none). high is the
// chunk's upper 64 trace ID bits, highKnown whether the payload carried them.
// It returns the number of matches.
func (s *store) lookupChunk(traceLow, high uint64, highKnown bool, ids []uint64, out []match) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.traces[traceLow] == 0 {
		return 0
	}
	found := 0
	for i, id := range ids {
		si, ok := s.index[storeKey{traceLow, id}]
		if !ok {
			continue
		}
		sl := &s.ring[si]
		if !matchHigh(sl.high, high, highKnown) {
			continue
		}
		out[i] = match{tags: sl.tags, seq: sl.seq}
		found++
		if !sl.matched {
			sl.matched = true
			s.m.recordsMatched.Inc()
		}
	}
	return found
}

// hasTrace reports whether any record waits for the trace.
func (s *store) hasTrace(traceLow uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.traces[traceLow] != 0
}

// matchHigh decides whether a record's upper trace ID bits fit a chunk's.
// When the payload does not carry them (v0.4/v0.5 without `_dd.p.tid`, i.e. a
// tracer in 64-bit mode or a chunk without its first span), the low 64 bits
// plus the span ID decide: a collision needs two equal random 64-bit span IDs
// in two traces whose low halves are equal too.
func matchHigh(recHigh, chunkHigh uint64, chunkKnown bool) bool {
	if !chunkKnown || recHigh == 0 {
		return true
	}
	return recHigh == chunkHigh
}
