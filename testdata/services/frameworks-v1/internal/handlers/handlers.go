// Package handlers holds handler constructors in a package of their own, as
// services often do: the closures they return are named after this package
// (or after the caller they are inlined into), never after the router.
package handlers

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/gofiber/fiber/v2"
	"github.com/julienschmidt/httprouter"
	"github.com/labstack/echo/v4"
)

// Reporter answers a request with its truth: the handler at pc, under the
// request's context.
type Reporter func(w http.ResponseWriter, ctx context.Context, route string, pc uintptr)

// Gin returns a gin handler closure counting its calls.
func Gin(report Reporter, prefix string) gin.HandlerFunc {
	var n atomic.Int64
	var h gin.HandlerFunc
	h = func(c *gin.Context) {
		c.Header("X-Count", prefix+strconv.FormatInt(n.Add(1), 10))
		report(c.Writer, c.Request.Context(), c.Request.URL.Path, reflect.ValueOf(h).Pointer())
	}
	return h
}

// Echo returns an echo handler closure counting its calls.
func Echo(report Reporter, prefix string) echo.HandlerFunc {
	var n atomic.Int64
	var h echo.HandlerFunc
	h = func(c echo.Context) error {
		c.Response().Header().Set("X-Count", prefix+strconv.FormatInt(n.Add(1), 10))
		report(c.Response(), c.Request().Context(), c.Request().URL.Path, reflect.ValueOf(h).Pointer())
		return nil
	}
	return h
}

// HTTP returns a net/http handler closure (chi, gorilla/mux) counting its calls.
func HTTP(report Reporter, prefix string) http.HandlerFunc {
	var n atomic.Int64
	var h http.HandlerFunc
	h = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Count", prefix+strconv.FormatInt(n.Add(1), 10))
		report(w, r.Context(), r.URL.Path, reflect.ValueOf(h).Pointer())
	}
	return h
}

// Router returns an httprouter.Handle closure counting its calls.
func Router(report Reporter, prefix string) httprouter.Handle {
	var n atomic.Int64
	var h httprouter.Handle
	h = func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		w.Header().Set("X-Count", prefix+strconv.FormatInt(n.Add(1), 10)+ps.ByName("id"))
		report(w, r.Context(), r.URL.Path, reflect.ValueOf(h).Pointer())
	}
	return h
}

// Fiber returns a fiber handler closure counting its calls; report answers
// with the truth of the handler at pc.
func Fiber(report func(c *fiber.Ctx, pc uintptr) error, prefix string) fiber.Handler {
	var n atomic.Int64
	var h fiber.Handler
	h = func(c *fiber.Ctx) error {
		c.Set("X-Count", prefix+strconv.FormatInt(n.Add(1), 10))
		return report(c, reflect.ValueOf(h).Pointer())
	}
	return h
}
