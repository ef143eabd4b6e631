package export

import "encoding/binary"

// skipMsgp returns b after the msgpack value at its start, like msgp.Skip.
//
// Why not msgp.Skip: the walkers skip every value they do not need (most of
// a span), and msgp.Skip, recursive and generic, was half of their CPU time
// in BenchmarkEnrich. This loop keeps a count of values still to skip
// instead of recursing: every value takes at least one byte, so it runs at
// most len(b) times whatever the headers claim, and nesting depth costs
// nothing. FuzzSkip checks it against msgp.Skip.
func skipMsgp(b []byte) ([]byte, error) {
	i, pending := 0, uint64(1)
	for pending > 0 {
		if i >= len(b) {
			return b, malformed("value truncated")
		}
		pending--
		c := b[i]
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
			i++
			continue
		case c&0xe0 == 0xa0: // fixstr
			i += 1 + int(c&0x1f)
			continue
		case c&0xf0 == 0x80: // fixmap
			pending += 2 * uint64(c&0x0f)
			i++
			continue
		case c&0xf0 == 0x90: // fixarray
			pending += uint64(c & 0x0f)
			i++
			continue
		}
		var size, count int // payload bytes after the header; elements
		hdr := 1
		switch c {
		case 0xc0, 0xc2, 0xc3: // nil, false, true
		case 0xcc, 0xd0: // uint8, int8
			size = 1
		case 0xcd, 0xd1:
			size = 2
		case 0xce, 0xd2, 0xca:
			size = 4
		case 0xcf, 0xd3, 0xcb:
			size = 8
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, plus the type byte
			size = 1 + 1<<(c-0xd4)
		case 0xd9, 0xc4, 0xc7: // str8, bin8, ext8
			hdr = 2
			if i+hdr > len(b) {
				return b, malformed("header truncated")
			}
			size = int(b[i+1])
		case 0xda, 0xc5, 0xc8, 0xdc, 0xde: // 16-bit lengths and counts
			hdr = 3
			if i+hdr > len(b) {
				return b, malformed("header truncated")
			}
			n := int(binary.BigEndian.Uint16(b[i+1:]))
			switch c {
			case 0xdc:
				count = n
			case 0xde:
				count = 2 * n
			default:
				size = n
			}
		case 0xdb, 0xc6, 0xc9, 0xdd, 0xdf: // 32-bit lengths and counts
			hdr = 5
			if i+hdr > len(b) {
				return b, malformed("header truncated")
			}
			n := int(binary.BigEndian.Uint32(b[i+1:]))
			switch c {
			case 0xdd:
				count = n
			case 0xdf:
				count = 2 * n
			default:
				size = n
			}
		default: // 0xc1 is never used
			return b, malformed("invalid msgpack byte 0x%02x", c)
		}
		if c == 0xc7 || c == 0xc8 || c == 0xc9 {
			size++ // the ext type byte
		}
		pending += uint64(count)
		if size > len(b)-i-hdr {
			return b, malformed("value truncated")
		}
		i += hdr + size
	}
	if i > len(b) {
		return b, malformed("value truncated")
	}
	return b[i:], nil
}

// readKey reads a map key (str or bin, like msgp.ReadMapKeyZC) without
// copying; the fast path is the fixstr every tracer uses for span keys.
func readKey(b []byte) ([]byte, []byte, error) {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 {
		n := 1 + int(b[0]&0x1f)
		if n > len(b) {
			return nil, b, malformed("key truncated")
		}
		return b[1:n], b[n:], nil
	}
	return readStr(b)
}
