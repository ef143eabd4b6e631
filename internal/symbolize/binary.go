package symbolize

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"iter"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/originagent/originagent/internal/origin"
)

// Frame is one symbolized frame.
type Frame struct {
	Function  string `json:"function"`   // full symbol name, wrappers resolved
	File      string `json:"file"`       // as runtime.Func.FileLine reports it
	Line      int    `json:"line"`       // line of the address
	StartLine int    `json:"start_line"` // declaration line of Function (0 before Go 1.20)
	Type      string `json:"type"`       // import path plus receiver type, or import path alone
	Method    string `json:"method"`     // method or function name
	User      bool   `json:"user"`       // user code (see Options)
	// Inlined is true for frames expanded from inline data (all but the
	// last of a chain).
	Inlined bool `json:"inlined,omitempty"`
	// Wrapper is the compiler-generated wrapper (a method value "-fm", a
	// pointer-receiver or interface wrapper) that was resolved to Function.
	Wrapper string `json:"wrapper,omitempty"`
}

// FuncInfo is a function of a binary, by file (link-time) address.
type FuncInfo struct {
	Name      string
	Entry     uint64 // first instruction
	End       uint64 // one past the last instruction
	StartLine int
}

// Options configure symbolization.
type Options struct {
	// Include and Exclude are import path prefixes that add to or remove
	// from the user code, which is by default package main, the main
	// module and the modules replaced by a local directory (go.mod's
	// "=> ../handlers"). Exclude wins over everything; Include and the
	// main module win over the known frameworks and tracers
	// (KnownNonUser), which are not user code otherwise, not even when
	// replaced by a local copy. Vendored packages are user code only when
	// Include names them.
	Include, Exclude []string
	// PCCacheSize is the number of entries of each binary's lookup cache,
	// rounded up to a power of two: 0 means 4096, negative disables it.
	PCCacheSize int
}

// Binary is a Go executable opened for symbolization. Its methods are safe
// for concurrent use. The file stays mapped until the Binary is unreachable;
// nothing it returns points into the mapping.
type Binary struct {
	path   string
	id     string
	im     *image
	tab    *pclntab
	text   uint64
	gofunc []byte // funcdata from moduledata.gofunc on; nil without moduledata
	info   BuildInfo
	cls    classifier

	// Set up by the first lookup (once): interned names and files, bounded
	// tables of atomic pointers so lookups take no lock, and the funcID of
	// compiler-generated wrappers, which differs between Go versions (0
	// when unknown).
	once      sync.Once
	metas     []atomic.Pointer[funcMeta]
	files     []atomic.Pointer[fileEntry]
	wrapperID uint8
	wraps     sync.Map // wrapper entry offset -> wrapped function index, -1 if none
	funcIdx   sync.Map // "p.A" -> index of the function of that name, -1 if none
	decl      declCache

	mapped bool // data is a file mapping: guard reads against SIGBUS
	// mapping and unmap are Open's file mapping and the cleanup that
	// unmaps it when the Binary is collected; Close unmaps it at once.
	mapping []byte
	unmap   runtime.Cleanup
	closed  atomic.Bool

	cache    []atomic.Pointer[pcEntry]
	cacheLog uint
}

// funcMeta is the interned, split name of a function.
type funcMeta struct {
	nameOff           int32
	name, typ, method string
	user              bool
}

// fileEntry is an interned file name.
type fileEntry struct {
	off  uint32
	name string
}

// pcEntry is one cached lookup.
type pcEntry struct {
	pc     uint64
	frames []Frame
	err    error
}

// Open maps the Go ELF executable at path and reads its symbol tables. The
// path may be /proc/PID/exe or lie under /proc/PID/root.
func Open(path string, opts Options) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size <= 0 || size != int64(int(size)) {
		return nil, fmt.Errorf("open %s: size %d: %w", path, size, ErrNotGo)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	b, err := newMapped(path, data, opts)
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if b.id == "" {
		b.id = statID(st)
	}
	b.mapping = data
	b.unmap = runtime.AddCleanup(b, func(d []byte) { syscall.Munmap(d) }, data)
	return b, nil
}

// Close unmaps the file of a Binary from Open now rather than when the
// garbage collector finds the Binary unreachable: a deleted executable
// stays pinned, and its pages counted, as long as it is mapped. The caller
// must make sure nothing uses the Binary any more (Frames returned before
// stay valid: they hold copies). Closing twice, or a Binary not from Open,
// does nothing.
func (b *Binary) Close() error {
	if b.mapping == nil || b.closed.Swap(true) {
		return nil
	}
	b.unmap.Stop()
	if err := syscall.Munmap(b.mapping); err != nil {
		return fmt.Errorf("unmap %s: %w", b.id, err)
	}
	return nil
}

