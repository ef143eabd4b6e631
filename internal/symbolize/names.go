package symbolize

import (
	"strings"
)

// SplitName splits a Go symbol name into the import path of its package
// (with the linker's %2e escapes of dots undone), the Code Origin type and
// the method:
//
//	github.com/acme/shop/api.(*Users).Get  -> api path, "github.com/acme/shop/api.Users", "Get"
//	github.com/acme/shop/api.Users.Count   -> api path, "github.com/acme/shop/api.Users", "Count"
//	main.usersHandler                      -> "main", "main", "usersHandler"
//	github.com/acme/shop/api.Routes.func1  -> api path, "github.com/acme/shop/api", "Routes.func1"
//	github.com/acme/shop/api.(*List[go.shape.int]).Push -> api path, "github.com/acme/shop/api.List[...]", "Push"
//
// Type arguments are printed "[...]", as runtime.Func.Name and stack traces
// print them: the binary has the code of an instantiation for a shape of
// type arguments (go.shape.string stands for every type whose underlying
// type is string), not for the type arguments of the call.
//
// From the name alone "p.A.B.func1" is a closure in method B of value type
// A; Binary.SplitName also knows when A is a function (the closure was made
// by B inlined into A) and is the one to use for a binary's symbols.
//
// A name that is not a package-qualified symbol (linker-generated names such
// as "type:.eq.[2]string") gives an empty package and type, and the whole
// name as the method.
func SplitName(name string) (pkg, typ, method string) {
	pkg, typ, method = splitName(name)
	if pkg == "" {
		return pkg, typ, method // linker names: "type:.eq.[2]string"
	}
	return pkg, printName(typ), printName(method)
}

// printName is runtime.funcNameForPrint: type arguments become "[...]".
func printName(name string) string {
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	j := strings.LastIndexByte(name, ']')
	if j <= i {
		return name
	}
	return name[:i] + "[...]" + name[j+1:]
}

// splitName is SplitName with the type arguments left in.
func splitName(name string) (pkg, typ, method string) {
	pkgEnd := packageEnd(name)
	if pkgEnd < 0 {
		return "", "", name
	}
	pkg = unescapePath(name[:pkgEnd])
	rest := name[pkgEnd+1:]
	if strings.HasPrefix(rest, "(*") {
		if i := closeParen(rest); i > 0 && i+1 < len(rest) && rest[i+1] == '.' {
			return pkg, pkg + "." + rest[2:i], rest[i+2:]
		}
		return pkg, pkg, rest
	}
	if strings.HasPrefix(rest, "glob.") {
		return pkg, pkg, rest // closures in package-level initializers
	}
	// T.M is a value-receiver method unless the second element is a closure
	// or compiler-generated suffix of a function (F.func1, F.gowrap1,
	// init.0, F.deferwrap1).
	if i := dotOutsideBrackets(rest); i > 0 && i+1 < len(rest) && !isClosureElem(rest[i+1:]) {
		return pkg, pkg + "." + rest[:i], rest[i+1:]
	}
	return pkg, pkg, rest
}

// packageEnd returns the index of the dot that ends the package path of a
// symbol name, or -1. Brackets of generic instantiations may contain dots
// and slashes, so only the part before the first '[' is searched.
func packageEnd(name string) int {
	head := name
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	slash := strings.LastIndexByte(head, '/')
	dot := strings.IndexByte(head[slash+1:], '.')
	if dot <= 0 {
		return -1
	}
	if strings.IndexByte(head[:slash+1+dot], ':') >= 0 {
		return -1 // type:.eq.T, go:buildid and other linker names
	}
	return slash + 1 + dot
}

