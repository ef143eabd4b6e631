package discover

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// DefaultProcRoot is where procfs is mounted on the host.
const DefaultProcRoot = "/proc"

// Defaults for Config fields left zero.
const (
	DefaultRescan = 30 * time.Second
	DefaultPoll   = 2 * time.Second
)

// envRetries bounds the re-reads of a just-exec'd process whose environment
// read back empty (the exec may still be settling), so that a process
// started with an empty environment (env -i) costs a few reads, not a loop.
const envRetries = 3

// envRetryDelay is the wait before retry attempt (0-based): 5, 25, 125 ms.
func envRetryDelay(attempt int) time.Duration {
	d := 5 * time.Millisecond
	for range attempt {
		d *= 5
	}
	return d
}

// Config configures a Watcher. The zero value watches the host's /proc with
// BPF exec/exit events and a 30 s safety-net rescan.
type Config struct {
	// ProcRoot is the procfs mount to read, DefaultProcRoot if empty. With
	// events on, it must show the initial PID namespace (hostPID), since
	// the kernel reports PIDs there.
	ProcRoot string
	// Rescan is the period of the full /proc scan that catches what events
	// missed (DefaultRescan if zero).
	Rescan time.Duration
	// Poll is the period of the /proc scan used instead of events when the
	// BPF program cannot be loaded or NoEvents is set (DefaultPoll if zero).
	Poll time.Duration
	// NoEvents disables the BPF exec/exit events: discovery polls /proc
	// every Poll. For kernels without BPF and for unprivileged tests.
	NoEvents bool
	// SelfPID is never selected: the agent must not probe itself.
	// os.Getpid() if zero.
	SelfPID int
}

// Handler receives the stream of selected processes. The Watcher calls it
// from one goroutine, in event order: Start once per selected process
// instance, then Exit once for that instance, when it exits, execs another
// image (a new instance follows with its own Start), or stops being selected
// after Reevaluate. When Run returns, every started instance has had its
// Exit. The handler should return quickly; while it runs, events queue.
type Handler interface {
	Start(p *Process, d Decision)
	Exit(pid int)
}

// HandlerFuncs adapts two functions to a Handler; a nil function is skipped.
type HandlerFuncs struct {
	StartFunc func(p *Process, d Decision)
	ExitFunc  func(pid int)
}

// Start calls h.StartFunc.
func (h HandlerFuncs) Start(p *Process, d Decision) {
	if h.StartFunc != nil {
		h.StartFunc(p, d)
	}
}

// Exit calls h.ExitFunc.
func (h HandlerFuncs) Exit(pid int) {
	if h.ExitFunc != nil {
		h.ExitFunc(pid)
	}
}

// Watcher turns the processes of a host into a stream of Start and Exit
// calls for those a Selector opts in. It scans /proc once, then follows exec
// and exit through BPF raw tracepoints (bpf/procevents.c), with a slow
// rescan as a safety net and a fast poll when BPF is unavailable.
type Watcher struct {
	cfg Config
	sel Selector
	log *slog.Logger
	m   *metrics
	rd  procReader

	running atomic.Bool

	// Test knobs, zero in production: the ring buffer size in bytes and
	// the capacity of the channel between the ring-buffer reader and Run.
	ringSize  uint32
	eventsCap int

	reqMu   sync.Mutex
	reqPIDs map[int]struct{}
	reqAll  bool
	reqC    chan struct{} // capacity 1: wakes Run for pending requests

	scanned     chan struct{} // closed after Run's first scan
	scannedOnce sync.Once
}