// newMapped is newBinary for a mapped file, with faults turned to errors.
func newMapped(path string, data []byte, opts Options) (b *Binary, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	b, err = newBinary(path, data, opts)
	if b != nil {
		b.mapped = true
	}
	return b, err
}

// recoverFault turns the panic of a fault on the mapped file into an error:
// a file truncated while mapped raises SIGBUS on access, which
// debug.SetPanicOnFault makes a panic. Other panics continue.
func recoverFault(err *error) {
	if r := recover(); r != nil {
		*err = faultError(r)
	}
}

// faultError returns the error for a recovered fault, and panics again with
// any other value.
func faultError(r any) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("read mapped file at %#x: file changed while in use: %w", f.Addr(), ErrCorrupt)
	}
	panic(r)
}

// statID identifies a file without a build ID by device, inode, size and
// modification time.
func statID(st os.FileInfo) string {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("file:%d:%d:%d:%d", s.Dev, s.Ino, s.Size, st.ModTime().UnixNano())
	}
	return fmt.Sprintf("file:%s:%d:%d", st.Name(), st.Size(), st.ModTime().UnixNano())
}

// NewBinary reads a Go ELF executable held in data (which must not be
// modified afterwards). It is Open without the file system; name is used in
// messages only.
func NewBinary(name string, data []byte, opts Options) (*Binary, error) {
	b, err := newBinary(name, data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

func newBinary(path string, data []byte, opts Options) (*Binary, error) {
	im, err := newImage(data)
	if err != nil {
		return nil, err
	}
	sect, pcln, ok := im.section(".gopclntab")
	if !ok {
		return nil, fmt.Errorf("no .gopclntab section: %w", ErrNotGo)
	}
	tab, err := parsePclntab(pcln)
	if err != nil {
		return nil, err
	}
	b := &Binary{
		path: path,
		im:   im,
		tab:  tab,
	}
	b.info.PclntabSize = len(pcln)
	b.info.Funcs = tab.nfunc
	md, mdErr := im.findModuledata(tab, sect.Addr)
	if errors.Is(mdErr, ErrUnsupported) {
		// Without gofunc the inline tree and wrapper targets are out of
		// reach: lookups would return wrong frames rather than none.
		var bi BuildInfo
		im.readBuildInfo(&bi)
		return nil, fmt.Errorf("%s binary: %w", cmp.Or(bi.GoVersion, "unknown Go version"), mdErr)
	}
	if mdErr == nil {
		b.text, b.info.TextSource = md.text, "moduledata"
		b.gofunc = im.rest(md.gofunc)
		nb := (md.maxpc - md.minpc + funcTabBucketSize - 1) / funcTabBucketSize
		if fft, ok := im.read(md.findfunctab, nb*findFuncBucketLen); ok && md.maxpc-md.minpc < 1<<32 {
			tab.findfunctab, tab.minpcOff = fft, md.minpc-md.text
		}
	} else if a, ok := im.symbol("runtime.text"); ok {
		b.text, b.info.TextSource = a, "runtime.text"
	} else if tab.go118 && tab.textStart != 0 {
		b.text, b.info.TextSource = tab.textStart, "pcheader"
	} else if s := im.f.Section(".text"); s != nil {
		b.text, b.info.TextSource = s.Addr, ".text"
	} else {
		return nil, fmt.Errorf("no text start (moduledata, runtime.text or .text): %w", ErrCorrupt)
	}
	b.info.TextStart = b.text
	im.readBuildInfo(&b.info)
	if s := im.f.Section(".text"); s != nil && s.Addr != b.text {
		b.info.ExternalLink = true // the linker put C start-up code before Go's text
	}
	b.id = b.info.BuildID
	if b.id == "" {
		if g := im.gnuBuildID(); g != "" {
			b.id = "gnu:" + g
		}
	}
	b.cls = newClassifier(&b.info, opts.Include, opts.Exclude)
	if n := opts.PCCacheSize; n >= 0 {
		if n == 0 {
			n = 4096
		}
		for 1<<b.cacheLog < max(n, 2) {
			b.cacheLog++
		}
		b.cache = make([]atomic.Pointer[pcEntry], 1<<b.cacheLog)
	}
	return b, nil
}

// Path returns the path the binary was opened from.
func (b *Binary) Path() string { return b.path }

// ID returns the binary's identity: its Go build ID, else its GNU build ID
// ("gnu:..."), else device, inode, size and mtime ("file:...").
func (b *Binary) ID() string { return b.id }

// Info returns the binary's build facts and modules.
func (b *Binary) Info() BuildInfo { return b.info }

// TextStart returns the address the function table's offsets count from.
func (b *Binary) TextStart() uint64 { return b.text }

// FileOffset returns the file offset of a file (link-time) address, as
// uprobes attach by inode and offset.
func (b *Binary) FileOffset(addr uint64) (uint64, bool) { return b.im.fileOffset(addr) }

// Code returns a copy of the machine code of f, for disassembly.
func (b *Binary) Code(f FuncInfo) (code []byte, err error) {
	if b.mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer recoverFault(&err)
	}
	if f.End < f.Entry {
		return nil, fmt.Errorf("function %s: end %#x before entry %#x", f.Name, f.End, f.Entry)
	}
	c, ok := b.im.read(f.Entry, f.End-f.Entry)
	if !ok {
		return nil, fmt.Errorf("function %s: code at %#x not in the file", f.Name, f.Entry)
	}
	return bytes.Clone(c), nil
}

// SplitName is the package-level SplitName refined with what the binary
// says. A closure made by a function B inlined into function A is named
// "p.A.B.func1" after A, like a closure in method B of value type A: it is
// split as declared, "q.B.func1" with q the package of B, which the inline
// tree of A and the closure's own source file tell; A is a type only if
// the binary has no function "p.A".
func (b *Binary) SplitName(name string) (pkg, typ, method string) {
	if d := b.declName(name); d != "" {
		return SplitName(d)
	}
	pkg, typ, method = splitName(name)
	if pkg == "" {
		return pkg, typ, method
	}
	if typ == pkg || strings.IndexByte(method, '.') < 0 || len(method)+1 > len(name) {
		return pkg, printName(typ), printName(method)
	}
	a := name[:len(name)-len(method)-1] // "p.A"
	if !strings.HasSuffix(a, ")") && !strings.HasSuffix(a, "]") && b.hasFunc(a) {
		typ, method = pkg, typ[len(pkg)+1:]+"."+method
	}
	return pkg, printName(typ), printName(method)
}

// IsUser reports whether the function named funcName is user code: whether
// the package that declares it is (see Options).
func (b *Binary) IsUser(funcName string) bool {
	pkg, _, _ := b.SplitName(funcName)
	return b.cls.isUserPkg(pkg)
}

// Funcs yields every function of the binary in address order.
func (b *Binary) Funcs() iter.Seq[FuncInfo] {
	return func(yield func(FuncInfo) bool) {
		for i := 0; i < b.tab.nfunc; i++ {
			fi, ok := b.funcInfo(i)
			if ok && !yield(fi) {
				return
			}
		}
	}
}

func (b *Binary) funcInfo(i int) (fi FuncInfo, ok bool) {
	if b.mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				faultError(r) // panics again unless a fault
				fi, ok = FuncInfo{}, false
			}
		}()
	}
	f, ok := b.tab.funcAt(i)
	if !ok {
		return FuncInfo{}, false
	}
	name, _ := b.tab.funcName(f.nameOff)
	return FuncInfo{
		Name:      string(name),
		Entry:     b.text + uint64(f.entry),
		End:       b.text + uint64(f.end),
		StartLine: int(f.startLine),
	}, true
}

