package export

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/origin"
)

// TestV1AgreesWithV04 enriches the same random traces with the same records
// once as v0.4 and once as v1.0. The two walkers share only the matching, so
// the v1.0 output must carry exactly the tags the v0.4 output carries, every
// other field unchanged, as the Agent's own types decode them. The payloads
// mix entry spans and children with records, several per trace, and tag
// strings that reappear later in the payload (which v1.0 must renumber).
func TestV1AgreesWithV04(t *testing.T) {
	const seeds = 200
	enriched := 0
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 7))
		ts := genTraces(r, 1+r.IntN(20), 1+r.IntN(12))
		s := newTestStore(t, 1000, time.Minute, nil)
		for _, tr := range ts {
			for si, sp := range tr {
				if r.IntN(3) == 0 {
					s.put(testRecord(traceIDOf(tr), sp.SpanID, uint64(r.IntN(4)), fmt.Sprintf("H%d", r.IntN(5))))
				}
				if r.IntN(8) == 0 && sp.Meta != nil {
					sp.Meta[fmt.Sprintf("k%d", si)] = []string{"entry", "H1", origin.TagFrameFile, "42"}[r.IntN(4)]
				}
			}
		}
		b04 := encodeV04(ts, metaMap)
		out04, n04, err := enrichWith(s, v04, b04)
		if err != nil {
			t.Fatalf("seed %d: v0.4: %v", seed, err)
		}
		want := map[spanKey]map[string]string{}
		if out04 != nil {
			orig, _ := decodedSpans(t, "/v0.4/traces", b04)
			fwd, _ := decodedSpans(t, "/v0.4/traces", out04)
			for k, f := range fwd {
				had := orig[k]["meta"].(map[string]string)
				tags := map[string]string{}
				for mk, mv := range f["meta"].(map[string]string) {
					if _, ok := had[mk]; !ok {
						tags[mk] = mv
					}
				}
				if len(tags) > 0 {
					want[k] = tags
				}
			}
		}
		b1 := encodeV1(ts)
		out1, n1, err := enrichWith(s, v1, b1)
		if err != nil {
			t.Fatalf("seed %d: v1.0: %v", seed, err)
		}
		if n1 != n04 || (out1 == nil) != (out04 == nil) || len(want) != n04 {
			t.Fatalf("seed %d: v1.0 tagged %d spans (changed %v), v0.4 %d (changed %v, %d decoded)",
				seed, n1, out1 != nil, n04, out04 != nil, len(want))
		}
		if out1 == nil {
			continue
		}
		enriched++
		if got := compareForwarded(t, "/v1.0/traces", b1, out1, want); got != len(want) {
			t.Fatalf("seed %d: %d spans tagged in v1.0, want %d", seed, got, len(want))
		}
	}
	if enriched < seeds*3/4 {
		t.Fatalf("only %d of %d payloads were enriched: the comparison covers too little", enriched, seeds)
	}
}
