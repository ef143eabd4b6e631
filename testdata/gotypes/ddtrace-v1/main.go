// Command ddtrace-v1 is a corpus program for internal/gotypes built against
// dd-trace-go v1 (gopkg.in/DataDog/dd-trace-go.v1 v1.73.1, its own module
// because its dependencies conflict with the root module's). It starts a
// real tracer (agent address: the loopback address given as the first
// argument, where nothing needs to listen), puts a span in a context and
// prints (as JSON) the descriptor and itab addresses and field offsets of
// the tracer's types.
package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"time"

	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer"
)

type quiet struct{}

func (quiet) Log(string) {}

func run(agent string) error {
	r, err := New()
	if err != nil {
		return err
	}
	tracer.Start(
		tracer.WithAgentAddr(agent),
		tracer.WithService("gotypes-corpus"),
		tracer.WithLogStartup(false),
		tracer.WithLogger(quiet{}),
	)
	// v1's Stop retries the flush to the (absent) agent for a long time;
	// give it a moment, the truth does not depend on it.
	defer func() {
		done := make(chan struct{})
		go func() { tracer.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}()
	span := tracer.StartSpan("gotypes.corpus")
	defer span.Finish()
	// v1 stores the span with context.WithValue: a *context.valueCtx node
	// whose val is the *tracer.span.
	ctx := tracer.ContextWithSpan(context.Background(), span)
	AddItab(r, ctx)
	if got, ok := tracer.SpanFromContext(ctx); !ok || got != span {
		return fmt.Errorf("SpanFromContext: got %v, want %v", got, span)
	}
	r.AddType(reflect.TypeOf(span), 3)
	r.AddType(reflect.TypeOf(span.Context()), 3)
	return r.Print()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ddtrace-v1 AGENT_HOST:PORT")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
