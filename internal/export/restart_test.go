package export

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRestartUnderLoad replaces a serving proxy with a new one while
// tracer-like clients (keep-alive connections, POSTs that are not retried)
// send payloads without pause: the new proxy binds the same TCP port
// (SO_REUSEPORT) or renames its socket over the same path, the old one
// drains and shuts down. Every payload sent must be answered 200 and every
// span must reach the upstream: zero lost.
func TestRestartUnderLoad(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			upstream := NewLocalAgent(LocalAgentOptions{MaxSpans: 1 << 20}, nil)
			up := httptest.NewServer(upstream)
			defer up.Close()
			sock := filepath.Join(t.TempDir(), "apm.socket")
			cfg := Config{Upstream: up.URL, DrainPeriod: 300 * time.Millisecond}
			if network == "tcp" {
				cfg.Listen = "127.0.0.1:0"
			} else {
				cfg.ListenUnix = sock
			}
			start := func(cfg Config) (*Proxy, chan error) {
				px, err := NewProxy(cfg, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := px.Listen(); err != nil {
					t.Fatal(err)
				}
				served := make(chan error, 1)
				go func() { served <- px.Serve(context.Background()) }()
				return px, served
			}
			old, oldServed := start(cfg)
			if network == "tcp" {
				cfg.Listen = old.Addrs()[0].String() // the same port for the successor
			}
			ts := genTraces(rand.New(rand.NewPCG(31, 32)), 1, 1)
			old.Put(testRecord(traceIDOf(ts[0]), ts[0][0].SpanID, 1, "Get")) // buffered path too

			client := func() *http.Client {
				tr := &http.Transport{MaxIdleConnsPerHost: 2}
				if network == "unix" {
					tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
						return (&net.Dialer{}).DialContext(ctx, "unix", sock)
					}
				}
				return &http.Client{Transport: tr, Timeout: 10 * time.Second}
			}
			url := "http://" + cfg.Listen
			if network == "unix" {
				url = "http://apm"
			}
			var sent, failed atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for i := range 4 {
				wg.Go(func() {
					c := client()
					defer c.CloseIdleConnections()
					rng := rand.New(rand.NewPCG(uint64(i), 33))
					for {
						select {
						case <-stop:
							return
						default:
						}
						ts := genTraces(rng, 3, 4)
						req, _ := http.NewRequest(http.MethodPost, url+"/v0.4/traces", bytes.NewReader(encodeV04(ts, metaMap)))
						req.Header.Set("Content-Type", "application/msgpack")
						resp, err := c.Do(req)
						if err != nil {
							failed.Add(1)
							t.Logf("payload lost: %v", err)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							failed.Add(1)
							t.Logf("payload answered %d", resp.StatusCode)
							continue
						}
						sent.Add(12)
					}
				})
			}
			time.Sleep(200 * time.Millisecond)
			next, nextServed := start(cfg)
			if err := old.Drain(context.Background()); err != nil {
				t.Errorf("drain: %v", err)
			}
			if err := <-oldServed; err != nil {
				t.Errorf("old Serve: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
			close(stop)
			wg.Wait()
			if err := next.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
			<-nextServed
			got := len(upstream.Spans())
			t.Logf("%s: %d spans sent (%d by the old proxy's payloads, %d by the new one's), %d received, %d payloads failed",
				network, sent.Load(), old.Stats().Forwarded, next.Stats().Forwarded, got, failed.Load())
			if failed.Load() != 0 || int64(got) != sent.Load() {
				t.Errorf("%d payloads failed, %d spans sent and answered 200, %d reached the upstream: want none lost",
					failed.Load(), sent.Load(), got)
			}
			if old.Stats().Forwarded == 0 || next.Stats().Forwarded == 0 {
				t.Errorf("the load did not cross the restart: old forwarded %d, new %d", old.Stats().Forwarded, next.Stats().Forwarded)
			}
		})
	}
}
