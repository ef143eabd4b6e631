package export

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingAgent is an upstream that reads each payload whole and counts the
// payloads it received whole and the ones whose body ended early.
type countingAgent struct {
	whole, broken atomic.Int64
	bytes         atomic.Int64
}

func (a *countingAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		a.broken.Add(1)
		http.Error(w, "unexpected-eof", http.StatusBadRequest)
		return
	}
	a.whole.Add(1)
	a.bytes.Add(n)
	io.WriteString(w, `{"rate_by_service":{}}`)
}

// rawRequest opens a connection to addr and sends a trace payload's header
// announcing length bytes (chunked when length < 0) followed by body; the
// caller stalls or closes it.
func rawRequest(t *testing.T, addr string, length int, body []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hdr := "POST /v0.4/traces HTTP/1.1\r\nHost: agent\r\nContent-Type: application/msgpack\r\n"
	if length >= 0 {
		hdr += "Content-Length: " + strconv.Itoa(length) + "\r\n\r\n"
	} else {
		hdr += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(body))
	}
	if _, err := c.Write(append([]byte(hdr), body...)); err != nil {
		t.Fatal(err)
	}
	return c
}

// readStatus reads the status code of the answer on c (0 when the
// connection ended without one).
func readStatus(c net.Conn, timeout time.Duration) int {
	c.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStalledUploads opens more stalled uploads (a header announcing 100000
// bytes, then 100 bytes and nothing) than the proxy has slots, then sends
// normal payloads: each must be answered quickly, 200 or a fast 429, and
// the stalled uploads must be cut off with 408 after the body timeout, so
// that normal payloads get through again. Both the streaming path (no
// record waiting) and the buffering path (a record waiting) are covered.
func TestStalledUploads(t *testing.T) {
	ts := genTraces(rand.New(rand.NewPCG(21, 22)), 5, 5)
	body := encodeV04(ts, metaMap)
	for _, buffered := range []bool{false, true} {
		t.Run(map[bool]string{false: "streaming", true: "buffering"}[buffered], func(t *testing.T) {
			up := &countingAgent{}
			agent := httptest.NewServer(up)
			defer agent.Close()
			const slots, stalled = 4, 12
			bodyTimeout := 300 * time.Millisecond
			px, srv := newTestProxy(t, Config{Upstream: agent.URL, MaxInFlight: slots,
				BodyTimeout: bodyTimeout, SlotTimeout: 50 * time.Millisecond})
			if buffered {
				px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
			}
			addr := strings.TrimPrefix(srv.URL, "http://")
			var conns []net.Conn
			for range stalled {
				c := rawRequest(t, addr, 100000, bytes.Repeat([]byte{0x90}, 100))
				defer c.Close()
				conns = append(conns, c)
			}
			client := &http.Client{Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			start := time.Now()
			ok, throttled := 0, 0
			for time.Since(start) < 4*bodyTimeout {
				t0 := time.Now()
				status, _, err := postTraces(t, client, srv.URL, "/v0.4/traces", body)
				if err != nil {
					t.Fatalf("normal payload after %v: %v", time.Since(t0), err)
				}
				// Bounded by the body timeout of the stalled uploads ahead
				// of it or by the slot timeout, never by the stall itself.
				if d := time.Since(t0); d > 2*bodyTimeout+time.Second {
					t.Errorf("normal payload answered after %v", d)
				}
				switch status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					throttled++
				default:
					t.Fatalf("normal payload answered %d", status)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if ok == 0 {
				t.Errorf("no normal payload got through in %v (%d throttled)", time.Since(start), throttled)
			}
			for i, c := range conns {
				if s := readStatus(c, 5*time.Second); s != http.StatusRequestTimeout && s != http.StatusTooManyRequests {
					t.Errorf("stalled upload %d answered %d, want 408 (or 429 before it got a slot)", i, s)
				}
			}
			st := px.Stats()
			if st.TimedOut == 0 {
				t.Errorf("no stalled upload timed out: %+v", st)
			}
			if n := up.whole.Load(); n != int64(ok) {
				t.Errorf("upstream got %d whole payloads, tracer saw %d answered 200", n, ok)
			}
			t.Logf("%d normal payloads through, %d throttled; stats %+v", ok, throttled, st)
		})
	}
}

// TestTruncatedUploads sends payloads whose body ends early (the client
// half-closes): the tracer must never be answered 2xx, and the upstream
// must never receive a payload whole that the tracer did not send whole.
func TestTruncatedUploads(t *testing.T) {
	ts := genTraces(rand.New(rand.NewPCG(23, 24)), 20, 5)
	body := encodeV04(ts, metaMap)
	for _, tc := range []struct {
		name     string
		record   bool
		chunked  bool
		wantPath string
	}{
		{name: "streaming", record: false},
		{name: "buffering", record: true},
		{name: "chunked", record: false, chunked: true},
		{name: "chunked with record", record: true, chunked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &countingAgent{}
			agent := httptest.NewServer(up)
			defer agent.Close()
			px, srv := newTestProxy(t, Config{Upstream: agent.URL})
			if tc.record {
				px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))
			}
			addr := strings.TrimPrefix(srv.URL, "http://")
			for _, cut := range []int{0, 1, len(body) / 2, len(body) - 1} {
				length := len(body)
				if tc.chunked {
					length = -1
				}
				c := rawRequest(t, addr, length, body[:cut])
				time.Sleep(10 * time.Millisecond) // let the proxy start forwarding
				c.(*net.TCPConn).CloseWrite()
				status := readStatus(c, 5*time.Second)
				c.Close()
				if status/100 == 2 {
					t.Errorf("body cut at %d of %d answered %d", cut, len(body), status)
				}
			}
			// A whole payload still goes through, whole.
			status, _, err := postTraces(t, http.DefaultClient, srv.URL, "/v0.4/traces", body)
			if err != nil || status != http.StatusOK {
				t.Fatalf("whole payload: %d %v", status, err)
			}
			if n := up.whole.Load(); n != 1 {
				t.Errorf("upstream took %d payloads as whole, want 1 (the untruncated one)", n)
			}
			if px.Stats().Truncated == 0 {
				t.Error("truncated payloads not counted")
			}
		})
	}
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestBufferBudget sends many large payloads at once while records wait
// (every payload would be buffered and copied): the proxy's peak memory
// must stay within its buffer budget plus a bounded overhead, every payload
// must still be delivered (the ones beyond the budget streamed untagged),
// and chunked payloads beyond the budget must be refused with 429.
func TestBufferBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB without the budget")
	}
	ts := genTraces(rand.New(rand.NewPCG(25, 26)), 10, 5)
	ts[1][1].Meta["pad"] = strings.Repeat("x", 6<<20)
	body := encodeV04(ts, metaMap)
	const budgetBytes = 24 << 20
	const n = 16
	up := &countingAgent{}
	agent := httptest.NewServer(up)
	defer agent.Close()
	px, srv := newTestProxy(t, Config{Upstream: agent.URL, BufferBudget: budgetBytes})
	px.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get"))

	// What the chart's GOMEMLIMIT does: keep garbage from piling up above
	// the live heap. The bound below is what the budget alone guarantees.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(ms.HeapSys) + 2*budgetBytes))
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	base := peakRSS(t)
	var peakBuf atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if b := px.Stats().BufferedBytes; b > peakBuf.Load() {
				peakBuf.Store(b)
			}
		}
	}()
	var wg sync.WaitGroup
	var ok atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	for range n {
		wg.Go(func() {
			status, resp, err := postTraces(t, client, srv.URL, "/v0.4/traces", body)
			if err != nil || status != http.StatusOK {
				t.Errorf("payload: %d %q %v", status, resp, err)
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	close(stop)
	grown := peakRSS(t) - base
	st := px.Stats()
	t.Logf("%d x %d MiB payloads: peak RSS +%d MiB, peak buffered %d MiB (budget %d MiB), stats %+v",
		n, len(body)>>20, grown>>20, peakBuf.Load()>>20, budgetBytes>>20, st)
	if ok.Load() != n || up.whole.Load() != n {
		t.Errorf("%d payloads answered 200, upstream got %d whole, want %d", ok.Load(), up.whole.Load(), n)
	}
	if st.Unenriched == 0 {
		t.Errorf("no payload streamed untagged for lack of budget: %+v", st)
	}
	if peakBuf.Load() > budgetBytes+maxPooled {
		t.Errorf("peak buffered %d bytes, budget %d", peakBuf.Load(), budgetBytes)
	}
	// Client bodies share one slice; the upstream discards. Budget, plus
	// the garbage GOMEMLIMIT lets through, plus connections' buffers.
	if limit := int64(2*budgetBytes + 32<<20); grown > limit {
		t.Errorf("peak RSS grew by %d MiB, want at most %d MiB", grown>>20, limit>>20)
	}
	if st.BufferedBytes != 0 {
		t.Errorf("%d bytes of the budget still held after every payload was answered", st.BufferedBytes)
	}

	// With the burst over, the budget is free again: a payload is tagged.
	px.Put(testRecord(traceIDOf(ts[2]), ts[2][0].SpanID, 2, "List"))
	before := px.Stats().SpansTagged
	if status, resp, err := postTraces(t, client, srv.URL, "/v0.4/traces", body); err != nil || status != http.StatusOK {
		t.Fatalf("payload after the burst: %d %q %v", status, resp, err)
	}
	if px.Stats().SpansTagged == before {
		t.Errorf("payload after the burst not tagged: %+v", px.Stats())
	}

	// Chunked payloads cannot be streamed with a known length: beyond the
	// budget they get 429.
	hold := &budget{max: 1}
	px.budget, hold = hold, px.budget
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v0.4/traces", io.MultiReader(bytes.NewReader(body)))
	resp, err := client.Do(req)
	px.budget = hold
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("chunked payload over the budget answered %d, want 429", resp.StatusCode)
	}
}
