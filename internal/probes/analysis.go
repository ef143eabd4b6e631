package probes

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/gotypes"
	"github.com/originagent/originagent/internal/symbolize"
)

// Type names the BPF program must recognise, as gotypes spells them.
const (
	typeRequest     = "net/http.Request"
	typeValueCtx    = "*context.valueCtx"
	typeValueCtxS   = "context.valueCtx"
	typeContext     = "context.Context"
	typeV2SpanCtx   = "*github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx"
	typeV2SpanCtxS  = "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.spanCtx"
	typeV2Span      = "*github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span"
	typeV2SpanS     = "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span"
	typeV2SpanCtxtS = "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.SpanContext"
	typeV1Span      = "*gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span"
	typeV1SpanS     = "gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.span"
	typeV1SpanCtxtS = "gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer.spanContext"
)

// errNotApplicable marks binaries originagent cannot instrument (not Go, no
// supported framework, no tracer); the engine skips them with one log line.
var errNotApplicable = errors.New("not applicable")

// itabInfo is the part of an itab the engine uses.
type itabInfo struct {
	iface, typ string
	addr       uint64
	typeAddr   uint64 // of the concrete type's descriptor
	fun        []uint64
}

// probeTarget is a target placed in the file: where the uprobe goes.
type probeTarget struct {
	target
	fileOffset uint64 // of the function entry, for the uprobe
	pushOffset uint16 // bytes from entry to the probe: PUSHQ BP, or the call of an in-body recipe (0: on the entry)
}

// analysis is everything the engine derives from one binary, shared by all
// processes that run it.
type analysis struct {
	path       string
	sym        *symbolize.Binary
	itabs      []itabInfo
	nodes      map[uint64]bpf.OriginNodeInfo   // itab address -> context node
	spans      map[uint64]bpf.OriginSpanLayout // type address -> span layout
	targets    []probeTarget
	segs       []segment // executable segments, for each process's load bias
	frameworks []string
	tracers    []string
	problems   []string // frameworks found but not probed, and why
}

func (a *analysis) funcEntry(name string) (uint64, bool) {
	f, ok := a.sym.Func(name)
	if !ok {
		return 0, false
	}
	return f.Entry, true
}

func (a *analysis) funcName(pc uint64) (string, bool) {
	frames, err := a.sym.Lookup(pc, false)
	if err != nil || len(frames) == 0 {
		return "", false
	}
	// The outermost frame is the function that contains pc.
	return frames[len(frames)-1].Function, true
}

func (a *analysis) isUser(name string) bool { return a.sym.IsUser(name) }

// analyze inspects the binary at path (usually /proc/PID/exe). sym is the
// binary's symbol table, shared through the symbolize cache.
func analyze(path string, sym *symbolize.Binary) (*analysis, error) {
	types, err := gotypes.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read Go type information: %w", err)
	}
	defer types.Close()
	a := &analysis{
		path:  path,
		sym:   sym,
		nodes: map[uint64]bpf.OriginNodeInfo{},
		spans: map[uint64]bpf.OriginSpanLayout{},
	}
	its, err := types.Itabs()
	if err != nil {
		return nil, fmt.Errorf("read itabs: %w", err)
	}
	for _, it := range its {
		a.itabs = append(a.itabs, itabInfo{iface: it.Interface, typ: it.Type, addr: it.Addr, typeAddr: it.TypeAddr, fun: it.Fun})
	}

	if err := a.spanTypes(types); err != nil {
		return nil, err
	}
	if err := a.contextNodes(types); err != nil {
		return nil, err
	}
	exe, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer exe.Close()
	if a.segs, err = execSegments(exe); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sc := &scan{analysis: a, types: types, exe: exe}
	for _, fw := range frameworks() {
		ts, err := fw.targets(sc)
		if err != nil {
			// One framework's unexpected build must not cost the others.
			a.problems = append(a.problems, fmt.Sprintf("%s not probed: %v", fw.name, err))
			continue
		}
		if len(ts) == 0 {
			continue
		}
		a.frameworks = append(a.frameworks, fw.name)
		for _, t := range ts {
			t.framework = fw.name
			pt, err := place(exe, t)
			if err != nil {
				return nil, err
			}
			a.targets = append(a.targets, pt)
		}
	}
	if len(a.targets) == 0 && len(a.problems) > 0 {
		return nil, fmt.Errorf("%w: %s", errNotApplicable, strings.Join(a.problems, "; "))
	}
	if len(a.targets) == 0 {
		return nil, fmt.Errorf("%w: no supported framework (net/http, gin, echo, httprouter, gRPC, fiber) found", errNotApplicable)
	}
	return a, nil
}