// New returns a Watcher. sel decides which processes are started; log may be
// nil (discard); reg may be nil (metrics not exported).
func New(cfg Config, sel Selector, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	if sel == nil {
		return nil, errors.New("discover: nil Selector")
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = DefaultProcRoot
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = DefaultRescan
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.SelfPID == 0 {
		cfg.SelfPID = os.Getpid()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rd, err := newProcReader(cfg.ProcRoot)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Watcher{
		cfg:     cfg,
		sel:     sel,
		log:     log,
		m:       m,
		rd:      rd,
		reqPIDs: make(map[int]struct{}),
		reqC:    make(chan struct{}, 1),
		scanned: make(chan struct{}),
	}, nil
}

// Scanned returns a channel closed once Run's first /proc scan has handed
// every selected process that was running to the Handler, and each Start
// call has returned: the agent is ready only then, so that a restart's
// first spans are not sent before their processes are probed again.
func (w *Watcher) Scanned() <-chan struct{} { return w.scanned }

// Reevaluate asks Run to ask the selector again about pid, for selectors
// whose answer changes (a pod's labels became known). Safe to call from any
// goroutine; a no-op for processes Run does not know.
func (w *Watcher) Reevaluate(pid int) {
	w.reqMu.Lock()
	w.reqPIDs[pid] = struct{}{}
	w.reqMu.Unlock()
	w.wake()
}

// ReevaluateAll is Reevaluate for every known process.
func (w *Watcher) ReevaluateAll() {
	w.reqMu.Lock()
	w.reqAll = true
	w.reqMu.Unlock()
	w.wake()
}

func (w *Watcher) wake() {
	select {
	case w.reqC <- struct{}{}:
	default:
	}
}

// takeRequests returns and clears the pending Reevaluate requests.
func (w *Watcher) takeRequests() (pids []int, all bool) {
	w.reqMu.Lock()
	defer w.reqMu.Unlock()
	for pid := range w.reqPIDs {
		pids = append(pids, pid)
	}
	clear(w.reqPIDs)
	all, w.reqAll = w.reqAll, false
	slices.Sort(pids)
	return pids, all
}

// Run scans /proc, then follows exec and exit until ctx is done, calling h
// from the calling goroutine. It returns nil when ctx is done; events that
// cannot be set up or fail later degrade to polling /proc with a warning
// rather than an error. Only one Run may be active at a time.
func (w *Watcher) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("discover: nil Handler")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("discover: Watcher.Run is already running")
	}
	defer w.running.Store(false)

	r := &run{w: w, h: h, known: make(map[int]*instance)}
	defer r.exitAll()

	var (
		pe       *procEvents
		events   chan event
		readDone chan error
		stop     = make(chan struct{})
		scanTick *time.Ticker
		lostTick <-chan time.Time
	)
	if !w.cfg.NoEvents {
		var err error
		if pe, err = openProcEvents(w.ringSize); err != nil {
			w.log.Warn("exec/exit events unavailable, polling /proc instead", "interval", w.cfg.Poll, "err", err)
			pe = nil
		}
	}
	stopEvents := func() {
		if pe == nil {
			return
		}
		close(stop)
		if err := pe.Close(); err != nil {
			w.log.Warn("close procevents", "err", err)
		}
		<-readDone
		pe, events, lostTick = nil, nil, nil
	}
	defer stopEvents()

	if pe != nil {
		// Buffers bursts (a shell loop, a container start) while the
		// handler attaches probes; beyond it the ring buffer fills, and a
		// loss means a rescan.
		capacity := 1024
		if w.eventsCap > 0 {
			capacity = w.eventsCap
		}
		events = make(chan event, capacity)
		readDone = make(chan error, 1)
		go func() {
			readDone <- pe.read(events, stop, func(err error) {
				w.m.badEvents.Inc()
				w.log.Debug("drop procevent", "err", err)
			})
		}()
		scanTick = time.NewTicker(w.cfg.Rescan)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lostTick = t.C
	} else {
		scanTick = time.NewTicker(min(w.cfg.Poll, w.cfg.Rescan))
	}
	defer func() { scanTick.Stop() }()

	// Events are already flowing: a process exec'd during the scan is seen
	// by the scan, the event, or both, and the start times and timestamps
	// make "both" a no-op.
	r.scan()
	w.scannedOnce.Do(func() { close(w.scanned) })

	var lastLost uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			r.event(ev)
		case err := <-readDone:
			// The reader stopped on its own; never seen in practice, but
			// discovery must go on.
			w.log.Warn("exec/exit events stopped, polling /proc instead", "interval", w.cfg.Poll, "err", err)
			readDone <- err // for stopEvents
			stopEvents()
			scanTick.Reset(w.cfg.Poll)
		case <-scanTick.C:
			r.scan()
		case <-lostTick:
			n, err := pe.lost()
			if err != nil {
				w.log.Debug("read procevents loss counter", "err", err)
				continue
			}
			if n > lastLost {
				w.m.lost.Add(float64(n - lastLost))
				w.log.Info("procevents ring buffer overflowed, rescanning /proc", "lost", n-lastLost)
				lastLost = n
				r.scan()
			}
		case <-w.reqC:
			pids, all := w.takeRequests()
			r.reevaluate(pids, all)
		case <-r.retryTimerC():
			r.retries()
		}
	}
}

