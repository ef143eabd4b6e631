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

// Indexes of the per-CPU stats array; STAT_* in bpf/origin.c.
const (
	statHits = iota
	statNoProc
	statNoSpan
	statReadErr
	statRingbufFull
	statEmitted
	statMax
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
func readStats(m *ebpf.Map) ([statMax]uint64, error) {
	var out [statMax]uint64
	for i := uint32(0); i < statMax; i++ {
		var per []uint64
		if err := m.Lookup(i, &per); err != nil {
			return out, fmt.Errorf("read BPF stat %d: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}