// closeParen returns the index of the ')' that closes the receiver that
// starts s ("(*T[...]).M"), skipping bracketed type arguments.
func closeParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ')':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// dotOutsideBrackets returns the index of the first '.' of s outside square
// brackets, or -1.
func dotOutsideBrackets(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// isClosureElem reports whether the path element(s) s after a function name
// are compiler-generated: funcN, gowrapN, deferwrapN, or a number.
func isClosureElem(s string) bool {
	if i := dotOutsideBrackets(s); i >= 0 {
		s = s[:i]
	}
	for _, p := range [...]string{"func", "gowrap", "deferwrap", "rangefunc"} {
		if strings.HasPrefix(s, p) {
			s = s[len(p):]
			break
		}
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unescapePath undoes the linker's escaping of import paths in symbol names
// (cmd/internal/objabi.PathToPrefix): "gopkg.in/yaml%2ev3" -> "gopkg.in/yaml.v3".
func unescapePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if v, ok := unhex(p[i+1]); ok {
				if w, ok := unhex(p[i+2]); ok {
					b.WriteByte(v<<4 | w)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// KnownNonUser returns the import path prefixes of the web frameworks,
// tracers and extension modules originagent knows. Their code is not user
// code, even when a module vendors them or replaces them by a local copy,
// unless it is the main module's or an include prefix names it.
func KnownNonUser() []string { return append([]string(nil), knownNonUser[:]...) }

var knownNonUser = [...]string{
	"net/http",
	"github.com/DataDog",
	"gopkg.in/DataDog",
	"github.com/gin-gonic/gin",
	"github.com/labstack/echo",
	"github.com/go-chi/chi",
	"github.com/gorilla/mux",
	"google.golang.org/grpc",
	"github.com/gofiber/fiber",
	"golang.org/x",
}

// classifier decides whether a package is user code.
type classifier struct {
	mainModule string
	// local are the modules replaced by a directory (a sibling module of
	// a multi-module repository), others the rest of the dependencies: a
	// package belongs to the longest module path that prefixes it.
	local, others []string
	include       []string
	exclude       []string
}

// newClassifier returns the classifier of a binary built with info.
func newClassifier(info *BuildInfo, include, exclude []string) classifier {
	c := classifier{mainModule: info.Main.Path, include: include, exclude: exclude}
	for _, d := range info.Deps {
		if d.Replace != nil && isLocalPath(d.Replace.Path) {
			c.local = append(c.local, d.Path)
		} else {
			c.others = append(c.others, d.Path)
		}
	}
	return c
}

// isLocalPath reports whether a replacement module path is a directory
// (go.mod's "=> ../handlers"), which is what cmd/go accepts as one.
func isLocalPath(p string) bool {
	return strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") ||
		p == "." || p == ".."
}

// isUserPkg reports whether package path pkg is user code. In order:
// exclude prefixes are not; vendored packages are only if an include prefix
// names them; include prefixes, package main and the main module's
// packages are; the known frameworks and tracers are not; packages of
// modules replaced by a local directory are; nothing else is.
func (c *classifier) isUserPkg(pkg string) bool {
	if pkg == "" || hasPathPrefix(pkg, c.exclude) {
		return false
	}
	if strings.Contains(pkg, "/vendor/") {
		return hasPathPrefix(pkg, c.include) // vendored code is a dependency
	}
	if hasPathPrefix(pkg, c.include) || pkg == "main" {
		return true
	}
	switch c.moduleOf(pkg) {
	case modMain:
		return true
	case modLocal:
		return !hasPathPrefix(pkg, knownNonUser[:])
	}
	return false
}

// Kinds of module a package belongs to.
const (
	modNone = iota
	modMain
	modLocal
)

// moduleOf returns the kind of the module of pkg: the one with the longest
// path that is pkg or a prefix of it, as nested modules take their own
// directories out of the enclosing module.
func (c *classifier) moduleOf(pkg string) int {
	kind, n := modNone, 0
	if m := c.mainModule; m != "" && m != "command-line-arguments" && len(m) > n && inModule(pkg, m) {
		kind, n = modMain, len(m)
	}
	for _, m := range c.local {
		if len(m) > n && inModule(pkg, m) {
			kind, n = modLocal, len(m)
		}
	}
	for _, m := range c.others {
		if len(m) > n && inModule(pkg, m) {
			kind, n = modNone, len(m)
		}
	}
	return kind
}

// inModule reports whether package pkg lies in the module with path mod.
func inModule(pkg, mod string) bool {
	return pkg == mod || strings.HasPrefix(pkg, mod) && pkg[len(mod)] == '/'
}

// hasPathPrefix reports whether path equals one of prefixes or lies below
// one of them. A prefix ending in "/" or "." matches any continuation.
func hasPathPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "" || !strings.HasPrefix(path, p) {
			continue
		}
		if len(path) == len(p) || path[len(p)] == '/' || strings.HasSuffix(p, "/") || strings.HasSuffix(p, ".") {
			return true
		}
	}
	return false
}
