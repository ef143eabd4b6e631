package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/origin"
)

// buildClient builds testdata/export/client, a dd-trace-go v2 program, once
// per test run.
func buildClient(t *testing.T) string {
	t.Helper()
	return e2eservices.BuildPackage(t, "./testdata/export/client")
}

type clientSpan struct {
	Scenario string `json:"scenario"`
	Name     string `json:"name"`
	TraceHi  uint64 `json:"trace_hi"`
	TraceLo  uint64 `json:"trace_lo"`
	SpanID   uint64 `json:"span_id"`
	ParentID uint64 `json:"parent_id"`
	Ready    bool   `json:"ready"`
	Done     bool   `json:"done"`
}

// TestRealClient runs a real dd-trace-go v2 program against the proxy, with
// its default protocol (v1.0, since the upstream lists it) and with
// DD_TRACE_AGENT_PROTOCOL_VERSION=0.4. The upstream is a LocalAgent behind a
// recorder; a second recorder in front of the proxy keeps what the tracer
// sent, so both sides can be decoded with the Agent's decoders and compared.
func TestRealClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a traced program")
	}
	bin := buildClient(t)
	for _, tc := range []struct {
		name, protocol, path string
		unix                 bool
	}{
		{"default", "", "/v1.0/traces", false},
		{"v0.4", "0.4", "/v0.4/traces", false},
		{"unix-socket", "", "/v1.0/traces", true},
	} {
		t.Run(tc.name, func(t *testing.T) { runClient(t, bin, tc.protocol, tc.path, tc.unix) })
	}
}