// instance is what Run remembers of one process instance.
type instance struct {
	startTime uint64
	readNS    int64 // CLOCK_MONOTONIC just before /proc/PID was read
	exe       string
	ignored   bool // kernel thread, or unreadable: never selected
	started   bool
}

type envRetry struct {
	due       time.Time
	pid       int
	startTime uint64
	attempt   int   // 1-based number of the retry to run
	execNS    int64 // when the process exec'd
}

// run is the state of one Run call, owned by its goroutine.
type run struct {
	w     *Watcher
	h     Handler
	known map[int]*instance

	pending []envRetry // sorted by due
	timer   *time.Timer
}

func monotonicNS() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

func (r *run) event(ev event) {
	if ev.pid == r.w.cfg.SelfPID {
		return
	}
	inst := r.known[ev.pid]
	switch ev.typ {
	case eventExec:
		r.w.m.execEvents.Inc()
		if inst != nil && inst.startTime == ev.startTime && inst.readNS > int64(ev.ktimeNS) {
			return // read after this exec: already the new image
		}
		// A known PID that execs runs a new image: the old instance ends
		// here. An unknown start time means the PID was reused.
		r.forget(ev.pid)
		r.evaluateAttempt(ev.pid, evalExec, 0, int64(ev.ktimeNS))
	case eventExit:
		r.w.m.exitEvents.Inc()
		if inst != nil && inst.startTime == ev.startTime {
			r.forget(ev.pid)
		}
	}
}

// scan lists /proc: new PIDs are evaluated, known ones checked for PID reuse
// and for an exec the events missed, vanished ones forgotten.
func (r *run) scan() {
	procs, err := r.w.rd.fs.AllProcs()
	if err != nil {
		r.w.log.Warn("list processes", "proc", r.w.cfg.ProcRoot, "err", err)
		return
	}
	defer r.w.m.rescans.Inc()
	alive := make(map[int]struct{}, len(procs))
	for _, p := range procs {
		pid := p.PID
		if pid == r.w.cfg.SelfPID {
			continue
		}
		alive[pid] = struct{}{}
		inst := r.known[pid]
		if inst == nil {
			r.evaluate(pid, evalScan)
			continue
		}
		st, err := r.w.rd.stat(pid)
		if err != nil {
			r.forget(pid)
			delete(alive, pid)
			continue
		}
		if st.startTime != inst.startTime {
			r.forget(pid)
			r.evaluate(pid, evalScan)
			continue
		}
		if inst.ignored {
			continue
		}
		if exe, err := p.Executable(); err == nil && exe != "" && exe != inst.exe {
			r.forget(pid) // exec'd another image, event lost or polling
			r.evaluate(pid, evalScan)
		}
	}
	for pid := range r.known {
		if _, ok := alive[pid]; !ok {
			r.forget(pid)
		}
	}
}

type evalKind int

const (
	evalScan       evalKind = iota // found by a /proc scan
	evalExec                       // just exec'd: retry an empty environment
	evalRetry                      // a retry of evalExec
	evalReevaluate                 // Reevaluate on a known instance
)

// evaluate reads pid and asks the selector. The caller has forgotten any
// previous instance.
func (r *run) evaluate(pid int, kind evalKind) {
	r.evaluateAttempt(pid, kind, 0, 0)
}

// evaluateAttempt is evaluate for the attempt-th environment retry of an
// exec that happened at execNS (CLOCK_MONOTONIC; 0 if unknown).
func (r *run) evaluateAttempt(pid int, kind evalKind, attempt int, execNS int64) {
	readNS := monotonicNS()
	p, err := r.w.rd.read(pid)
	switch {
	case errors.Is(err, errVanished):
		r.w.m.vanished.Inc()
		return
	case errors.Is(err, errKernelThread):
		r.known[pid] = &instance{startTime: p.StartTime, readNS: readNS, ignored: true}
		return
	case err != nil:
		r.w.m.readErrors.Inc()
		if p != nil {
			r.known[pid] = &instance{startTime: p.StartTime, readNS: readNS, ignored: true}
		}
		r.w.log.Warn("skip process: cannot read it", "pid", pid, "err", err)
		return
	}
	if kind != evalRetry && kind != evalReevaluate {
		r.w.m.seen.Inc()
	}
	d := r.w.sel.Select(p)
	inst := &instance{startTime: p.StartTime, readNS: readNS, exe: p.Exe}
	r.known[pid] = inst
	if d.Selected {
		r.start(inst, p, d, execNS)
		return
	}
	if err := p.env.unreadable(); err != nil && kind != evalRetry {
		// Once per instance: without this, a missing capability would
		// look like "nobody opted in".
		r.w.m.readErrors.Inc()
		r.w.log.Warn("cannot read process environment", "pid", pid, "exe", p.Exe, "err", err)
	}
	if (kind == evalExec || kind == evalRetry) && attempt < envRetries && p.env.emptyAfterRead() {
		r.schedule(envRetry{
			due: time.Now().Add(envRetryDelay(attempt)), pid: pid, startTime: p.StartTime,
			attempt: attempt + 1, execNS: execNS,
		})
	}
	r.w.log.Debug("process not selected", "pid", pid, "exe", p.Exe, "reason", d.Reason)
}

