package export

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
	"github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace/idx"

	"github.com/originagent/originagent/internal/origin"
)

// captured is one request seen by a recorder, with the answer it got.
type captured struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	Status       int
	RespHeader   http.Header
	RespBody     []byte
}

// recorder is test middleware that keeps a copy of every request and answer
// passing through it.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []captured
}

type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}
func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	cw := &captureWriter{ResponseWriter: w}
	hdr := r.Header.Clone()
	rc.next.ServeHTTP(cw, r)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, captured{Method: r.Method, Path: r.URL.Path, Header: hdr, Body: body,
		Status: cw.status, RespHeader: cw.Header().Clone(), RespBody: cw.body.Bytes()})
	rc.mu.Unlock()
}

func (rc *recorder) all() []captured {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]captured(nil), rc.reqs...)
}

func (rc *recorder) count(prefix string) int {
	n := 0
	for _, c := range rc.all() {
		if strings.HasPrefix(c.Path, prefix) {
			n++
		}
	}
	return n
}

func isTracePath(p string) bool {
	return p == "/v0.4/traces" || p == "/v0.5/traces" || p == "/v1.0/traces"
}

// spanKey identifies a span across payloads.
type spanKey struct {
	traceLow, spanID uint64
}

// decodedSpans decodes a trace payload with the Agent's own types into one
// comparable value per span: *pb.Span for v0.4/v0.5, a canonical map for
// v1.0 (whose string references differ between two encodings of the same
// payload), plus the payload-level fields of v1.0.
func decodedSpans(t *testing.T, path string, body []byte) (map[spanKey]map[string]any, map[string]any) {
	t.Helper()
	out := map[spanKey]map[string]any{}
	switch path {
	case "/v0.4/traces", "/v0.5/traces":
		var ts pb.Traces
		var err error
		if path == "/v0.4/traces" {
			var rest []byte
			rest, err = ts.UnmarshalMsg(body)
			if err == nil && len(rest) != 0 {
				err = fmt.Errorf("%d trailing bytes", len(rest))
			}
		} else {
			err = ts.UnmarshalMsgDictionary(body)
		}
		if err != nil {
			t.Fatalf("decode %s with the Agent's decoder: %v", path, err)
		}
		for _, tr := range ts {
			for _, s := range tr {
				meta := maps.Clone(s.Meta)
				if meta == nil {
					meta = map[string]string{}
				}
				s.Meta = nil
				out[spanKey{s.TraceID, s.SpanID}] = map[string]any{"span": s.String(), "meta": meta}
			}
		}
		return out, nil
	case "/v1.0/traces":
		tp := &idx.InternalTracerPayload{}
		if _, err := tp.UnmarshalMsg(body); err != nil {
			t.Fatalf("decode v1.0 with the Agent's decoder: %v", err)
		}
		str := func(m map[uint32]*idx.AnyValue) map[string]string {
			r := map[string]string{}
			for k, v := range m {
				r[tp.Strings.Get(k)] = fmt.Sprintf("%T:%s", v.Value, v.AsString(tp.Strings))
			}
			return r
		}
		payload := map[string]any{
			"container": tp.ContainerID(), "lang": tp.LanguageName(), "langv": tp.LanguageVersion(),
			"tracerv": tp.TracerVersion(), "runtime": tp.RuntimeID(), "env": tp.Env(), "host": tp.Hostname(),
			"appv": tp.AppVersion(), "attrs": str(tp.Attributes), "chunks": len(tp.Chunks),
		}
		for ci, c := range tp.Chunks {
			payload[fmt.Sprintf("chunk%d", ci)] = map[string]any{
				"priority": c.Priority, "origin": c.Origin(), "attrs": str(c.Attributes), "dropped": c.DroppedTrace,
				"tid": hex.EncodeToString(c.TraceID), "mech": c.SamplingMechanism(), "spans": len(c.Spans),
			}
			for _, s := range c.Spans {
				var links, events []string
				for _, l := range s.Links() {
					links = append(links, fmt.Sprintf("%x/%d/%d/%s/%v", l.TraceID(), l.SpanID(), l.Flags(), l.Tracestate(), str(l.Attributes())))
				}
				for _, e := range s.Events() {
					events = append(events, fmt.Sprintf("%s/%d/%v", e.Name(), e.Time(), str(e.Attributes())))
				}
				out[spanKey{c.LegacyTraceID(), s.SpanID()}] = map[string]any{
					"span": fmt.Sprintf("svc=%s name=%s res=%s parent=%d start=%d dur=%d err=%v type=%s env=%s ver=%s comp=%s kind=%v links=%v events=%v",
						s.Service(), s.Name(), s.Resource(), s.ParentID(), s.Start(), s.Duration(), s.Error(), s.Type(),
						s.Env(), s.Version(), s.Component(), s.Kind(), links, events),
					"meta": str(s.Attributes()),
				}
			}
		}
		return out, payload
	}
	t.Fatalf("unknown trace path %s", path)
	return nil, nil
}

// wantTagValues renders the expected tags in the form decodedSpans uses.
func wantTagValues(path string, tags map[string]string) map[string]string {
	if path != "/v1.0/traces" {
		return tags
	}
	out := map[string]string{}
	for k, v := range tags {
		out[k] = "*idx.AnyValue_StringValueRef:" + v
	}
	return out
}

// compareForwarded checks that the forwarded payload equals the original
// field by field, except that the spans in want carry exactly these tags in
// addition. It returns the number of tagged spans seen.
func compareForwarded(t *testing.T, path string, orig, fwd []byte, want map[spanKey]map[string]string) int {
	t.Helper()
	os, op := decodedSpans(t, path, orig)
	fs, fp := decodedSpans(t, path, fwd)
	if !reflect.DeepEqual(op, fp) {
		t.Errorf("%s payload fields changed:\n orig %v\n fwd  %v", path, op, fp)
	}
	if len(os) != len(fs) {
		t.Errorf("%s: %d spans sent, %d forwarded", path, len(os), len(fs))
	}
	tagged := 0
	keys := make([]spanKey, 0, len(os))
	for k := range os {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].spanID < keys[j].spanID })
	for _, k := range keys {
		o, f := os[k], fs[k]
		if f == nil {
			t.Errorf("span %v lost", k)
			continue
		}
		if o["span"] != f["span"] {
			t.Errorf("span %v fields changed:\n orig %v\n fwd  %v", k, o["span"], f["span"])
		}
		wantMeta := maps.Clone(o["meta"].(map[string]string))
		if tags, ok := want[k]; ok {
			maps.Copy(wantMeta, wantTagValues(path, tags))
			tagged++
		}
		if got := f["meta"].(map[string]string); !reflect.DeepEqual(got, wantMeta) {
			t.Errorf("span %v meta:\n got  %v\n want %v", k, got, wantMeta)
		}
	}
	return tagged
}

// testRecord builds a record with one frame whose method names it.
func testRecord(tid origin.TraceID, span, seq uint64, method string) origin.Record {
	return origin.Record{
		PID: 1234, Service: "shop", TraceID: tid, SpanID: span, Seq: seq,
		Frames: []origin.Frame{{
			Function: "github.com/acme/shop/api.(*Users)." + method, File: "/src/shop/api/users.go",
			Line: 57, StartLine: 42, Type: "github.com/acme/shop/api.Users", Method: method,
		}},
	}
}
