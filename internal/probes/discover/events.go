package discover

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/originagent/originagent/bpf"
)

// eventType mirrors enum procevent_type in bpf/procevents.c.
type eventType uint32

const (
	eventExec = eventType(bpf.ProceventsProceventTypePROCEVENT_EXEC)
	eventExit = eventType(bpf.ProceventsProceventTypePROCEVENT_EXIT)
)

func (t eventType) String() string {
	switch t {
	case eventExec:
		return "exec"
	case eventExit:
		return "exit"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// event is one record of the procevents ring buffer.
type event struct {
	ktimeNS   uint64 // CLOCK_MONOTONIC at the tracepoint
	startTime uint64 // process start time in clock ticks, as in /proc/PID/stat
	typ       eventType
	pid       int
}

// eventSize is sizeof(struct procevent).
const eventSize = 24

// userHZ is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// architecture originagent supports (procfs assumes the same).
const userHZ = 100

// pidMaxLimit is PID_MAX_LIMIT on 64-bit kernels, the largest possible PID.
const pidMaxLimit = 4 << 20

var errBadEvent = errors.New("malformed procevent record")

// decodeEvent parses a ring-buffer record. It decodes by hand rather than
// with binary.Read to keep the hot path allocation-free.
func decodeEvent(b []byte) (event, error) {
	if len(b) < eventSize {
		return event{}, fmt.Errorf("%w: %d bytes, want %d", errBadEvent, len(b), eventSize)
	}
	ev := event{
		ktimeNS:   binary.NativeEndian.Uint64(b[0:8]),
		startTime: binary.NativeEndian.Uint64(b[8:16]) / (1e9 / userHZ),
		typ:       eventType(binary.NativeEndian.Uint32(b[16:20])),
		pid:       int(binary.NativeEndian.Uint32(b[20:24])),
	}
	if ev.typ != eventExec && ev.typ != eventExit {
		return event{}, fmt.Errorf("%w: unknown type %d", errBadEvent, uint32(ev.typ))
	}
	if ev.pid <= 0 || ev.pid > pidMaxLimit {
		return event{}, fmt.Errorf("%w: pid %d", errBadEvent, ev.pid)
	}
	return ev, nil
}

// procEvents is the loaded procevents BPF program: two raw tracepoints and
// the ring buffer they write to.
type procEvents struct {
	objs  bpf.ProceventsObjects
	links []link.Link
	rd    *ringbuf.Reader
}

// openProcEvents loads and attaches the programs. Raw tracepoints need no
// tracefs mount; the start-time read needs the kernel's BTF
// (/sys/kernel/btf/vmlinux), which cilium/ebpf loads for CO-RE. ringSize
// overrides the ring buffer's size in bytes (a power of two, at least a
// page) when not zero.
func openProcEvents(ringSize uint32) (_ *procEvents, err error) {
	spec, err := bpf.LoadProcevents()
	if err != nil {
		return nil, fmt.Errorf("load procevents BPF spec: %w", err)
	}
	if ringSize != 0 {
		spec.Maps[bpf.ProceventsMapProcevents].MaxEntries = ringSize
	}
	e := &procEvents{}
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load procevents BPF objects: %+v", verr)
		}
		return nil, fmt.Errorf("load procevents BPF objects: %w", err)
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	for _, tp := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_exec", e.objs.ProceventsExec},
		{"sched_process_exit", e.objs.ProceventsExit},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			return nil, fmt.Errorf("attach raw tracepoint %s: %w", tp.name, err)
		}
		e.links = append(e.links, l)
	}
	rd, err := ringbuf.NewReader(e.objs.Procevents)
	if err != nil {
		return nil, fmt.Errorf("open procevents ring buffer: %w", err)
	}
	e.rd = rd
	return e, nil
}

// pollEvery is how often the reader looks at the ring buffer. The BPF
// programs do not wake it for each event (see procevents.c), so this bounds
// the event latency outside bursts: far below the 1 s discovery target, and
// 20 wake-ups a second cost nothing.
const pollEvery = 50 * time.Millisecond

// read forwards events to out until the reader is closed. Malformed records
// are counted in bad and dropped. It returns nil once Close was called.
func (e *procEvents) read(out chan<- event, done <-chan struct{}, bad func(error)) error {
	var rec ringbuf.Record
	e.rd.SetDeadline(time.Now().Add(pollEvery))
	for {
		if err := e.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Every record present was returned before this.
				e.rd.SetDeadline(time.Now().Add(pollEvery))
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read procevents ring buffer: %w", err)
		}
		ev, err := decodeEvent(rec.RawSample)
		if err != nil {
			bad(err)
			continue
		}
		select {
		case out <- ev:
		case <-done:
			return nil
		}
	}
}

// lost returns the number of events the kernel dropped because the ring
// buffer was full, summed over CPUs.
func (e *procEvents) lost() (uint64, error) {
	var perCPU []uint64
	if err := e.objs.ProceventsLost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read procevents_lost: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Close detaches the programs and frees the ring buffer; a blocked read
// returns.
func (e *procEvents) Close() error {
	var errs []error
	if e.rd != nil {
		errs = append(errs, e.rd.Close())
	}
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, e.objs.Close())
	return errors.Join(errs...)
}
