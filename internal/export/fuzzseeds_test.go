//go:build fuzzseeds

package export

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates the committed seed corpus of
// FuzzProxyTraces:
//
//	go test -tags fuzzseeds -run TestWriteFuzzSeeds ./internal/export
func TestWriteFuzzSeeds(t *testing.T) {
	ts := fuzzTraces()
	dir := filepath.Join("testdata", "fuzz", "FuzzProxyTraces")
	os.MkdirAll(dir, 0o755)
	seeds := map[string][]byte{
		"v04": encodeV04(ts, metaMap), "v04-absent-meta": encodeV04(ts, metaAbsent),
		"v04-nil-meta": encodeV04(ts, metaNil), "v05": encodeV05(ts), "v1": encodeV1(ts),
	}
	for name, b := range seeds {
		v := map[string]int{"v05": 1, "v1": 2}[name]
		writeSeed(t, filepath.Join(dir, name), v, b)
		// Truncated and oversized-count variants.
		writeSeed(t, filepath.Join(dir, name+"-truncated"), v, b[:len(b)*2/3])
	}
}
