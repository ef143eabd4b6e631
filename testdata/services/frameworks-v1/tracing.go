package main

// The dd-trace-go v1.73 side of frameworks-v1: its contrib integration for
// each framework, and the truth read through v1's API.

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/julienschmidt/httprouter"
	gintrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/gin-gonic/gin"
	chitrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/go-chi/chi.v5"
	fibertrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/gofiber/fiber.v2"
	muxtrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/gorilla/mux"
	routertrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/julienschmidt/httprouter"
	echotrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/labstack/echo.v4"
	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace"
	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer"
)

func startTracer() (func(), error) {
	tracer.Start()
	return tracer.Stop, nil
}

func newTracing() tracing {
	return tracing{
		gin:  gintrace.Middleware("frameworks-v1-gin"),
		echo: echotrace.Middleware(echotrace.WithServiceName("frameworks-v1-echo")),
		chi:  chitrace.Middleware(chitrace.WithServiceName("frameworks-v1-chi")),
		mux: func() (*mux.Router, http.Handler) {
			r := muxtrace.NewRouter(muxtrace.WithServiceName("frameworks-v1-mux"))
			return r.Router, r
		},
		router: func() (*httprouter.Router, http.Handler) {
			r := routertrace.New(routertrace.WithServiceName("frameworks-v1-httprouter"))
			return r.Router, r
		},
		fiber: fibertrace.Middleware(fibertrace.WithServiceName("frameworks-v1-fiber")),
	}
}

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

// report writes the truth of the handler at pc (its entry, from a function
// value or method expression, never a compiler wrapper) for a request whose
// context is ctx.
func report(w http.ResponseWriter, ctx context.Context, route string, pc uintptr) {
	t := truth{Route: route}
	if span, ok := tracer.SpanFromContext(ctx); ok {
		sc := span.Context()
		t.SpanID = strconv.FormatUint(sc.SpanID(), 10)
		if w3c, ok := sc.(ddtrace.SpanContextW3C); ok {
			t.TraceID = w3c.TraceID128()
		}
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
