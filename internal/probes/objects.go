package probes

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/originagent/originagent/bpf"
)

// The BPF program's constants, from its own enums (bpf2go -type).
const (
	nodeParent  = uint8(bpf.OriginNodeKindNODE_PARENT)
	nodeValue   = uint8(bpf.OriginNodeKindNODE_VALUE)
	nodeSpanCtx = uint8(bpf.OriginNodeKindNODE_SPAN_CTX)

	flagHasSpan    = uint8(bpf.OriginEventFlagsFLAG_HAS_SPAN)
	flagStackTrunc = uint8(bpf.OriginEventFlagsFLAG_STACK_TRUNC)
	flagTrace128   = uint8(bpf.OriginEventFlagsFLAG_TRACE128)

	statNoProc      = bpf.OriginStatSTAT_NO_PROC
	statNoSpan      = bpf.OriginStatSTAT_NO_SPAN
	statReadErr     = bpf.OriginStatSTAT_READ_ERR
	statRingbufFull = bpf.OriginStatSTAT_RINGBUF_FULL
	statEmitted     = bpf.OriginStatSTAT_EMITTED
	statMax         = bpf.OriginStatSTAT_MAX

	layoutSCIDs   = uint16(bpf.OriginLayoutFlagsLAYOUT_SC_IDS) // the span context's span ID follows its 128-bit trace ID
	nodeFSnapshot = uint8(bpf.OriginNodeFlagsNODE_F_SNAPSHOT)  // a span node's *SpanContext snapshot follows its *Span
	scIDsMax      = uint16(bpf.OriginLayoutLimitsSC_IDS_MAX)   // bytes from a span context's trace ID to its span ID's end
	maxRecipes    = 16384                                      // MAX_RECIPES: entries of the recipes array
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
