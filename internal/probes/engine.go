package probes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/origin"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/symbolize"
)

// Config configures an Engine.
type Config struct {
	// RingBufferBytes is the size of the kernel-to-user event ring buffer
	// (a power of two). Each event takes 128 bytes plus an 8-byte header.
	RingBufferBytes uint32
	// MaxFrames bounds the user frames a record carries (origin included).
	MaxFrames int
	// Symbolize says which code counts as the user's.
	Symbolize symbolize.Options
	// MaxBinaries bounds the symbol tables kept in memory.
	MaxBinaries int
	// ProcRoot is where procfs is mounted (default /proc).
	ProcRoot string

	// For the overhead benchmark: attach the empty program or the
	// four-reads floor instead of the real one, and/or put probes on
	// function entries.
	benchEmpty, benchReads, benchAtEntry bool
}

// DefaultConfig returns the settings originagent runs with by default.
func DefaultConfig() Config {
	return Config{RingBufferBytes: 4 << 20, MaxFrames: 8, MaxBinaries: 64, ProcRoot: "/proc"}
}

// Engine attaches the origin probes to selected processes and turns their
// events into origin records. Start and Exit implement discover.Handler; Run
// reads events. An Engine is safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	sink  origin.Sink
	objs  *bpf.OriginObjects
	cache *symbolize.Cache
	rd    *ringbuf.Reader
	m     *metrics

	// syncMu guards the Sync handshake: syncWant counts Sync requests,
	// syncDone the ones the reader has caught up with.
	syncMu             sync.Mutex
	syncCond           *sync.Cond
	syncWant, syncDone uint64

	// mu serializes attach, detach and Close, which can take long (a new
	// binary's analysis, one uprobe registration per target). The event
	// reader must not wait for them, so the procs map has its own lock,
	// held only to read or change the map: writers hold mu, then procMu.
	mu        sync.Mutex
	procMu    sync.RWMutex
	procs     map[int]*procState
	bins      map[string]*binState
	nextBinID uint32
	// Free slots of the recipes array: a binary's probes take one each,
	// and their attach cookie is its index.
	freeRecipes []uint32
	closed      bool
}

type binState struct {
	id      uint32
	key     string
	an      *analysis
	recipes []uint32 // slot of each of an.targets' recipes
	refs    int
}

type procState struct {
	pid      int
	exe      string
	bin      *binState
	bias     uint64
	service  string
	labels   map[string]string
	links    []link.Link
	attached time.Time
}

// New loads the BPF programs and returns an Engine that sends records to
// sink. It needs CAP_BPF and CAP_PERFMON (or root).
func New(cfg Config, sink origin.Sink, log *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	def := DefaultConfig()
	if cfg.RingBufferBytes == 0 {
		cfg.RingBufferBytes = def.RingBufferBytes
	}
	if cfg.MaxFrames <= 0 {
		cfg.MaxFrames = def.MaxFrames
	}
	if cfg.MaxBinaries <= 0 {
		cfg.MaxBinaries = def.MaxBinaries
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = def.ProcRoot
	}
	if cfg.RingBufferBytes&(cfg.RingBufferBytes-1) != 0 || cfg.RingBufferBytes < 4096 {
		return nil, fmt.Errorf("ring buffer size %d: must be a power of two of at least 4096", cfg.RingBufferBytes)
	}
	objs, err := loadObjects(cfg.RingBufferBytes)
	if err != nil {
		return nil, err
	}
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	e := &Engine{
		cfg:   cfg,
		log:   log,
		sink:  sink,
		objs:  objs,
		rd:    rd,
		cache: symbolize.NewCache(cfg.MaxBinaries, cfg.Symbolize),
		procs: map[int]*procState{},
		bins:  map[string]*binState{},
	}
	e.syncCond = sync.NewCond(&e.syncMu)
	for i := maxRecipes - 1; i >= 1; i-- { // slot 0 stays empty: a zero cookie names no recipe
		e.freeRecipes = append(e.freeRecipes, uint32(i))
	}
	e.m = newMetrics(e)
	if reg != nil {
		if err := reg.Register(e.m); err != nil {
			rd.Close()
			objs.Close()
			return nil, fmt.Errorf("register probe metrics: %w", err)
		}
	}
	return e, nil
}

