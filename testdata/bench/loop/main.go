// Command loop is the probe-cost benchmark's target: it calls an
// http.Handler (an http.HandlerFunc, through the interface, as net/http's
// ServeMux does) in a tight loop under a real dd-trace-go span, so that the
// time per call with and without a uprobe on net/http.HandlerFunc.ServeHTTP
// measures the probe itself. Each line "N" on stdin runs N calls and prints
// the elapsed nanoseconds.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
)

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var sink int

func handle(w http.ResponseWriter, r *http.Request) { sink++ }

func main() {
	if err := tracer.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer tracer.Stop()
	span, ctx := tracer.StartSpanFromContext(context.Background(), "http.request")
	defer span.Finish()
	ctx = context.WithValue(ctx, struct{ k int }{1}, "one more hop")
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	w := &discard{h: http.Header{}}
	handlers := []http.Handler{http.HandlerFunc(handle)}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		h := handlers[n%len(handlers)]
		start := time.Now()
		for i := 0; i < n; i++ {
			h.ServeHTTP(w, r)
		}
		fmt.Println(time.Since(start).Nanoseconds())
	}
}
