// Command basic is a corpus program for internal/gotypes: it builds context
// chains, http.Handler values and a few struct shapes, then prints (as JSON)
// the addresses of their type descriptors and itabs as file addresses, and
// their field offsets, as the running process sees them.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"time"
	"unsafe"

	"github.com/originagent/originagent/testdata/gotypes/internal/truth"
)

// Inner has padding between fields.
type Inner struct {
	A   uint8
	B   uint64
	Arr [3]uint16
	s   string
}

// Outer covers every kind of field.
type Outer struct {
	X    int32
	In   Inner
	P    *Inner
	S    []Inner
	M    map[string]*Outer
	Ch   chan<- int
	F    func(int, ...string) (string, error)
	E    error
	anon struct{ u, v int16 }
	*Named
	G G[Inner]
}

// Named is a named non-struct type with methods.
type Named int

// String makes Named a fmt.Stringer.
func (n Named) String() string { return fmt.Sprint(int(n)) }

// G is generic.
type G[T any] struct {
	v    T
	next *G[T]
}

// userCtx is a user context node: context.Context embedded as field 0.
type userCtx struct {
	context.Context
	reqID uint64
}

func (c *userCtx) Value(k any) any {
	if k == (ctxKey{}) {
		return c.reqID
	}
	return c.Context.Value(k)
}

type ctxKey struct{}

type handler struct{ name string }

// service is a statically initialized variable whose interface field holds
// a type descriptor, as a grpc.ServiceDesc's HandlerType does (DataRefs).
var service = serviceDesc{Name: "svc", HandlerType: (*serviceIface)(nil)}

type serviceDesc struct {
	Name        string
	HandlerType any
}

type serviceIface interface{ Serve() }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, h.name, r.Context().Value(ctxKey{}))
}

func run() error {
	r, err := truth.New()
	if err != nil {
		return err
	}
	bg := context.Background()
	v := context.WithValue(bg, ctxKey{}, 42)
	c, cancel := context.WithCancel(v)
	defer cancel()
	tc, cancel2 := context.WithTimeout(c, time.Hour)
	defer cancel2()
	wc := context.WithoutCancel(tc)
	stop := context.AfterFunc(tc, func() {})
	defer stop()
	var u context.Context = &userCtx{Context: wc, reqID: 7}
	for _, ctx := range []context.Context{bg, v, c, tc, wc, u} {
		truth.AddItab(r, ctx)
	}

	if reflect.TypeOf(service.HandlerType).Elem().NumMethod() != 1 {
		return fmt.Errorf("service %s: HandlerType %T", service.Name, service.HandlerType)
	}

	var h http.Handler = &handler{name: "h"}
	// Call through the interface: otherwise the linker's dead-code pass
	// drops the method and the itab points at runtime.unreachableMethod.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(u, "GET", "/", nil))
	truth.AddItab(r, h)
	truth.AddItab(r, http.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	truth.AddItab(r, http.Handler(http.NewServeMux()))
	truth.AddItab(r, fmt.Stringer(Named(3)))
	truth.AddItab(r, error(&os.PathError{}))

	r.AddType(reflect.TypeOf(&Outer{}), 4)
	r.AddType(reflect.TypeOf(&http.Request{}), 2)
	r.AddType(reflect.TypeOf(Inner{}), 2)
	r.AddType(reflect.TypeOf(map[string][]*Inner{}), 3)
	r.AddType(reflect.TypeOf([4][]chan int{}), 3)
	r.AddType(reflect.TypeOf(make(<-chan *Inner)), 3)
	r.AddType(reflect.TypeOf((func(context.Context, ...*http.Request) (http.Handler, error))(nil)), 1)

	var o Outer
	r.AddField("main.Outer", "In.B", unsafe.Offsetof(o.In)+unsafe.Offsetof(o.In.B))
	r.AddField("main.Outer", "anon.v", unsafe.Offsetof(o.anon)+unsafe.Offsetof(o.anon.v))
	r.AddField("main.Outer", "G", unsafe.Offsetof(o.G))
	r.AddField("main.userCtx", "reqID", unsafe.Offsetof(userCtx{}.reqID))
	return r.Print()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
