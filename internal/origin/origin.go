// Package origin defines the code-origin record that flows from the probe
// engine (internal/probes) to the exporters (internal/export), and the tags a
// record puts on a span. It is the only contract between the two halves of
// originagent, so it has no dependencies of its own.
package origin

import (
	"encoding/hex"
	"strconv"
)

// TraceID is a 128-bit Datadog trace ID: High holds the upper 64 bits (the
// `_dd.p.tid` tag on the wire), Low the lower 64 bits (the span's trace_id).
type TraceID struct {
	High, Low uint64
}

// String returns the trace ID as 32 lower-case hex digits, as the W3C and
// Datadog's UI print it.
func (t TraceID) String() string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(t.High >> (56 - 8*i))
		b[8+i] = byte(t.Low >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

// IsZero reports whether the trace ID is unset.
func (t TraceID) IsZero() bool { return t.High == 0 && t.Low == 0 }

// Frame is one symbolized user frame.
type Frame struct {
	Function  string // full symbol, e.g. github.com/acme/shop/api.(*Users).Get
	File      string // as runtime.Func.FileLine reports it
	Line      int    // line of the PC (for the origin frame: the handler's entry)
	StartLine int    // declaration line of the function (pclntab startLine)
	Type      string // import path plus receiver type, or import path alone
	Method    string // method or function name
}

// Record says that, in process PID, the span SpanID of trace TraceID ran the
// user code in Frames. Frames[0] is the origin (the handler); further frames
// are the user stack above it, innermost first.
type Record struct {
	PID     int
	Service string // DD_SERVICE of the process, when known
	TraceID TraceID
	SpanID  uint64
	Frames  []Frame
	// Seq orders records of one span in dispatch order: when middleware runs
	// several user handlers under one span, the highest Seq is the innermost
	// handler and names the origin.
	Seq uint64
	// Labels carries where the process runs (pod, namespace, container),
	// when a selector knows it.
	Labels map[string]string
}

// Sink receives records from the probe engine. Implementations must not
// block for long: the probe engine calls Put from its event-reading loop.
type Sink interface {
	Put(Record)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Record)

// Put calls f(r).
func (f SinkFunc) Put(r Record) { f(r) }

// Tag names of the Datadog Code Origin for Spans contract.
const (
	TagType        = "_dd.code_origin.type"
	TagFrameFile   = "_dd.code_origin.frames.0.file"
	TagFrameLine   = "_dd.code_origin.frames.0.line"
	TagFrameType   = "_dd.code_origin.frames.0.type"
	TagFrameMethod = "_dd.code_origin.frames.0.method"
)

// Tags returns the span tags for r: the origin frame's file, declaration
// line, type and method, and the type `entry`. It returns nil when r has no
// frames.
func (r Record) Tags() map[string]string {
	if len(r.Frames) == 0 {
		return nil
	}
	f := r.Frames[0]
	line := f.StartLine
	if line == 0 {
		line = f.Line
	}
	return map[string]string{
		TagType:        "entry",
		TagFrameFile:   f.File,
		TagFrameLine:   strconv.Itoa(line),
		TagFrameType:   f.Type,
		TagFrameMethod: f.Method,
	}
}

// Tee returns a Sink that hands every record to each of sinks in turn.
func Tee(sinks ...Sink) Sink {
	return SinkFunc(func(r Record) {
		for _, s := range sinks {
			s.Put(r)
		}
	})
}