// spanTypes records the dd-trace-go span types present in the binary and
// where their IDs are.
func (a *analysis) spanTypes(types *gotypes.Binary) error {
	type tracerSpan struct {
		tracer, ptr, span, spanCtx string
		spanID, traceLo, ctx       string
	}
	for _, ts := range []tracerSpan{
		{"dd-trace-go v2", typeV2Span, typeV2SpanS, typeV2SpanCtxtS, "spanID", "traceID", "context"},
		{"dd-trace-go v1", typeV1Span, typeV1SpanS, typeV1SpanCtxtS, "SpanID", "TraceID", "context"},
	} {
		t, err := types.Type(ts.ptr)
		if err != nil || t.Addr == 0 {
			continue
		}
		l, err := spanLayout(types, ts.span, ts.spanCtx, ts.spanID, ts.traceLo, ts.ctx)
		if err != nil {
			return fmt.Errorf("%s span layout: %w", ts.tracer, err)
		}
		a.spans[t.Addr] = l
		a.tracers = append(a.tracers, ts.tracer)
	}
	if len(a.tracers) == 0 {
		return fmt.Errorf("%w: no dd-trace-go span type (v1 <= 1.73 or v2) in the binary", errNotApplicable)
	}
	return nil
}

func spanLayout(types *gotypes.Binary, span, spanCtx, spanID, traceLo, ctx string) (bpf.OriginSpanLayout, error) {
	var l bpf.OriginSpanLayout
	get := func(typ, field string) (uint16, error) {
		off, err := types.FieldOffset(typ, field)
		if err != nil {
			return 0, err
		}
		if off >= noCtx {
			return 0, fmt.Errorf("offset of %s.%s too large: %d", typ, field, off)
		}
		return uint16(off), nil
	}
	var err error
	if l.SpanId, err = get(span, spanID); err != nil {
		return l, err
	}
	if l.TraceLo, err = get(span, traceLo); err != nil {
		return l, err
	}
	l.Ctx, l.Trace128 = noCtx, 0
	if c, err := get(span, ctx); err == nil {
		if t, err := get(spanCtx, "traceID"); err == nil {
			l.Ctx, l.Trace128 = c, t
			// Both tracers keep the span ID a few bytes after the trace
			// ID in the span context: the probe then reads every ID at
			// once from there (SC_IDS_MAX in bpf/origin.c).
			if s, err := get(spanCtx, "spanID"); err == nil && s >= t+16 && s+8 <= t+scIDsMax {
				l.ScSpanId = s
				l.Flags |= layoutSCIDs
			}
		}
	}
	return l, nil
}

// contextNodes classifies every context.Context implementation that has a
// static itab: value nodes, dd-trace-go v2 span nodes, and any struct whose
// first field is its parent context (cancelCtx, timerCtx, user wrappers).
func (a *analysis) contextNodes(types *gotypes.Binary) error {
	valOff, err := types.FieldOffset(typeValueCtxS, "val")
	if err != nil {
		return fmt.Errorf("context.valueCtx layout: %w", err)
	}
	var v2 *bpf.OriginSpanLayout
	if t, err := types.Type(typeV2Span); err == nil {
		if l, ok := a.spans[t.Addr]; ok {
			v2 = &l
		}
	}
	for _, it := range a.itabs {
		if it.iface != typeContext {
			continue
		}
		n, ok := a.contextNode(types, it, valOff, v2)
		if !ok {
			continue
		}
		a.nodes[it.addr] = n
		// A context held in an any (fiber's user context) starts with
		// its type, not an itab: the node is found under both.
		if it.typeAddr != 0 {
			a.nodes[it.typeAddr] = n
		}
	}
	return nil
}