// start hands a selected instance to the handler. execNS is when it exec'd
// (0 if unknown, e.g. found by a scan).
func (r *run) start(inst *instance, p *Process, d Decision, execNS int64) {
	inst.started = true
	r.w.m.selected.Inc()
	r.w.m.started.Inc()
	r.w.log.Info("process selected", "pid", p.PID, "exe", p.Exe, "reason", d.Reason)
	r.h.Start(p, d)
	if execNS > 0 {
		r.w.m.latency.Observe(float64(monotonicNS()-execNS) / 1e9)
	}
}

// forget drops pid, ending its instance with Exit if it was started.
func (r *run) forget(pid int) {
	inst, ok := r.known[pid]
	if !ok {
		return
	}
	delete(r.known, pid)
	if inst.started {
		r.w.m.started.Dec()
		r.h.Exit(pid)
	}
}

// exitAll ends every started instance when Run returns.
func (r *run) exitAll() {
	pids := make([]int, 0, len(r.known))
	for pid := range r.known {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		r.forget(pid)
	}
	if r.timer != nil {
		r.timer.Stop()
	}
}

// reevaluate re-runs the selector on known instances: a newly selected one
// is started, one no longer selected gets its Exit.
func (r *run) reevaluate(pids []int, all bool) {
	if all {
		pids = pids[:0]
		for pid := range r.known {
			pids = append(pids, pid)
		}
		slices.Sort(pids)
	}
	for _, pid := range pids {
		inst := r.known[pid]
		if inst == nil || inst.ignored {
			continue
		}
		p, err := r.w.rd.read(pid)
		if err != nil || p.StartTime != inst.startTime {
			// Gone or reused: the scan or the events settle it.
			continue
		}
		d := r.w.sel.Select(p)
		switch {
		case d.Selected && !inst.started:
			inst.exe = p.Exe
			r.start(inst, p, d, 0)
		case !d.Selected && inst.started:
			inst.started = false
			r.w.m.started.Dec()
			r.w.log.Info("process no longer selected", "pid", pid, "exe", p.Exe, "reason", d.Reason)
			r.h.Exit(pid)
		}
	}
}

func (r *run) schedule(e envRetry) {
	i, _ := slices.BinarySearchFunc(r.pending, e.due, func(a envRetry, t time.Time) int { return a.due.Compare(t) })
	r.pending = slices.Insert(r.pending, i, e)
	r.armTimer()
}

func (r *run) armTimer() {
	if len(r.pending) == 0 {
		return
	}
	d := time.Until(r.pending[0].due)
	if r.timer == nil {
		r.timer = time.NewTimer(d)
		return
	}
	r.timer.Reset(d)
}

// retryTimerC is the channel of the environment-retry timer, nil (never
// ready) when no retry is pending.
func (r *run) retryTimerC() <-chan time.Time {
	if r.timer == nil || len(r.pending) == 0 {
		return nil
	}
	return r.timer.C
}

// retries runs the due environment retries.
func (r *run) retries() {
	now := time.Now()
	n := 0
	for n < len(r.pending) && !r.pending[n].due.After(now) {
		n++
	}
	due := slices.Clone(r.pending[:n])
	r.pending = slices.Delete(r.pending, 0, n)
	for _, e := range due {
		inst := r.known[e.pid]
		if inst == nil || inst.started || inst.ignored || inst.startTime != e.startTime {
			continue
		}
		delete(r.known, e.pid) // not started: no Exit owed
		r.evaluateAttempt(e.pid, evalRetry, e.attempt, e.execNS)
	}
	r.armTimer()
}
