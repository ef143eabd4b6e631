package export

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkFloor measures what any enrichment that follows the payload's
// structure must at least do with the realistic payload: visit every
// msgpack value once (skipMsgp over the whole body, nothing decoded) and copy
// the body once (the output with the tags spliced in). Set against
// BenchmarkProxy's plain-proxy cost, it bounds the ratio any walker can reach.
func BenchmarkFloor(b *testing.B) {
	ts := genTraces(rand.New(rand.NewPCG(100, 10)), 100, 10)
	for _, enc := range benchEncodings {
		body := enc.encode(ts)
		b.Run(enc.name+"/skip", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if rest, err := skipMsgp(body); err != nil || len(rest) != 0 {
					b.Fatalf("skip: %v, %d bytes left", err, len(rest))
				}
			}
		})
		b.Run(enc.name+"/copy", func(b *testing.B) {
			dst := make([]byte, 0, 2*len(body))
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				dst = append(dst[:0], body...)
			}
		})
	}
}