// Func returns the function with the exact symbol name. It scans the table
// (a few hundred microseconds for 15k functions) rather than keep an index
// in memory; to find many names, range over Funcs once.
func (b *Binary) Func(name string) (FuncInfo, bool) {
	if i, ok := b.funcIndex(name); ok {
		return b.funcInfo(i)
	}
	return FuncInfo{}, false
}

func (b *Binary) funcIndex(name string) (i int, ok bool) {
	if b.mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				faultError(r) // panics again unless a fault
				i, ok = 0, false
			}
		}()
	}
	for i := 0; i < b.tab.nfunc; i++ {
		_, off := b.tab.ftabEntry(i)
		if uint64(off)+8 > uint64(len(b.tab.funcdata)) {
			continue
		}
		nameOff := int32(le32(b.tab.funcdata[off+4:]))
		if n, ok := b.tab.funcName(nameOff); ok && string(n) == name {
			return i, true
		}
	}
	return 0, false
}

// Lookup symbolizes a file (link-time) address. It returns the chain of
// frames at pc, innermost (inlined) first and the physical function last.
// With isReturn the address is a return address and is looked up at pc-1.
// The returned slice is shared and must not be modified.
func (b *Binary) Lookup(pc uint64, isReturn bool) ([]Frame, error) {
	if isReturn {
		pc--
	}
	if b.cache == nil {
		return b.lookupNew(pc)
	}
	// Two-way set associative: the newest entry in the even slot, the one
	// it displaced in the odd slot. Each slot is replaced atomically.
	set := (pc * 0x9e3779b97f4a7c15) >> (64 - b.cacheLog) &^ 1
	if e := b.cache[set].Load(); e != nil && e.pc == pc {
		return e.frames, e.err
	}
	if e := b.cache[set+1].Load(); e != nil && e.pc == pc {
		return e.frames, e.err
	}
	frames, err := b.lookupNew(pc)
	if old := b.cache[set].Swap(&pcEntry{pc: pc, frames: frames, err: err}); old != nil {
		b.cache[set+1].Store(old)
	}
	return frames, err
}

