package symbolize

import (
	"path"
	"runtime/debug"
	"strings"
	"sync"
)

// This file finds where compiler-named functions were declared: closures
// made by a function inlined into another function (the compiler names
// them after the function they were compiled into, "main.main.Health.func3"
// for the closure of api.Health inlined into main.main), and the methods
// that method value wrappers call when the method was inlined into the
// wrapper. The name alone does not say which package declared the closure;
// the binary does, and these functions read it from there.

// declCache holds what was learned about declarations, per binary.
type declCache struct {
	names sync.Map // closure name -> declared name ("" if not an inlined closure)

	filesOnce sync.Once
	filePkg   map[string]string // own file of declared functions -> package, "" if several
	dirPkg    map[string]string // directory of those files -> package, "" if several
}

// pcRange is a run of text offsets [start, end) with one pc-value.
type pcRange struct {
	start, end uint32
	val        int32
}

// pcRanges decodes the whole pc-value table at pctab offset off of f, as
// pcvalue does for one pc, and calls yield for each run until it returns
// false. Corrupt tables end the walk.
func (t *pclntab) pcRanges(f *fn, off uint32, yield func(pcRange) bool) {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return
	}
	p := t.pctab[off:]
	cur := f.entry
	val := int32(-1)
	for first := true; cur < f.end; first = false {
		uv, n := uvarint(p)
		if n <= 0 || uv == 0 && !first {
			return
		}
		p = p[n:]
		val += int32(-(uv & 1) ^ (uv >> 1))
		pcd, n := uvarint(p)
		if n <= 0 {
			return
		}
		p = p[n:]
		next := min(uint64(cur)+uint64(pcd)*uint64(t.quantum), uint64(f.end))
		if !yield(pcRange{cur, uint32(next), val}) {
			return
		}
		cur = uint32(next)
	}
}

// ownFile returns the file of f's own code (outside inlined calls): the
// file of the first pc whose inline index is -1, else of the entry.
func (b *Binary) ownFile(f *fn) string {
	at := f.entry
	if b.inlineTree(f) != nil {
		b.tab.pcRanges(f, f.pcdataOff(pcdataInlTreeIndex), func(r pcRange) bool {
			if r.val < 0 {
				at = r.start
				return false
			}
			return true
		})
	}
	return b.file(f, b.tab.pcvalue(f, f.pcfile, at))
}

// inlinedFunc is a function inlined into a physical function, as its
// inline tree and pc tables record it.
type inlinedFunc struct {
	nameOff   int32
	name      string
	file      string // file of the inlined body
	startLine int
}

// inlinedFuncs returns the distinct functions of f's inline tree that own
// at least one pc of f, with the file of their code there.
func (b *Binary) inlinedFuncs(f *fn) []inlinedFunc {
	tree := b.inlineTree(f)
	if tree == nil {
		return nil
	}
	var out []inlinedFunc
	seen := map[int32]bool{}
	b.tab.pcRanges(f, f.pcdataOff(pcdataInlTreeIndex), func(r pcRange) bool {
		if r.val < 0 || seen[r.val] || len(seen) >= 1<<14 {
			return true
		}
		seen[r.val] = true
		ic, ok := b.tab.inlinedCallAt(tree, r.val)
		if !ok {
			return true
		}
		// The raw name, not meta's: splitting it may come back here.
		name, ok := b.tab.funcName(ic.nameOff)
		if !ok {
			return true
		}
		out = append(out, inlinedFunc{
			nameOff:   ic.nameOff,
			name:      string(name),
			file:      b.file(f, b.tab.pcvalue(f, f.pcfile, r.start)),
			startLine: int(ic.startLine),
		})
		return true
	})
	return out
}

// declName returns the name under which the closure named name was
// declared ("example.com/ledger/internal/api.Health.func3" for
// "main.main.Health.func3"), or "" when name is not a closure made by an
// inlined function or the binary does not tell where it was declared.
func (b *Binary) declName(name string) (d string) {
	if pe := packageEnd(name); pe < 0 || !hasCompilerElem(name[pe+1:]) {
		return "" // not a closure: no need to cache the answer
	}
	if v, ok := b.decl.names.Load(name); ok {
		return v.(string)
	}
	if b.mapped {
		// IsUser and SplitName read the file too: a fault is no answer.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				faultError(r) // panics again unless a fault
				d = ""
			}
		}()
	}
	d = b.findDecl(name)
	b.decl.names.Store(name, d)
	return d
}

func (b *Binary) findDecl(name string) string {
	pkgEnd := packageEnd(name)
	if pkgEnd < 0 {
		return ""
	}
	file, line := "", 0 // the closure's own, read when needed
	// The function the closure was compiled into is a prefix of its name,
	// followed by the bare names of the inlined calls and the closure's
	// suffix: try each prefix that is a function of the binary, shortest
	// first.
	for i := pkgEnd + 1; i < len(name); i++ {
		switch name[i] {
		case '[', '(':
			k := matchClose(name[i:])
			if k < 0 {
				return ""
			}
			i += k // skip type arguments and receivers
			continue
		case '.':
		default:
			continue
		}
		outer, rest := name[:i], name[i+1:]
		if isClosureSuffix("." + rest) {
			return "" // "p.F.func1": a closure of F, not of an inlined call
		}
		if strings.HasSuffix(outer, ")") || !b.hasFunc(outer) {
			continue
		}
		if file == "" {
			self, ok := b.funcIndex(name)
			if !ok {
				return ""
			}
			cf, ok := b.tab.funcAt(self)
			if !ok {
				return ""
			}
			b.once.Do(b.initLookup)
			file, line = b.ownFile(&cf), int(cf.startLine)
			if file == autogenerated || file == "?" {
				return ""
			}
		}
		j, _ := b.funcIndexCached(outer)
		of, ok := b.tab.funcAt(j)
		if !ok {
			continue
		}
		if d := b.declFromInlineTree(&of, rest, file, line); d != "" {
			return d
		}
		if isClosureElem(rest) {
			continue // "p.F.func1.Health.1": the outer may be F.func1
		}
		// Without an inline tree entry (the binary may lack one where the
		// closure is made), the package that declares functions in the
		// closure's file or directory.
		if pkg := b.pkgOfFile(file); pkg != "" {
			return pkg + "." + rest
		}
		return ""
	}
	return ""
}

