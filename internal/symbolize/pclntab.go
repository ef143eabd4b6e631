package symbolize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file reads the Go pclntab by hand. debug/gosym is not enough: it
// reports the outer function for PCs in inlined code, and it exposes neither
// the inline tree nor a function's startLine. The layout follows
// runtime/symtab.go, runtime/symtabinl.go and internal/abi/symtab.go; every
// read is bounds-checked because the bytes come from files we do not trust.

// pclntab magic numbers (internal/abi.PCLnTabMagic and its predecessors).
const (
	magic120 = 0xfffffff1 // Go 1.20 and later
	magic118 = 0xfffffff0 // Go 1.18, 1.19
	magic116 = 0xfffffffa // Go 1.16, 1.17
	magic12  = 0xfffffffb // Go 1.2 - 1.15
)

// Indexes of the pcdata and funcdata tables we use (internal/abi).
const (
	pcdataInlTreeIndex = 2
	funcdataInlTree    = 3
	funcdataWrapInfo   = 7
)

var (
	// ErrNotGo means the file is not a Go binary (no pclntab).
	ErrNotGo = errors.New("not a Go binary")
	// ErrUnsupported means the binary's Go version or architecture has a
	// pclntab layout this package cannot read.
	ErrUnsupported = errors.New("unsupported Go binary")
	// ErrCorrupt means the pclntab or moduledata is inconsistent.
	ErrCorrupt = errors.New("corrupt Go symbol table")
	// ErrNoFunc means an address lies outside every Go function.
	ErrNoFunc = errors.New("address not in a Go function")
)

// pclntab is a parsed pcHeader with its sub-tables as slices of the
// section's bytes. It holds no other memory.
type pclntab struct {
	data        []byte
	go118       bool // 0xfffffff0 layout: no startLine, older inline tree
	quantum     uint32
	ptrSize     int
	nfunc       int
	nfiles      int
	textStart   uint64 // header textStart (Go 1.18/1.19 only)
	funcnametab []byte
	cutab       []byte
	filetab     []byte
	pctab       []byte
	funcdata    []byte // "pclntable": ftab followed by the _func records
	funcSize    int    // size of the fixed part of _func

	// findfunctab is the runtime's bucket index over the text (one
	// findfuncbucket per 4 KiB), nil when moduledata was not found;
	// minpcOff is moduledata.minpc - moduledata.text.
	findfunctab []byte
	minpcOff    uint64
}

// parsePclntab checks the header of a Go 1.18+ pclntab and slices its tables.
func parsePclntab(data []byte) (*pclntab, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("pclntab: %d bytes, too short for a header: %w", len(data), ErrCorrupt)
	}
	magic := binary.LittleEndian.Uint32(data)
	t := &pclntab{data: data}
	switch magic {
	case magic120:
		t.funcSize = 44
	case magic118:
		t.go118 = true
		t.funcSize = 40
	case magic116:
		return nil, fmt.Errorf("pclntab magic %#x is Go 1.16/1.17; Go 1.18 or later is needed: %w", magic, ErrUnsupported)
	case magic12:
		return nil, fmt.Errorf("pclntab magic %#x is Go 1.2-1.15; Go 1.18 or later is needed: %w", magic, ErrUnsupported)
	default:
		if binary.BigEndian.Uint32(data) == magic120 || binary.BigEndian.Uint32(data) == magic118 {
			return nil, fmt.Errorf("big-endian pclntab: %w", ErrUnsupported)
		}
		return nil, fmt.Errorf("pclntab magic %#x unknown: %w", magic, ErrCorrupt)
	}
	if data[4] != 0 || data[5] != 0 {
		return nil, fmt.Errorf("pclntab header padding not zero: %w", ErrCorrupt)
	}
	t.quantum = uint32(data[6])
	t.ptrSize = int(data[7])
	if t.quantum != 1 && t.quantum != 2 && t.quantum != 4 {
		return nil, fmt.Errorf("pclntab instruction quantum %d: %w", t.quantum, ErrCorrupt)
	}
	if t.ptrSize != 4 && t.ptrSize != 8 {
		return nil, fmt.Errorf("pclntab pointer size %d: %w", t.ptrSize, ErrCorrupt)
	}
	if len(data) < 8+8*t.ptrSize {
		return nil, fmt.Errorf("pclntab: %d bytes, too short for a header: %w", len(data), ErrCorrupt)
	}
	word := func(i int) uint64 {
		off := 8 + i*t.ptrSize
		if t.ptrSize == 8 {
			return binary.LittleEndian.Uint64(data[off:])
		}
		return uint64(binary.LittleEndian.Uint32(data[off:]))
	}
	nfunc := word(0)
	t.textStart = word(2)
	sub := func(name string, off uint64) ([]byte, error) {
		if off > uint64(len(data)) {
			return nil, fmt.Errorf("pclntab %s offset %#x beyond %#x bytes: %w", name, off, len(data), ErrCorrupt)
		}
		return data[off:], nil
	}
	var err error
	if t.funcnametab, err = sub("funcnametab", word(3)); err != nil {
		return nil, err
	}
	if t.cutab, err = sub("cutab", word(4)); err != nil {
		return nil, err
	}
	if t.filetab, err = sub("filetab", word(5)); err != nil {
		return nil, err
	}
	if t.pctab, err = sub("pctab", word(6)); err != nil {
		return nil, err
	}
	if t.funcdata, err = sub("pclntable", word(7)); err != nil {
		return nil, err
	}
	// The ftab has nfunc+1 entries of 8 bytes.
	if nfunc >= uint64(len(t.funcdata))/8 {
		return nil, fmt.Errorf("pclntab claims %d functions, table holds at most %d: %w", nfunc, len(t.funcdata)/8, ErrCorrupt)
	}
	t.nfunc = int(nfunc)
	t.nfiles = int(min(word(1), 1<<24))
	return t, nil
}

