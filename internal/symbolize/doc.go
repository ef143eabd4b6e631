// Package symbolize turns program counters of Go executables into code
// origins: function, file, line, declaration line, type and method, with
// inlined frames expanded and compiler wrappers resolved.
//
// It reads only what every Go binary keeps: the pclntab, the moduledata and
// the build info. Binaries stripped with -ldflags='-s -w' or GNU strip,
// position-independent, externally linked (cgo) and -trimpath builds work
// alike; DWARF and .symtab are used only when present. Go 1.20 and later
// are fully supported, Go 1.18 and 1.19 without declaration lines.
//
// A Binary answers for file (link-time) addresses; a Process converts the
// runtime addresses of a running process first. A Cache shares Binaries
// between processes that run the same executable.
package symbolize
