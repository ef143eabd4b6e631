package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/originagent/originagent/bpf"
	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
)

// grpcTruth is what the gRPC service's implementation method reported.
type grpcTruth struct {
	TraceID  string `json:"trace_id"`
	SpanID   string `json:"span_id"`
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

// grpcKinds are the RPCs of testdata/services/grpc-v2 and the method each
// must name as its origin.
var grpcKinds = []struct{ kind, function string }{
	{"unary", "main.(*orderServer).GetOrder"},
	{"server-stream", "main.(*orderServer).ListOrders"},
	{"client-stream", "main.(*orderServer).UploadOrders"},
	{"bidi", "main.(*orderServer).Chat"},
	{"echo", "main.echoServer.Echo"}, // hand-written ServiceDesc, value receiver
}

// callGRPC asks the service's driver for one RPC of kind and returns the
// truths the method reported.
func callGRPC(ctx context.Context, svc *e2eservices.Service, kind string) ([]grpcTruth, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+svc.Addr+"/call/"+kind, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", kind, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", kind, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("call %s: %s: %s", kind, resp.Status, body)
	}
	var ts []grpcTruth
	if err := json.Unmarshal(body, &ts); err != nil {
		return nil, fmt.Errorf("call %s: decode %q: %w", kind, body, err)
	}
	return ts, nil
}

// TestGRPCEndToEnd attaches real uprobes to a real gRPC server traced by
// dd-trace-go v2 (through its interceptors, then through its stats
// handler) and checks that every RPC of every kind gets exactly one record,
// under the span the tracer reports, naming the implementation method the
// Go runtime reports; and that the method served by the embedded
// Unimplemented...Server is never probed.
func TestGRPCEndToEnd(t *testing.T) {
	testutil.RequireRoot(t)
	// The two services build in parallel (each once, stripped PIE
	// trimpath as in production, for both tracing modes).
	for _, svc := range []e2eservices.Name{e2eservices.GRPCV2, e2eservices.GRPCV1} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			bin := e2eservices.Build(t, svc, "-buildmode=pie", "-trimpath", "-ldflags=-s -w")
			testGRPC(t, bin)
		})
	}
}

func testGRPC(t *testing.T, bin string) {
	for _, mode := range []string{"interceptors", "stats-handler"} {
		t.Run(mode, func(t *testing.T) {
			agent := e2eservices.NewAgent(t)
			svc := e2eservices.Start(t, bin, "DD_TRACE_AGENT_URL="+agent.URL, "DD_SERVICE=e2e-grpc-"+mode,
				"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false",
				"GRPCSVC_STATS="+strconv.FormatBool(mode == "stats-handler"))
			rec := newRecorder()
			e := newEngine(t, rec)
			e.Start(processOf(svc.PID), discover.Decision{Selected: true, Reason: "test"})
			ps := e.Processes()
			if len(ps) != 1 {
				t.Fatalf("attached processes = %d, want 1 (see log above)", len(ps))
			}
			var probed []string
			for _, p := range ps[0].Probes {
				if p.Framework == "grpc" {
					probed = append(probed, p.Symbol)
				}
				if strings.Contains(p.Symbol, "CancelOrder") || strings.Contains(p.Symbol, "_Handler") {
					t.Errorf("probed %s: not the user's code", p.Symbol)
				}
			}
			if len(probed) != len(grpcKinds) {
				t.Errorf("grpc probes %v, want one per implemented method (%d)", probed, len(grpcKinds))
			}
			checkGRPCRecipes(t, e)
			for _, k := range grpcKinds {
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
					r, n, ok := rec.origin(span, 5*time.Second)
					if !ok {
						st, _ := e.BPFStats()
						t.Fatalf("%s: no record for span %d (trace %s); bpf stats %+v", k.kind, span, tr.TraceID, st)
					}
					if n != 1 {
						t.Errorf("%s: %d records for the span, want one probe hit per RPC", k.kind, n)
					}
					if got := r.TraceID.String(); got != tr.TraceID {
						t.Errorf("%s: trace id %s, want %s", k.kind, got, tr.TraceID)
					}
					f := r.Frames[0]
					if f.Function != tr.Function || f.File != tr.File || f.StartLine != tr.Line {
						t.Errorf("%s: origin %s %s:%d, want %s %s:%d", k.kind, f.Function, f.File, f.StartLine, tr.Function, tr.File, tr.Line)
					}
				}
			}
			// The unimplemented method has a span but no user code: no
			// probe fires for it (checked above) and no record names it.
			before, _ := e.BPFStats()
			if _, err := callGRPC(context.Background(), svc, "unimplemented"); err != nil {
				t.Fatal(err)
			}
			after, _ := e.BPFStats()
			if d := after.Emitted - before.Emitted; d != 0 {
				t.Errorf("unimplemented RPC emitted %d events, want 0", d)
			}
			rec.mu.Lock()
			for _, rs := range rec.recs {
				for _, r := range rs {
					if strings.Contains(r.Frames[0].Function, "CancelOrder") || strings.Contains(r.Frames[0].File, ".pb.go") {
						t.Errorf("record names generated code: %+v", r.Frames[0])
					}
				}
			}
			rec.mu.Unlock()
		})
	}
}

// checkGRPCRecipes checks where the recipes take the context from: the
// interface argument after the receiver (and after the request for server
// streaming), in two registers; and that the streams lead on to a context.
func checkGRPCRecipes(t *testing.T, e *Engine) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, bs := range e.bins {
		for _, tg := range bs.an.targets {
			if tg.framework != "grpc" {
				continue
			}
			want := uint8(regArg1)
			if strings.HasSuffix(tg.name, ".ListOrders") {
				want = uint8(regArg2)
			}
			if c := tg.recipe.Ctx; c.N != 0 || c.Reg != want || tg.recipe.PcKind != uint8(bpf.OriginPcKindPC_SELF) {
				t.Errorf("%s: recipe %+v, want the method itself and the interface in registers %d,%d", tg.name, tg.recipe, want, want+1)
			}
		}
		links := 0
		for _, it := range bs.an.itabs {
			if n, ok := bs.an.nodes[it.addr]; ok && n.Kind == nodeLink && strings.Contains(it.typ, "dd-trace-go") {
				links++
			}
		}
		if links == 0 {
			t.Errorf("no link node for dd-trace-go's stream wrapper")
		}
	}
}