// AppendLookup appends the frames of pc to dst and returns the extended
// slice, as Lookup does but without its cache: with room in dst it does not
// allocate.
func (b *Binary) AppendLookup(dst []Frame, pc uint64, isReturn bool) ([]Frame, error) {
	if isReturn {
		pc--
	}
	n := len(dst)
	out, err := b.appendGuarded(dst, pc)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// lookupNew returns the frames of pc in a new slice of the exact size.
func (b *Binary) lookupNew(pc uint64) ([]Frame, error) {
	var buf [8]Frame
	frames, err := b.appendGuarded(buf[:0], pc)
	if err != nil {
		return nil, err
	}
	return append(make([]Frame, 0, len(frames)), frames...), nil
}

// appendGuarded is appendFrames with faults on the mapped file turned into
// errors.
func (b *Binary) appendGuarded(dst []Frame, pc uint64) (_ []Frame, err error) {
	if !b.mapped {
		return b.appendFrames(dst, pc)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverFault(&err)
	return b.appendFrames(dst, pc)
}

// maxInlineDepth bounds inline-tree walks on corrupt data.
const maxInlineDepth = 128

func (b *Binary) appendFrames(dst []Frame, pc uint64) ([]Frame, error) {
	if pc < b.text {
		return nil, fmt.Errorf("%#x: %w", pc, ErrNoFunc)
	}
	i, ok := b.tab.find(pc - b.text)
	if !ok {
		return nil, fmt.Errorf("%#x: %w", pc, ErrNoFunc)
	}
	f, ok := b.tab.funcAt(i)
	if !ok {
		return nil, fmt.Errorf("%#x: function %d: bad _func record: %w", pc, i, ErrCorrupt)
	}
	off := uint32(pc - b.text)
	b.once.Do(b.initLookup)

	start := len(dst)
	var idBuf [8]uint8
	ids := idBuf[:0]
	if tree := b.inlineTree(&f); tree != nil {
		ix := b.tab.pcvalue(&f, f.pcdataOff(pcdataInlTreeIndex), off)
		for depth := 0; ix >= 0; depth++ {
			ic, ok := b.tab.inlinedCallAt(tree, ix)
			if !ok || depth == maxInlineDepth || ic.parentPc < 0 {
				return nil, fmt.Errorf("%#x: inline tree entry %d: %w", pc, ix, ErrCorrupt)
			}
			fr := b.frame(&f, ic.nameOff, off)
			fr.StartLine = int(ic.startLine)
			fr.Inlined = true
			dst = append(dst, fr)
			ids = append(ids, ic.funcID)
			off = f.entry + uint32(ic.parentPc)
			if off >= f.end {
				return nil, fmt.Errorf("%#x: inline parent pc %#x outside its function: %w", pc, ic.parentPc, ErrCorrupt)
			}
			ix = b.tab.pcvalue(&f, f.pcdataOff(pcdataInlTreeIndex), off)
		}
	}
	fr := b.frame(&f, f.nameOff, off)
	fr.StartLine = int(f.startLine)
	dst = append(dst, fr)
	ids = append(ids, f.funcID)
	n := b.resolveWrappers(dst[start:], ids, i, &f)
	return dst[:start+n], nil
}

// frame builds a frame for the function named at nameOff whose position is
// the one recorded for text offset off of the physical function f.
func (b *Binary) frame(f *fn, nameOff int32, off uint32) Frame {
	m := b.meta(nameOff)
	line := b.tab.pcvalue(f, f.pcln, off)
	if line < 0 {
		line = 0
	}
	return Frame{
		Function: m.name,
		File:     b.file(f, b.tab.pcvalue(f, f.pcfile, off)),
		Line:     int(line),
		Type:     m.typ,
		Method:   m.method,
		User:     m.user,
	}
}

// initLookup sizes the intern tables and learns the wrapper funcID on the
// first lookup, so binaries that are only inspected cost nothing.
func (b *Binary) initLookup() {
	b.metas = make([]atomic.Pointer[funcMeta], pow2(2*b.tab.nfunc, 256, 1<<20))
	b.files = make([]atomic.Pointer[fileEntry], pow2(2*b.tab.nfiles, 64, 1<<18))
	b.learnWrapperID()
}

// pow2 returns the power of two at least n, clamped to [lo, hi].
func pow2(n, lo, hi int) int {
	p := lo
	for p < n && p < hi {
		p <<= 1
	}
	return p
}

// The intern tables are two-way set associative tables of atomic pointers,
// like the PC cache: the newest entry in the even slot, the one it displaced
// in the odd one.
func internSet(key uint32, n int) uint32 { return (key * 0x9e3779b1) & uint32(n-1) &^ 1 }

// meta returns the interned, split name at nameOff.
func (b *Binary) meta(nameOff int32) *funcMeta {
	set := internSet(uint32(nameOff), len(b.metas))
	if m := b.metas[set].Load(); m != nil && m.nameOff == nameOff {
		return m
	}
	if m := b.metas[set+1].Load(); m != nil && m.nameOff == nameOff {
		return m
	}
	name := "?"
	if n, ok := b.tab.funcName(nameOff); ok {
		name = string(n)
	}
	pkg, typ, method := b.SplitName(name)
	m := &funcMeta{nameOff: nameOff, name: name, typ: typ, method: method, user: b.cls.isUserPkg(pkg)}
	if old := b.metas[set].Swap(m); old != nil {
		b.metas[set+1].Store(old)
	}
	return m
}

// file returns the interned name of file number fileno of f's compilation
// unit.
func (b *Binary) file(f *fn, fileno int32) string {
	off, ok := b.tab.fileOff(f, fileno)
	if !ok {
		return "?"
	}
	set := internSet(off, len(b.files))
	if e := b.files[set].Load(); e != nil && e.off == off {
		return e.name
	}
	if e := b.files[set+1].Load(); e != nil && e.off == off {
		return e.name
	}
	e := &fileEntry{off: off, name: "?"}
	if n, ok := cstring(b.tab.filetab, uint64(off)); ok {
		e.name = string(n)
	}
	if old := b.files[set].Swap(e); old != nil {
		b.files[set+1].Store(old)
	}
	return e.name
}

// inlineTree returns f's inline tree, which extends to the end of the
// readable data: its length is not recorded, the inline index bounds it.
func (b *Binary) inlineTree(f *fn) []byte {
	off, ok := f.funcdataOff(funcdataInlTree)
	if !ok || uint64(off) >= uint64(len(b.gofunc)) {
		return nil
	}
	return b.gofunc[off:]
}

const autogenerated = "<autogenerated>"

// isWrapper reports whether fr, of funcID id, is a compiler-generated
// wrapper.
func (b *Binary) isWrapper(fr *Frame, id uint8) bool {
	if b.wrapperID != 0 {
		return id == b.wrapperID // package init code is <autogenerated> too
	}
	return fr.File == autogenerated || strings.HasSuffix(fr.Function, "-fm")
}

// learnWrapperID finds the funcID of wrappers from a function that must be
// one: a method value wrapper "-fm" or a type equality function ("type:.eq."
// since Go 1.21, "type..eq." before).
func (b *Binary) learnWrapperID() {
	for i := 0; i < b.tab.nfunc; i++ {
		f, ok := b.tab.funcAt(i)
		if !ok || f.funcID == 0 {
			continue
		}
		n, ok := b.tab.funcName(f.nameOff)
		if ok && (bytes.HasSuffix(n, []byte("-fm")) || bytes.HasPrefix(n, []byte("type:.eq.")) || bytes.HasPrefix(n, []byte("type..eq."))) {
			b.wrapperID = f.funcID
			return
		}
	}
}

// resolveWrappers drops wrapper frames that call an inlined function, as
// runtime.CallersFrames does, and replaces an innermost wrapper frame by the
// function it wraps. It returns the new length of frames.
func (b *Binary) resolveWrappers(frames []Frame, ids []uint8, i int, f *fn) int {
	inner := frames[0].Function
	if len(frames) > 1 && inner != "runtime.gopanic" && inner != "runtime.sigpanic" && inner != "runtime.panicwrap" {
		out := frames[:1]
		for k, fr := range frames[1:] {
			if !b.isWrapper(&fr, ids[k+1]) {
				out = append(out, fr)
			}
		}
		frames = out
	}
	// Resolve method value and receiver wrappers only: go and defer
	// wrappers have their own source position, which is the better answer.
	if fr := &frames[0]; fr.Inlined || !b.isWrapper(fr, ids[0]) ||
		fr.File != autogenerated && !strings.HasSuffix(fr.Function, "-fm") {
		return len(frames)
	}
	wrapper := frames[0].Function
	for range 4 { // wrappers may wrap wrappers
		j := b.wrapped(i, f)
		if j < 0 {
			// The method may be inlined into its wrapper and have no
			// function of its own (generic methods' method values).
			if fr, ok := b.inlinedTarget(f, frames[0].Function); ok {
				fr.Wrapper = wrapper
				frames[0] = fr
			}
			break
		}
		g, ok := b.tab.funcAt(j)
		if !ok {
			break
		}
		fr := b.frame(&g, g.nameOff, g.entry)
		fr.StartLine = int(g.startLine)
		fr.Wrapper = wrapper
		frames[0] = fr
		if !b.isWrapper(&fr, g.funcID) {
			break
		}
		i, f = j, &g
	}
	return len(frames)
}

// wrapped returns the index of the function that wrapper function i calls,
// or -1: from FUNCDATA_WrapInfo (Go 1.21+), else by name ("X-fm" wraps X,
// "p.(*T).M" wraps "p.T.M").
func (b *Binary) wrapped(i int, f *fn) int {
	if j, ok := b.wraps.Load(f.entry); ok {
		return j.(int)
	}
	j := -1
	if off, ok := f.funcdataOff(funcdataWrapInfo); ok && uint64(off)+4 <= uint64(len(b.gofunc)) {
		w := le32(b.gofunc[off:])
		if k, ok := b.tab.find(uint64(w)); ok && k != i {
			if e, _ := b.tab.ftabEntry(k); e == w {
				j = k
			}
		}
	}
	if j < 0 {
		name := b.meta(f.nameOff).name
		if target := wrapperTarget(name); target != "" {
			if k, ok := b.funcIndex(target); ok {
				j = k
			}
		}
	}
	b.wraps.Store(f.entry, j)
	return j
}

// wrapperTarget returns the name of the function a wrapper calls, by the
// compiler's naming: "X-fm" wraps X, "p.(*T).M" wraps "p.T.M". It returns ""
// for other names.
func wrapperTarget(name string) string {
	var target string
	switch {
	case strings.HasSuffix(name, "-fm"):
		target = strings.TrimSuffix(name, "-fm")
	case strings.Contains(name, ".(*"):
		k := strings.Index(name, ".(*")
		if c := closeParen(name[k+1:]); c > 0 {
			target = name[:k+1] + name[k+3:k+1+c] + name[k+2+c:]
		}
	}
	if target == name {
		return ""
	}
	return target
}

// inlinedTarget returns the frame of the function that the wrapper f, named
// name, calls when that function is inlined into it: the entry of f's
// inline tree with the target's name, type arguments aside (a wrapper of
// Box[string] calls the Box[go.shape.string] instantiation). The frame is at
// the function's declaration line, as for a wrapped function of its own.
func (b *Binary) inlinedTarget(f *fn, name string) (Frame, bool) {
	target := wrapperTarget(name)
	if target == "" {
		return Frame{}, false
	}
	target = printName(target)
	for _, in := range b.inlinedFuncs(f) {
		if printName(in.name) != target {
			continue
		}
		m := b.meta(in.nameOff)
		return Frame{
			Function:  m.name,
			File:      in.file,
			Line:      in.startLine,
			StartLine: in.startLine,
			Type:      m.typ,
			Method:    m.method,
			User:      m.user,
		}, true
	}
	return Frame{}, false
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// Origin returns the frame as the probe-to-export contract carries it.
func (f Frame) Origin() origin.Frame {
	return origin.Frame{
		Function:  f.Function,
		File:      f.File,
		Line:      f.Line,
		StartLine: f.StartLine,
		Type:      f.Type,
		Method:    f.Method,
	}
}
