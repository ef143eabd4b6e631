package gotypes_test

import (
	"fmt"
	"log"
	"os"

	"github.com/originagent/originagent/internal/gotypes"
)

// The probe engine's start-up for one target binary: the itabs that mark
// context.Context nodes whose parent is field 0, and the offsets it reads.
func Example() {
	exe, err := os.Executable() // a target's /proc/PID/exe in the daemon
	if err != nil {
		log.Fatal(err)
	}
	b, err := gotypes.Open(exe)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	itabs, err := b.Itabs()
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range itabs {
		if it.Interface != "context.Context" {
			continue
		}
		t, err := b.RuntimeType(it.TypeAddr)
		if err != nil {
			log.Fatal(err)
		}
		if t.Elem != nil {
			t = t.Elem // *context.valueCtx -> context.valueCtx
		}
		// A node that embeds its parent context as field 0 links the
		// chain: the BPF program follows the interface's data word there.
		if len(t.Fields) > 0 && t.Fields[0].Embedded && t.Fields[0].Type.Name == "context.Context" {
			fmt.Printf("itab %#x: %s, parent at +%d\n", it.Addr, it.Type, t.Fields[0].Offset)
		}
	}

	// One offset per dereference: read the pointer at span+off[0], then
	// the 16-byte trace ID at that pointer+off[1].
	offs, err := b.FieldOffsets("github.com/DataDog/dd-trace-go/v2/ddtrace/tracer.Span", "context.traceID.value")
	fmt.Println(offs, err)
}
