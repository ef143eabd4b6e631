// Package e2eservices builds and runs the traced test services under
// testdata/services, the targets of originagent's end-to-end tests. Each
// service answers every route with the truth the tests compare against: the
// active span's IDs and the handler's symbol, file and declaration line, as
// the service itself sees them through dd-trace-go and the Go runtime.
package e2eservices

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/testbuild"
)

// Name identifies one service under testdata/services.
type Name string

// The services. NetHTTPV2 is part of the root module; NetHTTPV1 and
// FrameworksV1 have their own go.mod because dd-trace-go v1 cannot share a
// build list with v2's deps. FrameworksV1 serves gin, echo, chi,
// gorilla/mux, httprouter and fiber routers, each with its dd-trace-go v1 contrib
// integration, under their own path prefixes. FrameworksV2 serves the same
// routes (the files are shared) traced with dd-trace-go v2.12: its net/http
// contrib for chi, gorilla/mux and httprouter, and for gin, echo and fiber,
// whose v2 contrib modules the module proxy here does not serve, a minimal
// middleware doing what those contribs do around the real v2 tracer.
const (
	NetHTTPV2    Name = "nethttp-v2"
	NetHTTPV1    Name = "nethttp-v1"
	FrameworksV1 Name = "frameworks-v1"
	FrameworksV2 Name = "frameworks-v2"
	// GRPCV2 is a gRPC service (its own go.mod, with its generated code)
	// whose HTTP driver makes RPCs to itself: GET /call/KIND.
	GRPCV2 Name = "grpc-v2"
	// GRPCV1 is GRPCV2 traced by dd-trace-go v1.73, on grpc-go v1.70
	// (the oldest that dd-trace-go v1.73 builds with) with the
	// non-generic stream types of protoc-gen-go-grpc v1.3.
	GRPCV1 Name = "grpc-v1"
	// ConnectV2 is a connectrpc.com/connect service (its own go.mod, with
	// its generated code) traced by dd-trace-go v2.12's net/http
	// integration, whose HTTP driver makes RPCs to itself: GET /call/KIND.
	ConnectV2 Name = "connect-v2"
)

// Route is one handler shape and the symbol its truth must name.
type Route struct {
	Path     string
	Function string
	// NotInlined is the symbol when the compiler does not inline the
	// function that makes the handler (Go 1.27 for /closure); "" when
	// it is always Function.
	NotInlined string
}

// Names reports whether function is a symbol r's handler has.
func (r Route) Names(function string) bool {
	return function == r.Function || r.NotInlined != "" && function == r.NotInlined
}

// Routes lists every handler route the services serve with the symbol of
// the real handler behind it. /closure's symbol carries the name of the
// function newClosure is inlined into, as Go 1.26 names it.
var Routes = []Route{
	{"/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/value", "main.valueHandler.ServeHTTP", ""},
	{"/func", "main.funcHandler", ""},
	{"/closure", "main.routes.newClosure.func1", "main.newClosure.func1"},
	{"/method", "main.(*users).Get", ""},
	{"/mw", "main.protectedHandler", ""},
}