// Start attaches the probes to the process p, which the selector chose with
// decision d. Failures are logged and counted; they never stop the engine.
func (e *Engine) Start(p *discover.Process, d discover.Decision) {
	if err := e.attach(p, d); err != nil {
		reason := "error"
		if errors.Is(err, errNotApplicable) || errors.Is(err, symbolize.ErrNotGo) {
			reason = "not_applicable"
		}
		e.m.skipped.WithLabelValues(reason).Inc()
		e.log.Info("skipped process", "pid", p.PID, "exe", p.Exe, "reason", err.Error(), labelAttrs(d.Labels))
	}
}

func labelAttrs(l map[string]string) slog.Attr {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	as := make([]any, 0, len(keys))
	for _, k := range keys {
		as = append(as, slog.String(k, l[k]))
	}
	return slog.Group("labels", as...)
}

func (e *Engine) attach(p *discover.Process, d discover.Decision) error {
	path := p.BinaryPath()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("engine closed")
	}
	if _, ok := e.procs[p.PID]; ok {
		e.detachLocked(p.PID)
	}
	sym, err := e.cache.Binary(path)
	if err != nil {
		return fmt.Errorf("read symbols of %s: %w", p.Exe, err)
	}
	bs, err := e.binaryLocked(path, sym)
	if err != nil {
		// A binary that cannot be probed is not kept mapped either.
		if _, ok := e.bins[sym.ID()]; !ok {
			if b := e.cache.Remove(sym.ID()); b != nil {
				b.Close()
			}
		}
		return err
	}
	bias, err := loadBias(e.cfg.ProcRoot, p.PID, path, bs.an.segs)
	if err != nil {
		e.releaseLocked(bs)
		return err
	}
	ps := &procState{pid: p.PID, exe: p.Exe, bin: bs, bias: bias, labels: d.Labels, attached: time.Now()}
	if env, err := p.Environ(); err == nil {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "DD_SERVICE="); ok {
				ps.service = v
			}
		}
	}
	// The process's configuration goes in before any probe can fire.
	cfg := bpf.OriginProcCfg{Bias: bias, BinaryId: bs.id}
	pid := uint32(p.PID)
	if err := e.objs.Procs.Put(pid, cfg); err != nil {
		e.releaseLocked(bs)
		return fmt.Errorf("configure pid %d: %w", p.PID, err)
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		e.objs.Procs.Delete(pid)
		e.releaseLocked(bs)
		return fmt.Errorf("open %s for uprobes: %w", path, err)
	}
	prog := e.program()
	for i, t := range bs.an.targets {
		l, err := ex.Uprobe(t.name, prog, &link.UprobeOptions{
			Address: t.fileOffset,
			Offset:  uint64(e.probeOffset(t)),
			PID:     p.PID,
			Cookie:  uint64(bs.recipes[i]),
		})
		if err != nil {
			for _, l := range ps.links {
				l.Close()
			}
			e.objs.Procs.Delete(pid)
			e.releaseLocked(bs)
			return fmt.Errorf("attach %s in pid %d: %w", t.name, p.PID, err)
		}
		ps.links = append(ps.links, l)
	}
	e.procMu.Lock()
	e.procs[p.PID] = ps
	e.procMu.Unlock()
	for _, msg := range bs.an.problems {
		e.log.Warn("framework not probed", "pid", p.PID, "exe", p.Exe, "reason", msg)
	}
	e.m.attached.Inc()
	e.m.probes.Add(float64(len(ps.links)))
	e.log.Info("attached process", "pid", p.PID, "exe", p.Exe, "service", ps.service,
		"frameworks", strings.Join(bs.an.frameworks, ","), "tracers", strings.Join(bs.an.tracers, ","),
		"probes", len(ps.links), "reason", d.Reason, labelAttrs(d.Labels))
	return nil
}

