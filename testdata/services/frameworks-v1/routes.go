package main

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gorilla/mux"
	"github.com/julienschmidt/httprouter"
	"github.com/labstack/echo/v4"

	"example.com/frameworks/internal/handlers"
)

// tracing is how a tracer hooks into each framework; tracing.go of each
// service (dd-trace-go v1 or v2) provides it.
type tracing struct {
	gin  gin.HandlerFunc
	echo echo.MiddlewareFunc
	chi  func(http.Handler) http.Handler
	// mux and router return the router to register routes on and the
	// handler serving it.
	mux    func() (*mux.Router, http.Handler)
	router func() (*httprouter.Router, http.Handler)
	fiber  fiber.Handler
}

// This file is shared by frameworks-v1 and frameworks-v2 (a symbolic link
// there): both serve the same routes with different tracers.

// Every framework serves the same handler forms under its own prefix:
// a function, method values with pointer and value receivers, a closure
// from a constructor in another package, a struct handler, and handlers
// behind group and route middleware. User middleware runs on every route.

// store has pointer-receiver handler methods, registered as method values.
type store struct{ hits atomic.Int64 }

// catalog has value-receiver handler methods, registered as method values.
type catalog struct{ name string }

// structHandler is an http.Handler registered through the frameworks'
// adapters (gin.WrapH, echo.WrapHandler, Handle).
type structHandler struct{ hits atomic.Int64 }

func (h *structHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.hits.Add(1)
	report(w, r.Context(), r.URL.Path, reflect.ValueOf((*structHandler).ServeHTTP).Pointer())
}

type userKey struct{}

// ---- gin

func ginFunc(c *gin.Context) {
	report(c.Writer, c.Request.Context(), c.Request.URL.Path, reflect.ValueOf(ginFunc).Pointer())
}

func (s *store) ginGet(c *gin.Context) {
	s.hits.Add(1)
	report(c.Writer, c.Request.Context(), c.Request.URL.Path, reflect.ValueOf((*store).ginGet).Pointer())
}

func (k catalog) ginList(c *gin.Context) {
	c.Header("X-Catalog", k.name)
	report(c.Writer, c.Request.Context(), c.Request.URL.Path, reflect.ValueOf(catalog.ginList).Pointer())
}

func ginGroupHandler(c *gin.Context) {
	report(c.Writer, c.Request.Context(), c.Request.URL.Path, reflect.ValueOf(ginGroupHandler).Pointer())
}

// ginRequestID calls c.Next, as most gin middleware does.
func ginRequestID(n *atomic.Int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("X-Request-ID", strconv.FormatInt(n.Add(1), 10))
		c.Next()
	}
}

// ginAuth does not call c.Next: gin runs the rest of the chain after it.
func ginAuth(c *gin.Context) {
	if c.GetHeader("X-Deny") != "" {
		c.AbortWithStatus(http.StatusForbidden)
		return
	}
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), userKey{}, "ada"))
}

// ginAudit is route middleware that calls c.Next.
func ginAudit(c *gin.Context) {
	c.Header("X-Audit", "1")
	c.Next()
}

func ginRoutes(tr tracing, n *atomic.Int64) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(tr.gin, ginRequestID(n))
	s, k := &store{}, catalog{name: "gin"}
	r.GET("/gin/func", ginFunc)
	r.GET("/gin/method", s.ginGet)
	r.GET("/gin/value", k.ginList)
	r.GET("/gin/closure", handlers.Gin(report, "g-"))
	r.GET("/gin/struct", gin.WrapH(&structHandler{}))
	g := r.Group("/gin/group", ginAuth)
	g.GET("/mw", ginAudit, ginGroupHandler)
	g.GET("/method", s.ginGet)
	return r
}

// ---- echo

func echoFunc(c echo.Context) error {
	report(c.Response(), c.Request().Context(), c.Request().URL.Path, reflect.ValueOf(echoFunc).Pointer())
	return nil
}

func (s *store) echoGet(c echo.Context) error {
	s.hits.Add(1)
	report(c.Response(), c.Request().Context(), c.Request().URL.Path, reflect.ValueOf((*store).echoGet).Pointer())
	return nil
}

func (k catalog) echoList(c echo.Context) error {
	c.Response().Header().Set("X-Catalog", k.name)
	report(c.Response(), c.Request().Context(), c.Request().URL.Path, reflect.ValueOf(catalog.echoList).Pointer())
	return nil
}

