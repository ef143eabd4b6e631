package export

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "github.com/DataDog/datadog-agent/pkg/proto/pbgo/trace"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/originagent/originagent/internal/origin"
)

// putBenchRecords stores the records of the realistic payload of the issue
// (100 traces of 10 spans): the entry span of every trace, and one child
// span in every tenth trace, so that 110 spans are tagged per payload.
func putBenchRecords(ts pb.Traces, put func(r origin.Record)) {
	for i, tr := range ts {
		put(testRecord(traceIDOf(tr), tr[0].SpanID, 1, "Get"))
		if i%10 == 0 {
			put(testRecord(traceIDOf(tr), tr[3].SpanID, 2, "List"))
		}
	}
}

var benchEncodings = []encoding{encodings[0], encodings[4], encodings[5]} // v0.4, v0.5, v1.0

// BenchmarkEnrich measures the walk and splice (or, for v1.0, the decode and
// re-encode) of one 1000-span payload on one goroutine: spans/s is the
// single-core enrichment throughput. "unmatched" has records waiting for
// other traces only (scan cost); "matched" tags every trace's entry span.
func BenchmarkEnrich(b *testing.B) {
	ts := genTraces(rand.New(rand.NewPCG(100, 10)), 100, 10)
	for _, enc := range benchEncodings {
		body := enc.encode(ts)
		for _, matched := range []bool{false, true} {
			name := enc.name + "/unmatched"
			s := newTestStore(b, DefaultStoreSize, time.Hour, nil)
			if matched {
				name = enc.name + "/matched"
				putBenchRecords(ts, s.put)
			} else {
				putBenchRecords(genTraces(rand.New(rand.NewPCG(1, 1)), 100, 10), s.put)
			}
			b.Run(name, func(b *testing.B) {
				p := &Proxy{store: s, states: newFreeList[encState](1, nil)}
				dst := make([]byte, 0, 2*len(body))
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					out, n, err := p.enrich(enc.v, dst[:0], body)
					if err != nil || (matched && (out == nil || n != 110)) || (!matched && out != nil) {
						b.Fatalf("out=%v n=%d err=%v", out != nil, n, err)
					}
				}
				b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "spans/s")
			})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// agentStub answers trace payloads like the Agent without decoding them, so
// that the upstream's cost is the same small constant on every path.
var agentStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"rate_by_service":{}}`)
})

// BenchmarkProxy sends the 1000-span payload over loopback HTTP, one at a
// time, through three paths in the same run, interleaved:
//
//   - direct: tracer -> Agent, no proxy;
//   - plain: tracer -> httputil.ReverseProxy (byte-for-byte) -> Agent;
//   - buffered: the same reverse proxy behind a handler that first reads the
//     whole body into a pooled buffer, as any proxy that rewrites a payload
//     must (to send its new length, or the original after a failed decode);
//   - originagent: tracer -> Proxy, which tags 110 spans -> Agent;
//   - originagent idle: the same with no record waiting (streams through).
//
// The process's CPU time (getrusage) around each request is charged to its
// path; a proxy's own cost is its path minus direct. Reported: CPU and wall
// time per payload for each path, the added latency of each proxy,
// cpu-ratio = originagent's own CPU / plain proxy's own CPU (goal <= 1.5) and
// buffered-ratio = the buffering proxy's own CPU / plain's: the floor of
// cpu-ratio for any proxy that buffers.
func BenchmarkProxy(b *testing.B) {
	ts := genTraces(rand.New(rand.NewPCG(100, 10)), 100, 10)
	for _, enc := range benchEncodings {
		b.Run(enc.name, func(b *testing.B) {
			body := enc.encode(ts)
			agent := httptest.NewServer(agentStub)
			defer agent.Close()
			target, _ := url.Parse(agent.URL)
			plainRP := httputil.NewSingleHostReverseProxy(target)
			plainRP.Transport = &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
			plain := httptest.NewServer(plainRP)
			defer plain.Close()
			px, err := NewProxy(Config{Upstream: agent.URL, RecordTTL: time.Hour}, nil, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			putBenchRecords(ts, px.Put)
			oa := httptest.NewServer(px.Handler())
			defer oa.Close()
			// The same proxy with no record waiting: buffering and
			// forwarding without walking the payload.
			idle, err := NewProxy(Config{Upstream: agent.URL}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			oaIdle := httptest.NewServer(idle.Handler())
			defer oaIdle.Close()
			bufRP := httputil.NewSingleHostReverseProxy(target)
			bufRP.Transport = &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
			var bufs sync.Pool
			buffered := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				bp, _ := bufs.Get().(*[]byte)
				if bp == nil {
					bp = new([]byte)
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				*bp = body
				r.Body = io.NopCloser(bytes.NewReader(body))
				bufRP.ServeHTTP(w, r)
				bufs.Put(bp)
			}))
			defer buffered.Close()
			client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}
			paths := []string{agent.URL, plain.URL, oa.URL, oaIdle.URL, buffered.URL}
			var cpu, wall [5]time.Duration
			send := func(i int) {
				req, _ := http.NewRequest(http.MethodPut, paths[i]+enc.path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/msgpack")
				req.Header.Set("X-Datadog-Trace-Count", "100")
				c0, w0 := cpuTime(), time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cpu[i] += cpuTime() - c0
				wall[i] += time.Since(w0)
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for i := range paths { // warm connections and pools
				send(i)
			}
			cpu, wall = [5]time.Duration{}, [5]time.Duration{}
			tagged0 := px.Stats().SpansTagged
			for b.Loop() {
				for i := range paths {
					send(i)
				}
			}
			if px.Stats().SpansTagged-tagged0 != uint64(110*b.N) {
				b.Fatalf("tagged %d spans, want %d", px.Stats().SpansTagged-tagged0, 110*b.N)
			}
			n := float64(b.N)
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
			b.ReportMetric(us(cpu[0]), "direct-cpu-us/payload")
			b.ReportMetric(us(cpu[1]), "plain-cpu-us/payload")
			b.ReportMetric(us(cpu[2]), "oa-cpu-us/payload")
			b.ReportMetric(us(cpu[3]), "oa-idle-cpu-us/payload")
			b.ReportMetric(us(cpu[4]), "buffered-cpu-us/payload")
			b.ReportMetric(float64(cpu[4]-cpu[0])/float64(cpu[1]-cpu[0]), "buffered-ratio")
			b.ReportMetric(us(wall[1]-wall[0]), "plain-added-us/payload")
			b.ReportMetric(us(wall[2]-wall[0]), "oa-added-us/payload")
			b.ReportMetric(float64(cpu[2]-cpu[0])/float64(cpu[1]-cpu[0]), "cpu-ratio")
			b.ReportMetric(1000*n/(float64(cpu[2]-cpu[0])/1e9), "oa-spans/cpu-s")
		})
	}
}

// BenchmarkBurst fires a burst of concurrent 1000-span payloads at the proxy,
// 1x (MaxInFlight) and 10x that, and reports the peak live heap: it must stay
// in the same range, since payloads beyond MaxInFlight wait unread.
func BenchmarkBurst(b *testing.B) {
	ts := genTraces(rand.New(rand.NewPCG(100, 10)), 100, 10)
	body := encodeV04(ts, metaMap)
	const inflight = 8
	for _, mult := range []int{1, 10} {
		b.Run(map[int]string{1: "1x", 10: "10x"}[mult], func(b *testing.B) {
			agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(2 * time.Millisecond) // an Agent under load
				agentStub(w, r)
			}))
			defer agent.Close()
			px, err := NewProxy(Config{Upstream: agent.URL, MaxInFlight: inflight, RecordTTL: time.Hour}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			putBenchRecords(ts, px.Put)
			oa := httptest.NewServer(px.Handler())
			defer oa.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100 * inflight, DisableCompression: true}}
			defer client.CloseIdleConnections()

			var peak atomic.Uint64
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			sampler.Go(func() {
				s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
				t := time.NewTicker(500 * time.Microsecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						rtmetrics.Read(s)
						if v := s[0].Value.Uint64(); v > peak.Load() {
							peak.Store(v)
						}
					}
				}
			})
			for b.Loop() {
				var wg sync.WaitGroup
				for range inflight * mult {
					wg.Go(func() {
						resp, err := client.Post(oa.URL+"/v0.4/traces", "application/msgpack", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					})
				}
				wg.Wait()
			}
			close(stop)
			sampler.Wait()
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(len(body)*inflight*mult)/(1<<20), "burst-MB")
		})
	}
}