// binaryLocked returns the shared state of the binary, analysing it on first use.
func (e *Engine) binaryLocked(path string, sym *symbolize.Binary) (*binState, error) {
	key := sym.ID()
	if bs, ok := e.bins[key]; ok {
		bs.refs++
		return bs, nil
	}
	an, err := analyze(path, sym)
	if err != nil {
		return nil, err
	}
	e.nextBinID++
	bs := &binState{id: e.nextBinID, key: key, an: an, refs: 1}
	for _, t := range an.targets {
		slot, err := e.allocRecipe()
		if err != nil {
			e.deleteBinaryMaps(bs)
			return nil, err
		}
		bs.recipes = append(bs.recipes, slot)
		r := t.recipe
		r.ProbeOff = e.probeOffset(t)
		if err := e.objs.Recipes.Put(slot, r); err != nil {
			e.deleteBinaryMaps(bs)
			return nil, fmt.Errorf("load recipe of %s: %w", t.name, err)
		}
	}
	for addr, n := range an.nodes {
		if err := e.objs.CtxTypes.Put(bpf.OriginTypeKey{BinaryId: bs.id, Addr: addr}, n); err != nil {
			e.deleteBinaryMaps(bs)
			return nil, fmt.Errorf("load context types: %w", err)
		}
	}
	for addr, l := range an.spans {
		if err := e.objs.SpanTypes.Put(bpf.OriginTypeKey{BinaryId: bs.id, Addr: addr}, l); err != nil {
			e.deleteBinaryMaps(bs)
			return nil, fmt.Errorf("load span types: %w", err)
		}
	}
	e.bins[key] = bs
	return bs, nil
}

// probeOffset is where in t's function its probe goes: its PUSHQ BP unless
// the benchmark wants function entries, or the call an in-body recipe reads.
func (e *Engine) probeOffset(t probeTarget) uint16 {
	if e.cfg.benchAtEntry && t.at == 0 {
		return 0
	}
	return t.pushOffset
}

// allocRecipe takes a free slot of the recipes array.
func (e *Engine) allocRecipe() (uint32, error) {
	n := len(e.freeRecipes)
	if n == 0 {
		return 0, fmt.Errorf("all %d probe recipes in use", maxRecipes)
	}
	slot := e.freeRecipes[n-1]
	e.freeRecipes = e.freeRecipes[:n-1]
	return slot, nil
}

func (e *Engine) deleteBinaryMaps(bs *binState) {
	for _, slot := range bs.recipes {
		// An array's entries cannot be deleted: a zero recipe makes a
		// late hit count as no_process.
		if err := e.objs.Recipes.Put(slot, bpf.OriginRecipe{}); err != nil {
			e.log.Debug("clear recipe", "slot", slot, "err", err)
		}
		e.freeRecipes = append(e.freeRecipes, slot)
	}
	bs.recipes = nil
	for addr := range bs.an.nodes {
		e.objs.CtxTypes.Delete(bpf.OriginTypeKey{BinaryId: bs.id, Addr: addr})
	}
	for addr := range bs.an.spans {
		e.objs.SpanTypes.Delete(bpf.OriginTypeKey{BinaryId: bs.id, Addr: addr})
	}
}

// releaseLocked drops a process's reference to its binary. The last one
// releases the analysis and unmaps the file at once (a deleted executable
// would otherwise stay pinned, and its pages counted, until the cache
// evicts it and the garbage collector runs). No event handler can still be
// symbolizing with it: detachLocked removes the process under procMu's
// write lock first, and handle symbolizes under its read lock.
func (e *Engine) releaseLocked(bs *binState) {
	bs.refs--
	if bs.refs > 0 {
		return
	}
	e.deleteBinaryMaps(bs)
	delete(e.bins, bs.key)
	cached := e.cache.Remove(bs.key)
	for _, b := range []*symbolize.Binary{bs.an.sym, cached} {
		if b == nil {
			continue
		}
		if err := b.Close(); err != nil {
			e.log.Debug("release binary", "binary", bs.key, "err", err)
		}
	}
}

