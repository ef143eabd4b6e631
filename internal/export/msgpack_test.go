package export

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// FuzzSkip checks skipMsgp against msgp.Skip: same remainder on valid input,
// an error on input msgp.Skip rejects.
func FuzzSkip(f *testing.F) {
	ts := genTraces(rand.New(rand.NewPCG(1, 1)), 2, 4)
	for _, seed := range [][]byte{
		encodeV04(ts, metaMap), encodeV05(ts), encodeV1(ts),
		{0xc7, 3, 5, 'a', 'b', 'c'}, {0xd6, 1, 2, 3, 4, 5}, {0xde, 0, 1, 0xa1, 'k', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0},
		msgp.AppendBytes(msgp.AppendFloat32(msgp.AppendInt8(nil, -3), 1.5), bytes.Repeat([]byte{1}, 300)),
		{0xc1}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdb, 0, 0, 1}, {0xd8, 1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := msgp.Skip(b)
		got, gerr := skipMsgp(b)
		if werr != nil {
			// msgp.Skip also stops at a nesting limit skipMsgp does not need.
			if gerr == nil && len(b) < 10_000 {
				t.Fatalf("msgp.Skip failed (%v), skipMsgp returned %d bytes left", werr, len(got))
			}
			return
		}
		if gerr != nil || len(got) != len(want) {
			t.Fatalf("skipMsgp: %d left, %v; msgp.Skip: %d left", len(got), gerr, len(want))
		}
	})
}