func runClient(t *testing.T, bin, protocol, wantPath string, unix bool) {
	agent := NewLocalAgent(LocalAgentOptions{RemoteConfig: true}, nil)
	upRec := &recorder{next: agent}
	up := httptest.NewServer(upRec)
	defer up.Close()

	px, err := NewProxy(Config{Upstream: up.URL}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	inRec := &recorder{next: px.Handler()}
	front := httptest.NewUnstartedServer(inRec)
	agentURL := ""
	if unix {
		sock := filepath.Join(t.TempDir(), "apm.socket")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		front.Listener.Close()
		front.Listener = ln
		agentURL = "unix://" + sock
	}
	front.Start()
	defer front.Close()
	if agentURL == "" {
		agentURL = front.URL
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DD_TRACE_AGENT_URL=" + agentURL,
		"DD_REMOTE_CONFIG_POLL_INTERVAL_SECONDS=0.2",
		"DD_TELEMETRY_HEARTBEAT_INTERVAL=1",
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED=true",
		"DD_TRACE_STARTUP_LOGS=false",
	}
	if protocol != "" {
		cmd.Env = append(cmd.Env, "DD_TRACE_AGENT_PROTOCOL_VERSION="+protocol)
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("client stderr:\n%s", stderr.String())
		}
	}()

	lines := bufio.NewScanner(stdout)
	spans := map[string]map[string]clientSpan{} // scenario -> name -> span
	for lines.Scan() {
		var cs clientSpan
		if err := json.Unmarshal(lines.Bytes(), &cs); err != nil {
			t.Fatalf("client line %q: %v", lines.Text(), err)
		}
		if cs.Ready {
			break
		}
		if spans[cs.Scenario] == nil {
			spans[cs.Scenario] = map[string]clientSpan{}
		}
		spans[cs.Scenario][cs.Name] = cs
	}
	tid := func(s clientSpan) origin.TraceID { return origin.TraceID{High: s.TraceHi, Low: s.TraceLo} }
	key := func(s clientSpan) spanKey { return spanKey{s.TraceLo, s.SpanID} }
	want := map[spanKey]map[string]string{}
	put := func(r origin.Record) { px.Put(r) }
	tags := func(r origin.Record) map[string]string { return r.Tags() }

	// direct: the record names the entry span itself.
	d := spans["direct"]["http.request"]
	r := testRecord(tid(d), d.SpanID, 1, "Direct")
	put(r)
	want[key(d)] = tags(r)
	// child: the record names a child of the entry span; both get the tags.
	c := spans["child"]["handler"]
	r = testRecord(tid(c), c.SpanID, 1, "Child")
	put(r)
	want[key(c)] = tags(r)
	want[key(spans["child"]["http.request"])] = tags(r)
	// other-service: the entry span of shop-db is postgres.query, not the
	// trace's root.
	o := spans["other-service"]["postgres.fetch"]
	r = testRecord(tid(o), o.SpanID, 1, "Fetch")
	put(r)
	want[key(o)] = tags(r)
	want[key(spans["other-service"]["postgres.query"])] = tags(r)
	// preset: the application set _dd.code_origin.type itself: left alone.
	p := spans["preset"]["http.request"]
	put(testRecord(tid(p), p.SpanID, 1, "Preset"))
	// seq: middleware ran two handlers under the root (highest Seq wins,
	// whatever the arrival order), and a child has a record of lower Seq.
	s := spans["seq"]["http.request"]
	inner := testRecord(tid(s), s.SpanID, 9, "Inner")
	put(inner)
	put(testRecord(tid(s), s.SpanID, 5, "Outer"))
	sh := spans["seq"]["handler"]
	hr := testRecord(tid(sh), sh.SpanID, 7, "Handler")
	put(hr)
	want[key(s)] = tags(inner)
	want[key(sh)] = tags(hr)
	// none: no record, nothing changes. Also a record for a span that never
	// comes, which must not disturb anything.
	put(testRecord(origin.TraceID{High: 1, Low: 2}, 3, 1, "Never"))

	// Let remote configuration and telemetry traffic flow before the flush.
	deadline := time.Now().Add(20 * time.Second)
	for upRec.count("/v0.7/config") == 0 || upRec.count("/telemetry/") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no remote config or telemetry request reached the upstream: %v", agent.Counts())
		}
		time.Sleep(50 * time.Millisecond)
	}
	io.WriteString(stdin, "go\n")
	for lines.Scan() {
		var cs clientSpan
		if json.Unmarshal(lines.Bytes(), &cs) == nil && cs.Done {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}

	in, out := inRec.all(), upRec.all()
	var inTraces, outTraces []captured
	for _, c := range in {
		if isTracePath(c.Path) {
			inTraces = append(inTraces, c)
		}
	}
	for _, c := range out {
		if isTracePath(c.Path) {
			outTraces = append(outTraces, c)
		}
	}
	if len(inTraces) == 0 || len(inTraces) != len(outTraces) {
		t.Fatalf("%d trace payloads sent, %d forwarded", len(inTraces), len(outTraces))
	}
	if os.Getenv("OA_WRITE_FUZZ_SEEDS") == "1" {
		for i, c := range inTraces {
			v := map[string]int{"/v0.4/traces": 0, "/v0.5/traces": 1, "/v1.0/traces": 2}[c.Path]
			writeSeed(t, filepath.Join("testdata", "fuzz", "FuzzProxyTraces", fmt.Sprintf("dd-trace-go-%s-%d", strings.Trim(c.Path, "/")[:4], i)), v, c.Body)
		}
	}
	// The tracer sends payloads concurrently, so the upstream may see them
	// in another order: pair them by the tracer's Idempotency-Key.
	byKey := map[string]captured{}
	for _, c := range outTraces {
		byKey[c.Header.Get("Idempotency-Key")] = c
	}
	tagged := 0
	for i := range inTraces {
		a, b := inTraces[i], outTraces[i]
		if k := a.Header.Get("Idempotency-Key"); k != "" {
			var ok bool
			if b, ok = byKey[k]; !ok {
				t.Fatalf("payload %s never reached the upstream", k)
			}
		} else if len(inTraces) > 1 {
			t.Fatal("tracer sent no Idempotency-Key: cannot pair concurrent payloads")
		}
		if a.Path != wantPath || b.Path != wantPath {
			t.Errorf("payload %d went to %s -> %s, want %s", i, a.Path, b.Path, wantPath)
		}
		checkHeaders(t, a, b, true)
		tagged += compareForwarded(t, a.Path, a.Body, b.Body, want)
		// The tracer got the Agent's answer, unchanged.
		if a.Status != b.Status || string(a.RespBody) != string(b.RespBody) || a.RespHeader.Get("Content-Type") != b.RespHeader.Get("Content-Type") {
			t.Errorf("payload %d: tracer got %d %q, agent answered %d %q", i, a.Status, a.RespBody, b.Status, b.RespBody)
		}
	}
	if tagged != len(want) {
		t.Errorf("%d spans tagged, want %d", tagged, len(want))
	}
	if got := px.Stats().SpansTagged; got != uint64(len(want)) {
		t.Errorf("Stats().SpansTagged = %d, want %d", got, len(want))
	}

	// Every other request reached the upstream intact, in order per path.
	byPath := map[string][]captured{}
	for _, c := range out {
		if !isTracePath(c.Path) {
			byPath[c.Path] = append(byPath[c.Path], c)
		}
	}
	others := 0
	for _, a := range in {
		if isTracePath(a.Path) {
			continue
		}
		q := byPath[a.Path]
		if len(q) == 0 {
			t.Errorf("%s %s never reached the upstream", a.Method, a.Path)
			continue
		}
		b := q[0]
		byPath[a.Path] = q[1:]
		others++
		if a.Method != b.Method || string(a.Body) != string(b.Body) {
			t.Errorf("%s %s changed on the way: %q -> %s %q", a.Method, a.Path, a.Body, b.Method, b.Body)
		}
		checkHeaders(t, a, b, false)
		if a.Status != b.Status || string(a.RespBody) != string(b.RespBody) {
			t.Errorf("%s: tracer got %d %q, upstream answered %d %q", a.Path, a.Status, a.RespBody, b.Status, b.RespBody)
		}
	}
	if others == 0 {
		t.Error("no non-trace request went through the proxy")
	}
	t.Logf("%d trace payloads, %d spans tagged, %d other requests (%v)", len(inTraces), tagged, others, agent.Counts())
}

// checkHeaders verifies that every request header the tracer sent reached
// the upstream unchanged (Content-Length differs for an enriched payload).
func checkHeaders(t *testing.T, in, out captured, traces bool) {
	t.Helper()
	for k, v := range in.Header {
		if traces && k == "Content-Length" {
			continue
		}
		if got := out.Header.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
			t.Errorf("%s: header %s = %q upstream, tracer sent %q", in.Path, k, got, v)
		}
	}
	for _, k := range []string{"Datadog-Meta-Lang", "Datadog-Meta-Tracer-Version"} {
		if traces && in.Header.Get(k) == "" {
			t.Errorf("%s: tracer sent no %s", in.Path, k)
		}
	}
}