// program is the BPF program the probes run: the real one, or for the
// overhead benchmark the empty or four-reads one.
func (e *Engine) program() *ebpf.Program {
	switch {
	case e.cfg.benchEmpty:
		return e.objs.EmptyEntry
	case e.cfg.benchReads:
		return e.objs.ReadsEntry
	}
	return e.objs.HandlerEntry
}

// Exit detaches the probes of a process that exited.
func (e *Engine) Exit(pid int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.detachLocked(pid) {
		e.log.Info("detached process", "pid", pid, "reason", "exit")
	}
}

func (e *Engine) detachLocked(pid int) bool {
	ps, ok := e.procs[pid]
	if !ok {
		return false
	}
	for _, l := range ps.links {
		if err := l.Close(); err != nil {
			e.log.Debug("close uprobe", "pid", pid, "err", err)
		}
	}
	e.objs.Procs.Delete(uint32(pid))
	e.procMu.Lock()
	delete(e.procs, pid)
	e.procMu.Unlock()
	e.releaseLocked(ps.bin)
	e.m.attached.Dec()
	e.m.probes.Sub(float64(len(ps.links)))
	return true
}

// Run reads events until ctx is done or the engine is closed.
func (e *Engine) Run(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			e.rd.Close()
		case <-done:
		}
	}()
	var rec ringbuf.Record
	var ev bpf.OriginEvent
	for {
		e.rd.SetDeadline(time.Now().Add(pollInterval))
		if err := e.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, ringbuf.ErrFlushed) {
				// Everything submitted before the Flush has been handled.
				e.syncMu.Lock()
				e.syncDone = e.syncWant
				e.syncMu.Unlock()
				e.syncCond.Broadcast()
				continue
			}
			if errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		if err := decodeEvent(rec.RawSample, &ev); err != nil {
			e.m.dropped.WithLabelValues("malformed").Inc()
			e.log.Debug("dropped event", "reason", err)
			continue
		}
		e.handle(&ev)
	}
}

// Sync returns once every event the kernel had submitted when it was called
// has been handed to the sink, or after timeout. The proxy calls it before
// enriching a payload: events wait in the ring buffer for up to pollInterval,
// and a span flushed right after its request (at a tracer's shutdown) must
// still find its record.
func (e *Engine) Sync(timeout time.Duration) {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.syncWant++
	want := e.syncWant
	if err := e.rd.Flush(); err != nil {
		return
	}
	timer := time.AfterFunc(timeout, func() {
		e.syncMu.Lock()
		defer e.syncMu.Unlock()
		if e.syncDone < want {
			e.syncDone = want // give up waiting; the reader catches up later
		}
		e.syncCond.Broadcast()
	})
	defer timer.Stop()
	for e.syncDone < want {
		e.syncCond.Wait()
	}
}

// pollInterval bounds how long an event waits in the ring buffer: the BPF
// program wakes the reader only when the ring fills up (a wakeup per event
// would cost every request), so at low traffic the reader polls. Records
// must reach the proxy before the tracer flushes the span (every 2 s).
const pollInterval = 50 * time.Millisecond

// eventSize is sizeof(struct event) in bpf/origin.c.
var eventSize = binary.Size(bpf.OriginEvent{})