// contextNode classifies the implementation of context.Context of one itab.
func (a *analysis) contextNode(types *gotypes.Binary, it itabInfo, valOff uint64, v2 *bpf.OriginSpanLayout) (bpf.OriginNodeInfo, bool) {
	switch it.typ {
	case typeValueCtx:
		return bpf.OriginNodeInfo{Kind: nodeValue, ValOff: uint16(valOff)}, true
	case typeV2SpanCtx:
		off, err := types.FieldOffset(typeV2SpanCtxS, "span")
		if err != nil || v2 == nil {
			return bpf.OriginNodeInfo{}, false
		}
		n := bpf.OriginNodeInfo{Kind: nodeSpanCtx, ValOff: uint16(off), Span: *v2}
		// The snapshot *SpanContext taken when the span was put in
		// the context carries the IDs; the probe reads it when it is
		// the word after the span, as in v2.12.
		if snap, err := types.FieldOffset(typeV2SpanCtxS, "snapshot"); err == nil && snap == off+8 {
			n.Flags |= nodeFSnapshot
		}
		return n, true
	default:
		if parentFirst(types, it.typ) {
			return bpf.OriginNodeInfo{Kind: nodeParent}, true
		}
	}
	return bpf.OriginNodeInfo{}, false
}

// parentFirst reports whether ptrType is a pointer to a struct whose field at
// offset 0 is a context.Context, directly or through nested first fields.
func parentFirst(types *gotypes.Binary, ptrType string) bool {
	t, err := types.Type(ptrType)
	if err != nil || t.Kind != reflect.Pointer || t.Elem == nil {
		return false
	}
	s := t.Elem
	for depth := 0; depth < 4 && s != nil && s.Kind == reflect.Struct && len(s.Fields) > 0; depth++ {
		f := s.Fields[0]
		if f.Offset != 0 || f.Type == nil {
			return false
		}
		if f.Type.Name == typeContext {
			return true
		}
		s = f.Type
	}
	return false
}

// place finds where in the file a target's probe goes: the file offset of
// the function and the distance to its PUSHQ BP.
func place(f *elf.File, t target) (probeTarget, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 || t.entry < p.Vaddr || t.entry >= p.Vaddr+p.Filesz {
			continue
		}
		pt := probeTarget{target: t, fileOffset: t.entry - p.Vaddr + p.Off}
		if t.at != 0 {
			if t.at < t.entry || t.at-t.entry >= noCtx {
				return pt, fmt.Errorf("probe of %s at %#x outside the function at %#x", t.name, t.at, t.entry)
			}
			pt.pushOffset = uint16(t.at - t.entry)
			return pt, nil
		}
		code := make([]byte, maxPrologue)
		n, err := p.ReadAt(code, int64(t.entry-p.Vaddr))
		if err != nil && !errors.Is(err, io.EOF) {
			return pt, fmt.Errorf("read code of %s: %w", t.name, err)
		}
		if off, err := framePushOffset(code[:n]); err == nil {
			pt.pushOffset = uint16(off)
		}
		return pt, nil
	}
	return probeTarget{}, fmt.Errorf("%s at %#x is in no executable segment", t.name, t.entry)
}

// probeStatus describes the probed functions, for status output.
func (a *analysis) probeStatus() []ProbeStatus {
	out := make([]ProbeStatus, 0, len(a.targets))
	for _, t := range a.targets {
		out = append(out, ProbeStatus{Framework: t.framework, Symbol: t.name, AtEntry: t.pushOffset == 0 && t.at == 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Symbol < out[j].Symbol })
	return out
}
