package main

// The dd-trace-go v2.12 side of frameworks-v2. The module proxy here serves
// v2's contrib modules for net/http but not for gin, echo or fiber, so gin,
// echo and fiber get a minimal middleware that does what the v2 contrib does
// for them (for fiber: c.SetUserContext, as the v1 contrib does):
// start the request's span with the real v2 tracer (extracting any incoming
// trace) and put it in the request's context before calling the rest of the
// chain. chi, gorilla/mux and httprouter are wrapped with the real v2
// net/http contrib (httptrace.WrapHandler), as services using them with v2
// do.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"

	httptrace "github.com/DataDog/dd-trace-go/contrib/net/http/v2"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/ext"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
	"github.com/gin-gonic/gin"
	"github.com/gofiber/fiber/v2"
	"github.com/gorilla/mux"
	"github.com/julienschmidt/httprouter"
	"github.com/labstack/echo/v4"
)

func startTracer() (func(), error) {
	if err := tracer.Start(); err != nil {
		return nil, fmt.Errorf("start tracer: %w", err)
	}
	return tracer.Stop, nil
}

// startSpan starts a request's server span as the v2 contrib does.
func startSpan(r *http.Request, service, resource string) (*tracer.Span, context.Context) {
	opts := []tracer.StartSpanOption{
		tracer.ServiceName(service),
		tracer.ResourceName(resource),
		tracer.SpanType(ext.SpanTypeWeb),
		tracer.Tag(ext.HTTPMethod, r.Method),
		tracer.Tag(ext.HTTPURL, r.URL.Path),
		tracer.Measured(),
	}
	if sctx, err := tracer.Extract(tracer.HTTPHeadersCarrier(r.Header)); err == nil {
		opts = append(opts, tracer.ChildOf(sctx))
	}
	return tracer.StartSpanFromContext(r.Context(), "http.request", opts...)
}

func newTracing() tracing {
	wrap := func(h http.Handler, service string) http.Handler {
		return httptrace.WrapHandler(h, service, "")
	}
	return tracing{
		gin: func(c *gin.Context) {
			span, ctx := startSpan(c.Request, "frameworks-v2-gin", c.Request.Method+" "+c.FullPath())
			defer span.Finish()
			c.Request = c.Request.WithContext(ctx)
			c.Next()
			span.SetTag(ext.HTTPCode, strconv.Itoa(c.Writer.Status()))
		},
		echo: func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				span, ctx := startSpan(c.Request(), "frameworks-v2-echo", c.Request().Method+" "+c.Path())
				defer span.Finish()
				c.SetRequest(c.Request().WithContext(ctx))
				err := next(c)
				span.SetTag(ext.HTTPCode, strconv.Itoa(c.Response().Status))
				return err
			}
		},
		chi: func(next http.Handler) http.Handler { return wrap(next, "frameworks-v2-chi") },
		mux: func() (*mux.Router, http.Handler) {
			r := mux.NewRouter()
			return r, wrap(r, "frameworks-v2-mux")
		},
		router: func() (*httprouter.Router, http.Handler) {
			r := httprouter.New()
			return r, wrap(r, "frameworks-v2-httprouter")
		},
		fiber: func(c *fiber.Ctx) error {
			opts := []tracer.StartSpanOption{
				tracer.ServiceName("frameworks-v2-fiber"),
				tracer.SpanType(ext.SpanTypeWeb),
				tracer.Tag(ext.HTTPMethod, c.Method()),
				tracer.Tag(ext.HTTPURL, c.Path()),
				tracer.Measured(),
			}
			h := http.Header{}
			for k, vs := range c.GetReqHeaders() {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			if sctx, err := tracer.Extract(tracer.HTTPHeadersCarrier(h)); err == nil {
				opts = append(opts, tracer.ChildOf(sctx))
			}
			span, ctx := tracer.StartSpanFromContext(c.UserContext(), "http.request", opts...)
			defer span.Finish()
			c.SetUserContext(ctx)
			err := c.Next()
			span.SetTag(ext.ResourceName, c.Method()+" "+c.Route().Path)
			span.SetTag(ext.HTTPCode, strconv.Itoa(c.Response().StatusCode()))
			return err
		},
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
		t.TraceID = sc.TraceID()
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