// ftabEntry returns the entry offset (from text start) and _func offset of
// function i; i == nfunc gives the end of the last function.
func (t *pclntab) ftabEntry(i int) (entryOff, funcOff uint32) {
	p := t.funcdata[8*i:]
	return binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
}

// find returns the index of the function containing text offset off.
func (t *pclntab) find(off uint64) (int, bool) {
	if t.nfunc == 0 || off >= 1<<32 {
		return 0, false
	}
	o := uint32(off)
	first, _ := t.ftabEntry(0)
	last, _ := t.ftabEntry(t.nfunc)
	if o < first || o >= last {
		return 0, false
	}
	if i, ok := t.findBucket(off); ok {
		return i, true
	}
	// Binary search for the last entry <= o.
	lo, hi := 0, t.nfunc
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if e, _ := t.ftabEntry(mid); e <= o {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, true
}

// Layout of runtime.findfuncbucket: {idx uint32; subbuckets [16]byte}
// for every 4 KiB of text.
const (
	funcTabBucketSize = 4096
	findFuncBucketLen = 20
	findFuncSubs      = 16
)

// findBucket is runtime.findfunc: the bucket gives the first candidate,
// a few steps forward find the function. Unlike the runtime it checks
// every step, and leaves bad data to the binary search.
func (t *pclntab) findBucket(off uint64) (int, bool) {
	if off < t.minpcOff {
		return 0, false
	}
	x := off - t.minpcOff
	b := x / funcTabBucketSize
	sub := x % funcTabBucketSize / (funcTabBucketSize / findFuncSubs)
	p := b * findFuncBucketLen
	if p+findFuncBucketLen > uint64(len(t.findfunctab)) {
		return 0, false
	}
	idx := uint64(binary.LittleEndian.Uint32(t.findfunctab[p:])) + uint64(t.findfunctab[p+4+sub])
	for range 64 {
		if idx >= uint64(t.nfunc) {
			return 0, false
		}
		e, _ := t.ftabEntry(int(idx))
		next, _ := t.ftabEntry(int(idx) + 1)
		if uint64(e) > off {
			return 0, false
		}
		if off < uint64(next) {
			return int(idx), true
		}
		idx++
	}
	return 0, false
}

// fn is a decoded _func record.
type fn struct {
	entry     uint32 // offset from text start
	end       uint32
	nameOff   int32
	pcfile    uint32
	pcln      uint32
	npcdata   uint32
	cuOffset  uint32
	startLine int32
	funcID    uint8
	nfuncdata uint8
	rec       []byte // the record, starting at its variable-length tail
}

// funcAt decodes function i of the ftab.
func (t *pclntab) funcAt(i int) (fn, bool) {
	entry, off := t.ftabEntry(i)
	end, _ := t.ftabEntry(i + 1)
	if uint64(off)+uint64(t.funcSize) > uint64(len(t.funcdata)) {
		return fn{}, false
	}
	r := t.funcdata[off:]
	f := fn{
		entry:    binary.LittleEndian.Uint32(r),
		end:      end,
		nameOff:  int32(binary.LittleEndian.Uint32(r[4:])),
		pcfile:   binary.LittleEndian.Uint32(r[20:]),
		pcln:     binary.LittleEndian.Uint32(r[24:]),
		npcdata:  binary.LittleEndian.Uint32(r[28:]),
		cuOffset: binary.LittleEndian.Uint32(r[32:]),
	}
	if t.go118 {
		f.funcID = r[36]
		f.nfuncdata = r[39]
	} else {
		f.startLine = int32(binary.LittleEndian.Uint32(r[36:]))
		f.funcID = r[40]
		f.nfuncdata = r[43]
	}
	if f.entry != entry || f.end < f.entry {
		return fn{}, false
	}
	f.rec = r[t.funcSize:]
	return f, true
}

// pcdataOff returns the pctab offset of pcdata table i, or 0.
func (f *fn) pcdataOff(i uint32) uint32 {
	if i >= f.npcdata || int(4*i+4) > len(f.rec) {
		return 0
	}
	return binary.LittleEndian.Uint32(f.rec[4*i:])
}

// funcdataOff returns the offset from moduledata.gofunc of funcdata i.
func (f *fn) funcdataOff(i uint8) (uint32, bool) {
	if i >= f.nfuncdata {
		return 0, false
	}
	p := 4*uint64(f.npcdata) + 4*uint64(i)
	if p+4 > uint64(len(f.rec)) {
		return 0, false
	}
	off := binary.LittleEndian.Uint32(f.rec[p:])
	return off, off != ^uint32(0)
}

// cstring returns the NUL-terminated string at tab[off:].
func cstring(tab []byte, off uint64) ([]byte, bool) {
	if off >= uint64(len(tab)) {
		return nil, false
	}
	s := tab[off:]
	i := bytes.IndexByte(s, 0)
	if i < 0 {
		return nil, false
	}
	return s[:i], true
}

// funcName returns the symbol name at nameOff of funcnametab.
func (t *pclntab) funcName(nameOff int32) ([]byte, bool) {
	if nameOff < 0 {
		return nil, false
	}
	return cstring(t.funcnametab, uint64(nameOff))
}

// fileOff returns the filetab offset of file number fileno of f's CU.
func (t *pclntab) fileOff(f *fn, fileno int32) (uint32, bool) {
	if fileno < 0 {
		return 0, false
	}
	i := 4 * (uint64(f.cuOffset) + uint64(fileno))
	if i+4 > uint64(len(t.cutab)) {
		return 0, false
	}
	off := binary.LittleEndian.Uint32(t.cutab[i:])
	return off, off != ^uint32(0)
}

// pcvalue decodes the pc-value table at pctab offset off and returns the
// value at text offset pc (runtime.pcvalue). It returns -1 when the table is
// absent or does not cover pc.
func (t *pclntab) pcvalue(f *fn, off uint32, pc uint32) int32 {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return -1
	}
	p := t.pctab[off:]
	cur := f.entry
	val := int32(-1)
	for first := true; ; first = false {
		// Most deltas fit one byte; avoid the loop for them, as the
		// runtime's step does.
		var uv uint32
		if len(p) > 0 && p[0] < 0x80 {
			uv, p = uint32(p[0]), p[1:]
		} else {
			v, n := uvarint(p)
			if n <= 0 {
				return -1
			}
			uv, p = v, p[n:]
		}
		if uv == 0 && !first {
			return -1
		}
		val += int32(-(uv & 1) ^ (uv >> 1))
		var pcd uint32
		if len(p) > 0 && p[0] < 0x80 {
			pcd, p = uint32(p[0]), p[1:]
		} else {
			v, n := uvarint(p)
			if n <= 0 {
				return -1
			}
			pcd, p = v, p[n:]
		}
		next := uint64(cur) + uint64(pcd)*uint64(t.quantum)
		if next > uint64(f.end) {
			// Tables end at the function's end; past it the data is bad.
			next = uint64(f.end)
		}
		if pc < uint32(next) {
			return val
		}
		cur = uint32(next)
		if cur >= f.end {
			return -1
		}
	}
}

