package probes

// A framework describes how to find one web framework's dispatch points in a
// binary: which functions to probe and how the BPF program finds the handler
// and the request there. Adding a framework means adding a description and,
// when its calling convention differs from net/http's, a probe kind in
// bpf/origin.c; discovery, attach, symbolization and export stay as they are.
type framework struct {
	// name is what status and logs call it.
	name string
	// targets returns the functions to probe, or nil when the binary does
	// not use the framework.
	targets func(a *analysis) ([]target, error)
}

// target is one function to probe.
type target struct {
	framework string
	name      string // symbol, for logs and status
	entry     uint64 // file virtual address of the function's first instruction
	kind      uint8  // kindHandlerFunc or kindMethod
}

// frameworks lists what originagent knows, in probe order.
func frameworks() []framework {
	return []framework{netHTTP()}
}

// netHTTP probes the standard library's net/http:
//   - net/http.HandlerFunc.ServeHTTP, whose receiver is the handler function
//     (plain functions, closures and method values registered with
//     HandleFunc or converted with http.HandlerFunc);
//   - every user-code ServeHTTP reachable through an http.Handler itab
//     (struct handlers, with value receivers through their pointer wrapper).
//
// Both have the same register layout at the probe: RAX the receiver, RBX/RCX
// the ResponseWriter, RDI the *http.Request.
func netHTTP() framework {
	return framework{
		name: "net/http",
		targets: func(a *analysis) ([]target, error) {
			const handlerFunc = "net/http.HandlerFunc.ServeHTTP"
			entry, ok := a.funcEntry(handlerFunc)
			if !ok {
				return nil, nil
			}
			ts := []target{{name: handlerFunc, entry: entry, kind: kindHandlerFunc}}
			seen := map[uint64]bool{entry: true}
			for _, it := range a.itabs {
				if it.iface != "net/http.Handler" || len(it.fun) == 0 {
					continue
				}
				fn := it.fun[0]
				if fn == 0 || seen[fn] {
					continue
				}
				name, ok := a.funcName(fn)
				if !ok || !a.isUser(name) {
					continue
				}
				seen[fn] = true
				ts = append(ts, target{name: name, entry: fn, kind: kindMethod})
			}
			return ts, nil
		},
	}
}
