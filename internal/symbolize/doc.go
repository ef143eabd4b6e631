// Package symbolize turns program counters of Go executables into code
// origins: function, file, line, declaration line, type and method, with
// inlined frames expanded and compiler wrappers resolved.
//
// It reads only what every Go binary keeps: the pclntab, the moduledata and
// the build info. Binaries stripped with -ldflags='-s -w' or GNU strip,
// position-independent, externally linked (cgo) and -trimpath builds work
// alike; DWARF and .symtab are used only when present. Go 1.20 to 1.27 are
// fully supported (1.26 and 1.27 tested against the runtime's own answers),
// Go 1.18 and 1.19 without declaration lines.
//
// The moduledata gives the text start, the runtime's bucket index and
// gofunc, the base of the funcdata offsets that the inline tree and the
// wrapper information (FUNCDATA_WrapInfo) use: with a wrong gofunc, inline
// chains and wrapper targets come out wrong. Its layout is recognised from
// the data itself (the pclntab magic, then which layout's types, etypes,
// rodata and gofunc words are consistent), not from the version string; a
// moduledata no known layout fits, as a future Go's may not, makes Open fail
// with ErrUnsupported naming the binary's Go version.
//
// What Go 1.27 changed for this package (runtime/symtab.go,
// cmd/link/internal/ld): moduledata gained typedesclen after types and
// itaboffset and itabsize after etypes, which moves rodata and gofunc from
// words 39-40 to 42-43; the typelinks and itablinks slices are gone (past
// gofunc, so they moved nothing read here); type descriptors and itabs sit
// in a .go.type section (.data.rel.ro.go.type in PIE) instead of .rodata or
// .data.rel.ro, and .typelink and .itablink are gone. The pclntab format
// (magic 0xfffffff1, _func, inline tree, startLine), runtime/symtabinl.go
// and cmd/link/internal/ld/pcln.go are unchanged from Go 1.26, and so are
// the build info and .go.module. The compiler inlines differently, which
// changes closure names (Go 1.26's api.Counters.newCounter.func1 is
// api.newCounter.func1 in 1.27) but not how they are read.
//
// A Binary answers for file (link-time) addresses; a Process converts the
// runtime addresses of a running process first. A Cache shares Binaries
// between processes that run the same executable.
package symbolize