// hasFunc reports whether the binary has a function named name.
func (b *Binary) hasFunc(name string) bool {
	_, ok := b.funcIndexCached(name)
	return ok
}

// funcIndexCached is funcIndex with the answer cached: the table scan
// costs a few hundred microseconds.
func (b *Binary) funcIndexCached(name string) (int, bool) {
	v, ok := b.funcIdx.Load(name)
	if !ok {
		i, found := b.funcIndex(name)
		if !found {
			i = -1
		}
		v, _ = b.funcIdx.LoadOrStore(name, i)
	}
	return v.(int), v.(int) >= 0
}

// matchClose returns the index of the bracket or parenthesis that closes
// the one s starts with, or -1.
func matchClose(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// declFromInlineTree finds in the inline tree of outer the function whose
// body made the closure: rest (the closure's name after outer) ends with its
// bare name and a closure suffix, and its inlined code lies in the closure's
// own file, above the closure. It returns that function's name with the
// closure suffix, or "".
func (b *Binary) declFromInlineTree(outer *fn, rest, file string, line int) string {
	best, bestLine := "", -1
	for _, in := range b.inlinedFuncs(outer) {
		if in.file != file || in.startLine > line || in.startLine <= bestLine {
			continue
		}
		pe := packageEnd(in.name)
		if pe < 0 {
			continue
		}
		bare := in.name[pe+1:]
		// rest is "A.B.bare" + suffix, or "bare" + suffix.
		k := strings.LastIndex(rest, bare)
		if k < 0 || k > 0 && rest[k-1] != '.' {
			continue
		}
		suffix := rest[k+len(bare):]
		if !isClosureSuffix(suffix) {
			continue
		}
		best, bestLine = in.name+suffix, in.startLine
	}
	return best
}

// isClosureSuffix reports whether s is what the compiler appends to a
// function's name for its closures: ".funcN", ".gowrapN", ".deferwrapN",
// "-rangeN", each possibly followed by ".N" for nested closures.
func isClosureSuffix(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		switch {
		case strings.HasPrefix(s, "-range"):
			s = s[len("-range"):]
		case strings.HasPrefix(s, "."):
			s = s[1:]
			for _, p := range [...]string{"func", "gowrap", "deferwrap"} {
				if strings.HasPrefix(s, p) {
					s = s[len(p):]
					break
				}
			}
		default:
			return false
		}
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		s = s[n:]
	}
	return true
}

// pkgOfFile returns the package that declares the functions whose own code
// is in file, else in file's directory (a directory holds one package), or
// "" when no declared function is there or several packages are.
func (b *Binary) pkgOfFile(file string) string {
	b.decl.filesOnce.Do(b.indexFiles)
	if p, ok := b.decl.filePkg[file]; ok {
		return p
	}
	return b.decl.dirPkg[path.Dir(file)]
}

// indexFiles maps the own files of declared functions (not closures, not
// wrappers) to their packages. It reads every function's tables once.
func (b *Binary) indexFiles() {
	b.decl.filePkg, b.decl.dirPkg = map[string]string{}, map[string]string{}
	b.once.Do(b.initLookup)
	add := func(m map[string]string, k, pkg string) {
		if old, ok := m[k]; ok && old != pkg {
			m[k] = ""
		} else {
			m[k] = pkg
		}
	}
	for i := 0; i < b.tab.nfunc; i++ {
		f, ok := b.tab.funcAt(i)
		if !ok || f.funcID != 0 {
			continue // runtime special functions and wrappers
		}
		n, ok := b.tab.funcName(f.nameOff)
		if !ok {
			continue
		}
		name := string(n)
		pkg, _, method := SplitName(name)
		if pkg == "" || hasCompilerElem(method) {
			continue
		}
		file := b.ownFile(&f)
		if file == autogenerated || file == "?" {
			continue
		}
		add(b.decl.filePkg, file, pkg)
		add(b.decl.dirPkg, path.Dir(file), pkg)
	}
}

// hasCompilerElem reports whether a method or function name has an element
// the compiler made up (a closure, go or defer wrapper, init.N, or a
// method value wrapper), whose package may not be the one of its file.
func hasCompilerElem(method string) bool {
	if strings.HasSuffix(method, "-fm") || strings.Contains(method, "-range") {
		return true
	}
	for i := 0; i < len(method); {
		j := dotOutsideBrackets(method[i:])
		if j < 0 {
			return false
		}
		i += j + 1
		if isClosureElem(method[i:]) {
			return true
		}
	}
	return false
}