// FrameworkRoutes lists the routes of FrameworksV1: per framework a
// function, method values with pointer and value receivers, a closure from
// a constructor in another package (named after the function it is inlined
// into), an http.Handler struct through the framework's adapter, and
// handlers behind group and route middleware (fiber has no http.Handler
// route). Every route also runs user middleware.
var FrameworkRoutes = []Route{
	{"/gin/func", "main.ginFunc", ""},
	{"/gin/method", "main.(*store).ginGet", ""},
	{"/gin/value", "main.catalog.ginList", ""},
	{"/gin/closure", "main.ginRoutes.Gin.func2", ""},
	{"/gin/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/gin/group/mw", "main.ginGroupHandler", ""},
	{"/gin/group/method", "main.(*store).ginGet", ""},
	{"/echo/func", "main.echoFunc", ""},
	{"/echo/method", "main.(*store).echoGet", ""},
	{"/echo/value", "main.catalog.echoList", ""},
	{"/echo/closure", "main.echoRoutes.Echo.func2", ""},
	{"/echo/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/echo/group/mw", "main.echoGroupHandler", ""},
	{"/echo/group/method", "main.(*store).echoGet", ""},
	{"/chi/func", "main.httpFunc", ""},
	{"/chi/method", "main.(*store).httpGet", ""},
	{"/chi/value", "main.catalog.httpList", ""},
	{"/chi/closure", "main.chiRoutes.HTTP.func4", ""},
	{"/chi/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/chi/group/mw", "main.httpGroupHandler", ""},
	{"/chi/group/method", "main.(*store).httpGet", ""},
	{"/chi/inline", "main.httpGroupHandler", ""},
	{"/chi/mount/func", "main.httpFunc", ""},
	{"/mux/func", "main.httpFunc", ""},
	{"/mux/method", "main.(*store).httpGet", ""},
	{"/mux/value", "main.catalog.httpList", ""},
	{"/mux/closure", "main.muxRoutes.HTTP.func2", ""},
	{"/mux/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/mux/group/mw", "main.httpGroupHandler", ""},
	{"/mux/group/method", "main.(*store).httpGet", ""},
	{"/httprouter/func", "main.routerFunc", ""},
	{"/httprouter/method/7", "main.(*store).routerGet", ""},
	{"/httprouter/value", "main.catalog.routerList", ""},
	{"/httprouter/closure", "main.routerRoutes.Router.func1", ""},
	{"/httprouter/struct", "main.(*structHandler).ServeHTTP", ""},
	{"/httprouter/handlerfunc", "main.httpFunc", ""},
	{"/fiber/func", "main.fiberFunc", ""},
	{"/fiber/method", "main.(*store).fiberGet", ""},
	{"/fiber/value", "main.catalog.fiberList", ""},
	{"/fiber/closure", "main.fiberRoutes.Fiber.func2", ""},
	{"/fiber/group/mw", "main.fiberGroupHandler", ""},
	{"/fiber/group/method", "main.(*store).fiberGet", ""},
}

// RoutesOf returns the routes the service serves (the frameworks services
// share their source files, so the symbols are the same).
func RoutesOf(name Name) []Route {
	if name == FrameworksV1 || name == FrameworksV2 {
		return FrameworkRoutes
	}
	return Routes
}

// Truth is a service's answer on a handler route.
type Truth struct {
	TraceID  string `json:"trace_id"` // 32 hex digits, the full 128-bit ID
	SpanID   string `json:"span_id"`  // decimal
	Function string `json:"function"` // runtime.Func.Name of the handler
	File     string `json:"file"`     // as runtime.Func.FileLine reports it
	Line     int    `json:"line"`     // line of the handler's entry PC
	Route    string `json:"route"`
}

// RootDir returns the directory of the originagent module, found with
// `go env GOMOD` from the working directory (a package directory under go test).
func RootDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// Build compiles the service with the local toolchain and returns the
// binary's path. buildFlags go to `go build` before the package, e.g.
// "-ldflags=-s -w" or "-trimpath". Each distinct build happens once per test
// run and is shared by every test package (internal/testbuild): copy the
// binary before changing or removing it.
func Build(t testing.TB, name Name, buildFlags ...string) string {
	t.Helper()
	spec, err := Spec(name, "", buildFlags...)
	if err != nil {
		t.Fatal(err)
	}
	return testbuild.Build(t, spec)
}

