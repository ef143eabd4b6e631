// Command ddtrace is a corpus program for internal/gotypes: it starts a real
// dd-trace-go v2 tracer (its agent address is the loopback address given as
// the first argument, where nothing needs to listen), puts a span in a
// context with tracer.ContextWithSpan and prints (as JSON) the descriptor
// and itab addresses and field offsets of the tracer's types.
package main

import (
	"context"
	"fmt"
	"os"
	"reflect"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"

	"github.com/originagent/originagent/testdata/gotypes/internal/truth"
)

type quiet struct{}

func (quiet) Log(string) {}

func run(agent string) error {
	r, err := truth.New()
	if err != nil {
		return err
	}
	if err := tracer.Start(
		tracer.WithAgentAddr(agent),
		tracer.WithService("gotypes-corpus"),
		tracer.WithLogStartup(false),
		tracer.WithLogger(quiet{}),
	); err != nil {
		return fmt.Errorf("start tracer: %w", err)
	}
	defer tracer.Stop()
	span := tracer.StartSpan("gotypes.corpus")
	defer span.Finish()
	ctx := tracer.ContextWithSpan(context.Background(), span)
	truth.AddItab(r, ctx)
	// A value context above the span node, as user code would add.
	truth.AddItab(r, context.WithValue(ctx, struct{}{}, 1))
	if got, ok := tracer.SpanFromContext(ctx); !ok || got != span {
		return fmt.Errorf("SpanFromContext: got %p, want %p", got, span)
	}
	r.AddType(reflect.TypeOf(span), 3)
	r.AddType(reflect.TypeOf(span.Context()), 3)
	return r.Print()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ddtrace AGENT_HOST:PORT")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
