package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
)

// truth is what originagent should report for a request: the active span's
// IDs and the handler's symbol and declaration position.
type truth struct {
	TraceID  string `json:"trace_id"`
	SpanID   string `json:"span_id"`
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Route    string `json:"route"`
}

func writeTruth(w http.ResponseWriter, r *http.Request, pc uintptr) {
	t := truth{Route: r.URL.Path}
	if span, ok := tracer.SpanFromContext(r.Context()); ok {
		sc := span.Context()
		t.TraceID = sc.TraceID()
		t.SpanID = strconv.FormatUint(sc.SpanID(), 10)
	}
	if fn := runtime.FuncForPC(pc); fn != nil {
		t.Function = fn.Name()
		t.File, t.Line = fn.FileLine(fn.Entry())
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(t); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