// Spec returns the testbuild description of service name built by the Go
// toolchain of version toolchain ("" for the local one, else e.g.
// testutil.NewestGo) with buildFlags, for tests that build several variants
// at once (testbuild.BuildAll) or other toolchains.
func Spec(name Name, toolchain string, buildFlags ...string) (testbuild.Spec, error) {
	root, err := RootDir()
	if err != nil {
		return testbuild.Spec{}, err
	}
	spec := testbuild.Spec{Dir: root, Flags: buildFlags, Name: string(name), Toolchain: toolchain}
	switch name {
	case NetHTTPV2:
		spec.Pkg = "./testdata/services/nethttp-v2"
	case NetHTTPV1, FrameworksV1, FrameworksV2, GRPCV2, GRPCV1, ConnectV2:
		spec.Dir, spec.Pkg = filepath.Join(root, "testdata", "services", string(name)), "."
	default:
		return testbuild.Spec{}, fmt.Errorf("unknown service %q", name)
	}
	return spec, nil
}

// BuildPackage compiles the main package pkg of the originagent module
// (e.g. "./examples/shop") and returns the binary's path, once per test run
// as Build does.
func BuildPackage(t testing.TB, pkg string, buildFlags ...string) string {
	t.Helper()
	root, err := RootDir()
	if err != nil {
		t.Fatal(err)
	}
	return testbuild.Build(t, testbuild.Spec{Dir: root, Pkg: pkg, Flags: buildFlags})
}

// Service is a running test service.
type Service struct {
	// Addr is the host:port the service listens on.
	Addr string
	// PID is the service's process ID.
	PID int

	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error // exit status, valid once done is closed
	once   sync.Once
	tr     *http.Transport // this service's connections, closed by Stop
	client *http.Client
}

// Start runs bin listening on a free loopback port with env added to the
// test's environment (DD_TRACE_AGENT_URL, ...) and waits until it prints
// "listening on ADDR". The service is stopped when the test ends.
func Start(t testing.TB, bin string, env ...string) *Service {
	t.Helper()
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	s := &Service{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{}), tr: tr, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	s.PID = cmd.Process.Pid
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s: %v", bin, err)
		}
	})

	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok && !sent {
				addrc <- a
				sent = true
			}
		}
		if !sent {
			close(addrc)
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case a, ok := <-addrc:
		if !ok {
			<-s.done
			t.Fatalf("%s exited before listening: %v\n%s", bin, s.err, s.stderr)
		}
		s.Addr = a
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not print its address within 60s\n%s", bin, s.stderr)
	}
	return s
}

// Get requests route and decodes the service's truth.
func (s *Service) Get(ctx context.Context, route string) (Truth, error) {
	var tr Truth
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+route, nil)
	if err != nil {
		return tr, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return tr, fmt.Errorf("GET %s: %w", route, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tr, fmt.Errorf("GET %s: read body: %w", route, err)
	}
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("GET %s: %s: %s", route, resp.Status, body)
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return tr, fmt.Errorf("GET %s: decode %q: %w", route, body, err)
	}
	return tr, nil
}

// Stop sends SIGTERM and waits for the service to exit (killing it after
// 15 s, with a goroutine dump in the error). It returns an error unless the service exited with status 0.
// Stopping flushes the service's tracer. Calling Stop again returns the
// first result.
func (s *Service) Stop() error {
	s.once.Do(func() {
		select {
		case <-s.done:
			if s.err == nil {
				s.err = errors.New("exited with status 0 before being stopped")
			}
			s.err = fmt.Errorf("%w (before being stopped)\nstderr:\n%s", s.err, s.stderr)
			return
		default:
		}
		// The server's Shutdown waits up to 5 s for connections that never
		// sent a request (a transport's spare dial); close ours first.
		s.tr.CloseIdleConnections()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			s.err = fmt.Errorf("SIGTERM: %w", err)
		}
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			// SIGQUIT makes the Go runtime print every goroutine's stack
			// to stderr, which says where the shutdown hangs.
			_ = s.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
			s.err = errors.New("did not exit within 15s of SIGTERM; sent SIGQUIT")
		}
		if s.err != nil {
			s.err = fmt.Errorf("%w\nstderr:\n%s", s.err, s.stderr)
		}
	})
	return s.err
}

// Stderr returns what the service wrote to stderr so far (tracer logs).
func (s *Service) Stderr() string { return s.stderr.String() }

// lockedBuffer is written by the exec package's copier and read by tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