func echoGroupHandler(c echo.Context) error {
	report(c.Response(), c.Request().Context(), c.Request().URL.Path, reflect.ValueOf(echoGroupHandler).Pointer())
	return nil
}

func echoRequestID(n *atomic.Int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Request-ID", strconv.FormatInt(n.Add(1), 10))
			return next(c)
		}
	}
}

func echoAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), userKey{}, "ada")))
		return next(c)
	}
}

func echoAudit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("X-Audit", "1")
		return next(c)
	}
}

func echoRoutes(tr tracing, n *atomic.Int64) http.Handler {
	e := echo.New()
	e.Use(tr.echo, echoRequestID(n))
	s, k := &store{}, catalog{name: "echo"}
	e.GET("/echo/func", echoFunc)
	e.GET("/echo/method", s.echoGet)
	e.GET("/echo/value", k.echoList)
	e.GET("/echo/closure", handlers.Echo(report, "e-"))
	e.GET("/echo/struct", echo.WrapHandler(&structHandler{}))
	g := e.Group("/echo/group", echoAuth)
	g.GET("/mw", echoGroupHandler, echoAudit)
	g.GET("/method", s.echoGet)
	return e
}

// ---- net/http routers: chi and gorilla/mux

func httpFunc(w http.ResponseWriter, r *http.Request) {
	report(w, r.Context(), r.URL.Path, reflect.ValueOf(httpFunc).Pointer())
}

func (s *store) httpGet(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	report(w, r.Context(), r.URL.Path, reflect.ValueOf((*store).httpGet).Pointer())
}

func (k catalog) httpList(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Catalog", k.name)
	report(w, r.Context(), r.URL.Path, reflect.ValueOf(catalog.httpList).Pointer())
}

func httpGroupHandler(w http.ResponseWriter, r *http.Request) {
	report(w, r.Context(), r.URL.Path, reflect.ValueOf(httpGroupHandler).Pointer())
}

func httpRequestID(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-ID", strconv.FormatInt(n.Add(1), 10))
			next.ServeHTTP(w, r)
		})
	}
}

func httpAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "ada")))
	})
}

func httpAudit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Audit", "1")
		next.ServeHTTP(w, r)
	})
}

func chiRoutes(tr tracing, n *atomic.Int64) http.Handler {
	r := chi.NewRouter()
	r.Use(tr.chi, httpRequestID(n))
	s, k := &store{}, catalog{name: "chi"}
	r.Get("/chi/func", httpFunc)
	r.Get("/chi/method", s.httpGet)
	r.Get("/chi/value", k.httpList)
	r.Get("/chi/closure", handlers.HTTP(report, "c-"))
	r.Handle("/chi/struct", &structHandler{})
	r.Route("/chi/group", func(r chi.Router) {
		r.Use(httpAuth)
		r.With(httpAudit).Get("/mw", httpGroupHandler)
		r.Get("/method", s.httpGet)
	})
	r.Group(func(r chi.Router) {
		r.Use(httpAudit)
		r.Get("/chi/inline", httpGroupHandler)
	})
	sub := chi.NewRouter()
	sub.Use(httpAuth)
	sub.Get("/func", httpFunc)
	r.Mount("/chi/mount", sub)
	return r
}

func muxRoutes(tr tracing, n *atomic.Int64) http.Handler {
	r, h := tr.mux()
	r.Use(httpRequestID(n))
	s, k := &store{}, catalog{name: "mux"}
	r.HandleFunc("/mux/func", httpFunc)
	r.HandleFunc("/mux/method", s.httpGet)
	r.HandleFunc("/mux/value", k.httpList)
	r.HandleFunc("/mux/closure", handlers.HTTP(report, "m-"))
	r.Handle("/mux/struct", &structHandler{})
	sub := r.PathPrefix("/mux/group").Subrouter()
	sub.Use(httpAuth, httpAudit)
	sub.HandleFunc("/mw", httpGroupHandler)
	sub.Handle("/method", http.HandlerFunc(s.httpGet))
	return h
}

// ---- httprouter: the router has no middleware of its own; the user's
// wraps the whole router as an http.Handler.

func routerFunc(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	report(w, r.Context(), r.URL.Path, reflect.ValueOf(routerFunc).Pointer())
}