// uvarint decodes a little-endian base-128 uint32 as the runtime's
// readvarint does; n <= 0 means the input is truncated or too long.
func uvarint(p []byte) (uint32, int) {
	var v uint32
	var shift uint
	for i, b := range p {
		if i == 5 {
			return 0, -1
		}
		v |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// inlinedCall is one decoded inline tree entry.
type inlinedCall struct {
	funcID    uint8
	nameOff   int32
	parentPc  int32
	startLine int32
}

// inlinedCallAt decodes entry ix of an inline tree.
func (t *pclntab) inlinedCallAt(tree []byte, ix int32) (inlinedCall, bool) {
	if ix < 0 {
		return inlinedCall{}, false
	}
	if t.go118 {
		// {parent int16, funcID uint8, _ byte, file, line, func_, parentPc int32}
		p := 20 * uint64(ix)
		if p+20 > uint64(len(tree)) {
			return inlinedCall{}, false
		}
		e := tree[p:]
		return inlinedCall{
			funcID:   e[2],
			nameOff:  int32(binary.LittleEndian.Uint32(e[12:])),
			parentPc: int32(binary.LittleEndian.Uint32(e[16:])),
		}, true
	}
	// {funcID uint8, _ [3]byte, nameOff, parentPc, startLine int32}
	p := 16 * uint64(ix)
	if p+16 > uint64(len(tree)) {
		return inlinedCall{}, false
	}
	e := tree[p:]
	return inlinedCall{
		funcID:    e[0],
		nameOff:   int32(binary.LittleEndian.Uint32(e[4:])),
		parentPc:  int32(binary.LittleEndian.Uint32(e[8:])),
		startLine: int32(binary.LittleEndian.Uint32(e[12:])),
	}, true
}
