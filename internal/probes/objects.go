package probes

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/originagent/originagent/bpf"
)

// Probe kinds, carried in the low byte of the attach cookie. They must match
// PROBE_* in bpf/origin.c.
const (
	kindHandlerFunc = 1 // receiver is a funcval; the handler is the code it points to
	kindMethod      = 2 // the probed function is the handler
)

// Context node kinds of the ctx_types map; NODE_* in bpf/origin.c.
const (
	nodeParent  = 1
	nodeValue   = 2
	nodeSpanCtx = 3
)

// Event flags; FLAG_* in bpf/origin.c.
const (
	flagHasSpan    = 1
	flagStackTrunc = 2
	flagTrace128   = 4
)

// Indexes of the counters in struct stats; STAT_* in bpf/origin.c.
const (
	statNoProc = iota
	statNoSpan
	statReadErr
	statRingbufFull
	statEmitted
	statMax
)

// BPFStats are the BPF program's counters, summed over CPUs.
type BPFStats struct {
	Hits        uint64 // probe hits: the sum of the four outcomes below
	NoProcess   uint64 // hit in a process the engine no longer tracks
	NoSpan      uint64 // no dd-trace-go span in the request's context
	RingbufFull uint64 // event lost: the ring buffer was full
	Emitted     uint64 // event sent to user space
	ReadErrors  uint64 // faults reading the target's memory (not an outcome)
}

// Layout and node flags and limits; LAYOUT_SC_IDS, NODE_F_SNAPSHOT and
// SC_IDS_MAX in bpf/origin.c.
const (
	layoutSCIDs   = 1 // the span context's span ID follows its 128-bit trace ID
	nodeFSnapshot = 1 // a span node's *SpanContext snapshot follows its *Span

	scIDsMax = 64 // SC_IDS_MAX: bytes from a span context's trace ID to its span ID's end
)

// noCtx marks a span layout without a span-context pointer.
const noCtx = 0xffff

// loadObjects loads the origin BPF collection with a ring buffer of
// ringBytes (a power of two, at least one page).
func loadObjects(ringBytes uint32) (*bpf.OriginObjects, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// ignore it, so a failure here is only worth reporting if loading fails.
	rlErr := rlimit.RemoveMemlock()

	spec, err := bpf.LoadOrigin()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	if ringBytes != 0 {
		spec.Maps[bpf.OriginMapEvents].MaxEntries = ringBytes
	}
	// Wake the reader when an eighth of the ring is full; it also polls
	// every pollInterval, which bounds a record's delay when traffic is low.
	if err := spec.Variables[bpf.OriginVarWakeupBytes].Set(uint64(spec.Maps[bpf.OriginMapEvents].MaxEntries / 8)); err != nil {
		return nil, fmt.Errorf("set wakeup threshold: %w", err)
	}
	var objs bpf.OriginObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF programs (verifier):\n%+v", ve)
		}
		if rlErr != nil {
			return nil, fmt.Errorf("load BPF programs: %w (and raising RLIMIT_MEMLOCK failed: %v)", err, rlErr)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	return &objs, nil
}

// readStats sums the per-CPU counters of the stats map.
func readStats(m *ebpf.Map) (BPFStats, error) {
	var per []bpf.OriginStats
	if err := m.Lookup(uint32(0), &per); err != nil {
		return BPFStats{}, fmt.Errorf("read BPF stats: %w", err)
	}
	var n [statMax]uint64
	for _, p := range per {
		for i := range n {
			n[i] += p.N[i]
		}
	}
	return BPFStats{
		Hits:        n[statNoProc] + n[statNoSpan] + n[statRingbufFull] + n[statEmitted],
		NoProcess:   n[statNoProc],
		NoSpan:      n[statNoSpan],
		RingbufFull: n[statRingbufFull],
		Emitted:     n[statEmitted],
		ReadErrors:  n[statReadErr],
	}, nil
}