func decodeEvent(b []byte, ev *bpf.OriginEvent) error {
	if len(b) < eventSize {
		return fmt.Errorf("event of %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	ev.Pid = le.Uint32(b[0:])
	ev.Tid = le.Uint32(b[4:])
	ev.Ktime = le.Uint64(b[8:])
	ev.HandlerPc = le.Uint64(b[16:])
	ev.TraceHi = le.Uint64(b[24:])
	ev.TraceLo = le.Uint64(b[32:])
	ev.SpanId = le.Uint64(b[40:])
	ev.Cookie = le.Uint64(b[48:])
	ev.Flags = b[56]
	ev.Nstack = b[57]
	ev.Hops = b[58]
	for i := range ev.Stack {
		ev.Stack[i] = le.Uint64(b[64+8*i:])
	}
	return nil
}

func (e *Engine) handle(ev *bpf.OriginEvent) {
	e.m.events.Inc()
	// Symbolize under the read lock: the binary of a process being
	// detached is unmapped only once its process left the map.
	e.procMu.RLock()
	rec, ok := e.record(ev)
	e.procMu.RUnlock()
	if ok {
		e.m.records.Inc()
		e.sink.Put(rec)
	}
}

// record turns an event into a record; the caller holds procMu.
func (e *Engine) record(ev *bpf.OriginEvent) (origin.Record, bool) {
	ps := e.procs[int(ev.Pid)]
	if ps == nil {
		e.m.dropped.WithLabelValues("process_gone").Inc()
		return origin.Record{}, false
	}
	sym := ps.bin.an.sym
	frames, err := sym.Lookup(ev.HandlerPc-ps.bias, false)
	if err != nil || len(frames) == 0 {
		e.m.dropped.WithLabelValues("unsymbolized").Inc()
		e.log.Debug("dropped event", "pid", ps.pid, "pc", ev.HandlerPc, "reason", "unsymbolized", "err", err)
		return origin.Record{}, false
	}
	h := frames[0]
	if !h.User || isGeneratedFile(h.File) {
		e.log.Debug("dropped event", "pid", ps.pid, "handler", h.Function, "reason", "not user code")
		// A library handler (the tracer's own wrapper, a router's) or
		// generated code in the user's module (protoc-gen-connect-go's
		// path switch, an http.HandlerFunc): the user handler it
		// dispatches to has its own event.
		e.m.dropped.WithLabelValues("not_user_code").Inc()
		return origin.Record{}, false
	}
	rec := origin.Record{
		PID:     ps.pid,
		Service: ps.service,
		TraceID: origin.TraceID{High: ev.TraceHi, Low: ev.TraceLo},
		SpanID:  ev.SpanId,
		Seq:     ev.Ktime,
		Labels:  ps.labels,
		Frames:  []origin.Frame{toOrigin(h)},
	}
	n := int(ev.Nstack)
	if n > len(ev.Stack) {
		n = len(ev.Stack)
	}
	for _, pc := range ev.Stack[:n] {
		if len(rec.Frames) >= e.cfg.MaxFrames {
			break
		}
		fs, err := sym.Lookup(pc-ps.bias, true)
		if err != nil {
			continue
		}
		for _, f := range fs {
			if f.User && len(rec.Frames) < e.cfg.MaxFrames {
				rec.Frames = append(rec.Frames, toOrigin(f))
			}
		}
	}
	return rec, true
}

func toOrigin(f symbolize.Frame) origin.Frame {
	return origin.Frame{Function: f.Function, File: f.File, Line: f.Line, StartLine: f.StartLine, Type: f.Type, Method: f.Method}
}

// Close detaches every probe and releases the BPF objects.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	for pid := range e.procs {
		e.detachLocked(pid)
	}
	e.rd.Close()
	return e.objs.Close()
}

// loadBias returns runtime minus file virtual addresses of the executable
// mapping of pid (whose executable's segments are segs): zero for
// position-dependent binaries.
func loadBias(procRoot string, pid int, exePath string, segs []segment) (uint64, error) {
	st, err := os.Stat(exePath)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", exePath, err)
	}
	ino := inode(st)
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return 0, fmt.Errorf("open procfs %s: %w", procRoot, err)
	}
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	maps, err := p.ProcMaps()
	if err != nil {
		return 0, fmt.Errorf("read maps of pid %d: %w", pid, err)
	}
	for _, m := range maps {
		if m.Inode != ino || m.Perms == nil || !m.Perms.Execute {
			continue
		}
		for _, s := range segs {
			if uint64(m.Offset) <= s.off && s.off < uint64(m.Offset)+uint64(m.EndAddr-m.StartAddr) {
				return uint64(m.StartAddr) + (s.off - uint64(m.Offset)) - s.vaddr, nil
			}
		}
	}
	return 0, fmt.Errorf("pid %d: no executable mapping of %s in its maps", pid, exePath)
}
