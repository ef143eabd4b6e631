package export

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"sync"

	"github.com/originagent/originagent/internal/origin"
)

// JSONLines is a sink that writes one JSON object per record, for
// `originagent run --events`: a plain, greppable trail of what the probes saw.
type JSONLines struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

// NewJSONLines returns a sink writing to w. Call Flush before closing w.
func NewJSONLines(w io.Writer) *JSONLines {
	bw := bufio.NewWriter(w)
	return &JSONLines{w: bw, enc: json.NewEncoder(bw)}
}

type jsonFrame struct {
	Function  string `json:"function"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	StartLine int    `json:"start_line"`
	Type      string `json:"type"`
	Method    string `json:"method"`
}

type jsonRecord struct {
	TraceID string            `json:"trace_id"`
	SpanID  string            `json:"span_id"`
	PID     int               `json:"pid"`
	Service string            `json:"service,omitempty"`
	Seq     uint64            `json:"seq"`
	Labels  map[string]string `json:"labels,omitempty"`
	Frames  []jsonFrame       `json:"frames"`
}

// Put writes r as one line. The span ID is a decimal string: JSON numbers
// above 2^53 lose precision in most readers. The first write error is kept
// and returned by Flush; later records are dropped.
func (j *JSONLines) Put(r origin.Record) {
	jr := jsonRecord{
		TraceID: r.TraceID.String(),
		SpanID:  strconv.FormatUint(r.SpanID, 10),
		PID:     r.PID,
		Service: r.Service,
		Seq:     r.Seq,
		Labels:  r.Labels,
		Frames:  make([]jsonFrame, len(r.Frames)),
	}
	for i, f := range r.Frames {
		jr.Frames[i] = jsonFrame{Function: f.Function, File: f.File, Line: f.Line, StartLine: f.StartLine, Type: f.Type, Method: f.Method}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if err := j.enc.Encode(jr); err != nil {
		j.err = err
		return
	}
	// Records are rare next to requests; flushing each keeps `--events -`
	// live for a reader such as the demo.
	j.err = j.w.Flush()
}

// Flush writes buffered data and returns the first write error.
func (j *JSONLines) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	return j.w.Flush()
}
