// Command frameworks is the per-framework overhead benchmark's target: one
// hello route per framework (net/http, chi, gorilla/mux, gin, echo,
// httprouter), each traced by its dd-trace-go v1.73 contrib with no other
// middleware, under its own path prefix, so that the probes' cost is as
// large a share of a request as it will ever be on that framework.
// GET /<framework>/hello answers "hello".
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/julienschmidt/httprouter"
	"github.com/labstack/echo/v4"
	gintrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/gin-gonic/gin"
	chitrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/go-chi/chi.v5"
	muxtrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/gorilla/mux"
	routertrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/julienschmidt/httprouter"
	echotrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/labstack/echo.v4"
	httptrace "gopkg.in/DataDog/dd-trace-go.v1/contrib/net/http"
	"gopkg.in/DataDog/dd-trace-go.v1/ddtrace/tracer"
)

var body = []byte("hello\n")

func helloHTTP(w http.ResponseWriter, _ *http.Request) { w.Write(body) }

func helloGin(c *gin.Context) { c.Writer.Write(body) }

func helloEcho(c echo.Context) error {
	_, err := c.Response().Write(body)
	return err
}

func helloRouter(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) { w.Write(body) }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	tracer.Start()
	defer tracer.Stop()

	top := http.NewServeMux()

	std := httptrace.NewServeMux(httptrace.WithServiceName("bench-nethttp"))
	std.HandleFunc("/nethttp/hello", helloHTTP)
	top.Handle("/nethttp/", std)

	c := chi.NewRouter()
	c.Use(chitrace.Middleware(chitrace.WithServiceName("bench-chi")))
	c.Get("/chi/hello", helloHTTP)
	top.Handle("/chi/", c)

	m := muxtrace.NewRouter(muxtrace.WithServiceName("bench-mux"))
	m.HandleFunc("/mux/hello", helloHTTP)
	top.Handle("/mux/", m)

	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.Use(gintrace.Middleware("bench-gin"))
	g.GET("/gin/hello", helloGin)
	top.Handle("/gin/", g)

	e := echo.New()
	e.Use(echotrace.Middleware(echotrace.WithServiceName("bench-echo")))
	e.GET("/echo/hello", helloEcho)
	top.Handle("/echo/", e)

	r := routertrace.New(routertrace.WithServiceName("bench-httprouter"))
	r.GET("/httprouter/hello", helloRouter)
	top.Handle("/httprouter/", r)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, top)
	fmt.Printf("listening on %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