func (s *store) routerGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s.hits.Add(1)
	w.Header().Set("X-ID", ps.ByName("id"))
	report(w, r.Context(), r.URL.Path, reflect.ValueOf((*store).routerGet).Pointer())
}

func (k catalog) routerList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("X-Catalog", k.name)
	report(w, r.Context(), r.URL.Path, reflect.ValueOf(catalog.routerList).Pointer())
}

func routerRoutes(tr tracing, n *atomic.Int64) http.Handler {
	r, h := tr.router()
	s, k := &store{}, catalog{name: "httprouter"}
	r.GET("/httprouter/func", routerFunc)
	r.GET("/httprouter/method/:id", s.routerGet)
	r.GET("/httprouter/value", k.routerList)
	r.GET("/httprouter/closure", handlers.Router(report, "r-"))
	r.Handler(http.MethodGet, "/httprouter/struct", &structHandler{})
	r.HandlerFunc(http.MethodGet, "/httprouter/handlerfunc", httpFunc)
	return httpRequestID(n)(h)
}

// ---- fiber: fasthttp-based; the app is served through fiber's own
// net/http adaptor so that one listener serves every framework (fiber's
// dispatch, App.handler and App.next, runs as under App.Listen).

// fiberReport answers a fiber request with its truth, read from the user
// context where the tracer puts the span.
func fiberReport(c *fiber.Ctx, pc uintptr) error {
	w := &fiberWriter{c: c, h: http.Header{}}
	report(w, c.UserContext(), c.Path(), pc)
	return nil
}

// fiberWriter lets report write a fiber response.
type fiberWriter struct {
	c *fiber.Ctx
	h http.Header
}

func (w *fiberWriter) Header() http.Header { return w.h }

func (w *fiberWriter) Write(b []byte) (int, error) {
	for k, v := range w.h {
		for _, s := range v {
			w.c.Set(k, s)
		}
	}
	return w.c.Write(b)
}

func (w *fiberWriter) WriteHeader(code int) { w.c.Status(code) }

func fiberFunc(c *fiber.Ctx) error {
	return fiberReport(c, reflect.ValueOf(fiberFunc).Pointer())
}

func (s *store) fiberGet(c *fiber.Ctx) error {
	s.hits.Add(1)
	return fiberReport(c, reflect.ValueOf((*store).fiberGet).Pointer())
}

func (k catalog) fiberList(c *fiber.Ctx) error {
	c.Set("X-Catalog", k.name)
	return fiberReport(c, reflect.ValueOf(catalog.fiberList).Pointer())
}

func fiberGroupHandler(c *fiber.Ctx) error {
	return fiberReport(c, reflect.ValueOf(fiberGroupHandler).Pointer())
}

// fiberRequestID runs before the tracer and keeps the ID in the request's
// locals, as fiber's requestid middleware does: fasthttp's user values then
// hold another string key before the user context.
func fiberRequestID(n *atomic.Int64) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := strconv.FormatInt(n.Add(1), 10)
		c.Locals("requestid", id)
		c.Set("X-Request-ID", id)
		return c.Next()
	}
}

// fiberAuth puts a value in the user context, as auth middleware does.
func fiberAuth(c *fiber.Ctx) error {
	if c.Get("X-Deny") != "" {
		return c.SendStatus(http.StatusForbidden)
	}
	c.Locals("user", "ada")
	c.SetUserContext(context.WithValue(c.UserContext(), userKey{}, "ada"))
	return c.Next()
}

func fiberAudit(c *fiber.Ctx) error {
	c.Set("X-Audit", "1")
	return c.Next()
}

func fiberRoutes(tr tracing, n *atomic.Int64) http.Handler {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(fiberRequestID(n), tr.fiber)
	s, k := &store{}, catalog{name: "fiber"}
	app.Get("/fiber/func", fiberFunc)
	app.Get("/fiber/method", s.fiberGet)
	app.Get("/fiber/value", k.fiberList)
	app.Get("/fiber/closure", handlers.Fiber(fiberReport, "f-"))
	g := app.Group("/fiber/group", fiberAuth)
	g.Get("/mw", fiberAudit, fiberGroupHandler)
	g.Get("/method", s.fiberGet)
	return adaptor.FiberApp(app)
}
