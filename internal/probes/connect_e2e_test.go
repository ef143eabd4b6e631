package probes

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
)

// connectKinds are the RPCs of testdata/services/connect-v2 and the method
// each must name as its origin.
var connectKinds = []struct{ kind, function string }{
	{"unary", "main.(*orderServer).GetOrder"},
	{"server-stream", "main.(*orderServer).ListOrders"},
	{"client-stream", "main.(*orderServer).UploadOrders"},
	{"bidi", "main.(*orderServer).Chat"},
}

// TestConnectEndToEnd attaches real uprobes to a real connectrpc.com/connect
// server traced by dd-trace-go v2's net/http integration (dd-trace-go has
// no connect integration) and checks that every RPC of every kind is
// named, under the span the tracer reports, by the implementation method
// the Go runtime reports (the user's net/http middleware around connect's
// handler hits too, earlier); and that neither the method served by the
// embedded Unimplemented...Handler nor a user interface of the same shape
// is probed.
func TestConnectEndToEnd(t *testing.T) {
	testutil.RequireRoot(t)
	bin := e2eservices.Build(t, e2eservices.ConnectV2, "-buildmode=pie", "-trimpath", "-ldflags=-s -w")
	agent := e2eservices.NewAgent(t)
	svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=e2e-connect",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false")
	rec := newRecorder()
	e := newEngine(t, rec)
	e.Start(processOf(svc.PID), discover.Decision{Selected: true, Reason: "test"})
	ps := e.Processes()
	if len(ps) != 1 {
		t.Fatalf("attached processes = %d, want 1 (see log above)", len(ps))
	}
	var probed []string
	for _, p := range ps[0].Probes {
		if p.Framework == "connect" {
			probed = append(probed, p.Symbol)
		}
		if strings.Contains(p.Symbol, "CancelOrder") || strings.Contains(p.Symbol, "Lookup") || strings.Contains(p.Symbol, "orderpbconnect") {
			t.Errorf("probed %s: not a service method of the user's", p.Symbol)
		}
	}
	if len(probed) != len(connectKinds) {
		t.Errorf("connect probes %v, want one per implemented method (%d)", probed, len(connectKinds))
	}
	checkConnectRecipes(t, e)
	for _, k := range connectKinds {
		for i := 0; i < 3; i++ {
			ts, err := callGRPC(context.Background(), svc, k.kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) == 0 {
				t.Fatalf("%s: no truth", k.kind)
			}
			tr := ts[0]
			span, err := strconv.ParseUint(tr.SpanID, 10, 64)
			if err != nil || span == 0 {
				t.Fatalf("%s: service reported no span: %+v", k.kind, tr)
			}
			if tr.Function != k.function {
				t.Errorf("%s: service reports %s, want %s", k.kind, tr.Function, k.function)
			}
			r, _, ok := rec.origin(span, 5*time.Second)
			if !ok {
				st, _ := e.BPFStats()
				t.Fatalf("%s: no record for span %d (trace %s); bpf stats %+v", k.kind, span, tr.TraceID, st)
			}
			if got := r.TraceID.String(); got != tr.TraceID {
				t.Errorf("%s: trace id %s, want %s", k.kind, got, tr.TraceID)
			}
			f := r.Frames[0]
			if f.Function != tr.Function || f.File != tr.File || f.StartLine != tr.Line {
				t.Errorf("%s: origin %s %s:%d, want %s %s:%d", k.kind, f.Function, f.File, f.StartLine, tr.Function, tr.File, tr.Line)
			}
			// One hit in the method, besides the middleware's.
			n := 0
			for _, x := range rec.all(span) {
				if x.Frames[0].Function == tr.Function {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d records name the method, want one probe hit per RPC", k.kind, n)
			}
		}
	}
	// The unimplemented method has a span but no user code: no record
	// names it or generated code.
	if _, err := callGRPC(context.Background(), svc, "unimplemented"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, rs := range rec.recs {
		for _, r := range rs {
			if fn := r.Frames[0].Function; strings.Contains(fn, "CancelOrder") || strings.Contains(fn, "Lookup") || strings.HasSuffix(r.Frames[0].File, ".connect.go") {
				t.Errorf("record names code that is not a service method of the user's: %+v", r.Frames[0])
			}
		}
	}
}

// checkConnectRecipes checks that every connect method takes its context
// from the interface argument after the receiver, in two registers.
func checkConnectRecipes(t *testing.T, e *Engine) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, bs := range e.bins {
		for _, tg := range bs.an.targets {
			if tg.framework != "connect" {
				continue
			}
			if c := tg.recipe.Ctx; c.N != 0 || c.Reg != uint8(regArg1) || tg.recipe.PcKind != uint8(bpf.OriginPcKindPC_SELF) {
				t.Errorf("%s: recipe %+v, want the method itself and the context in registers %d,%d", tg.name, tg.recipe, regArg1, regArg1+1)
			}
		}
	}
}
