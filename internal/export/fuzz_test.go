package export

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
)

// memAgent stands in for the network hop to the Agent in the fuzz target,
// which must run thousands of payloads per second in one process: it keeps
// the body the proxy forwarded and answers like the Agent.
type memAgent struct{ body []byte }

func (m *memAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	m.body = []byte{}
	if r.Body != nil { // nil for an empty body
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		m.body = b
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(`{"rate_by_service":{}}`))), Request: r,
	}, nil
}

var fuzzPaths = [...]string{"/v0.4/traces", "/v0.5/traces", "/v1.0/traces"}

// fuzzTraces are the traces the fuzz target holds records for; the seed
// corpus is built from them so that mutations keep hitting matches.
func fuzzTraces() pb.Traces { return genTraces(rand.New(rand.NewPCG(42, 42)), 3, 6) }

// FuzzProxyTraces sends arbitrary bodies to the three trace endpoints of a
// proxy whose store holds records for fuzzTraces. Whatever the body, the
// proxy must not panic (not even behind its own recover), must answer 413
// exactly for bodies over MaxBody, and must forward either the original
// bytes or, when it enriched them, a payload the Agent decodes with the same
// spans whenever it decoded the original.
func FuzzProxyTraces(f *testing.F) {
	ts := fuzzTraces()
	for _, seed := range [][]byte{
		encodeV04(ts, metaMap), encodeV04(ts, metaAbsent), encodeV05(ts), encodeV1(ts),
	} {
		for v := range uint8(3) {
			f.Add(v, seed)
		}
	}
	f.Add(uint8(0), []byte{0x91, 0x91, 0x80})
	const maxBody = 64 << 10
	up := &memAgent{}
	px, err := NewProxy(Config{Upstream: "http://agent.invalid", MaxBody: maxBody}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	px.rp.Transport = up
	for ti, tr := range ts {
		for si := range tr {
			if si%2 == 0 || ti == 2 {
				px.Put(testRecord(traceIDOf(tr), tr[si].SpanID, uint64(si), "Fuzz"))
			}
		}
	}
	h := px.Handler()
	f.Fuzz(func(t *testing.T, v uint8, body []byte) {
		path := fuzzPaths[int(v)%len(fuzzPaths)]
		up.body = nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body)))
		if n := px.stats.enrichPanics.Load(); n != 0 {
			t.Fatalf("enrichment panicked (%d)", n)
		}
		if len(body) > maxBody {
			if rec.Code != http.StatusRequestEntityTooLarge || up.body != nil {
				t.Fatalf("oversized body: %d, forwarded %v", rec.Code, up.body != nil)
			}
			return
		}
		if rec.Code != http.StatusOK || up.body == nil {
			t.Fatalf("status %d, forwarded %v", rec.Code, up.body != nil)
		}
		if bytes.Equal(up.body, body) {
			return
		}
		in, inErr := DecodeTraces(path, body)
		out, outErr := DecodeTraces(path, up.body)
		if inErr != nil {
			return // the Agent would reject both; the proxy enriched what it could follow
		}
		if outErr != nil {
			t.Fatalf("enriched payload no longer decodes: %v", outErr)
		}
		if len(in) != len(out) {
			t.Fatalf("%d spans became %d", len(in), len(out))
		}
		for i := range in {
			a, b := in[i], out[i]
			if a.SpanID != b.SpanID || a.ParentID != b.ParentID || a.Service != b.Service || a.Name != b.Name ||
				a.Resource != b.Resource || a.Start != b.Start || a.Duration != b.Duration || a.TraceID.Low != b.TraceID.Low {
				t.Fatalf("span %d changed:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

func writeSeed(t *testing.T, path string, v int, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("go test fuzz v1\n")
	fmt.Fprintf(&buf, "byte(%q)\n[]byte(%s)\n", byte(v), strconv.Quote(string(b)))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
