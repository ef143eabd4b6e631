package api

import (
	"log/slog"
	"net/http"
)

// Mux is what Register needs from a router: *http.ServeMux and
// dd-trace-go's traced ServeMux both provide it.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the shop's routes to mux. Every route runs behind the
// logging middleware, and the order routes behind authentication too.
func Register(mux Mux, s *Store, log *slog.Logger) {
	users := &Users{Store: s}
	catalog := Catalog{Store: s, Currency: "USD"}
	orders := &Orders{Store: s}
	cart := CartHandler(s)

	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /healthz", http.HandlerFunc(Health)},
		{"GET /users", http.HandlerFunc(users.List)},
		{"GET /users/{id}", http.HandlerFunc(users.Get)},
		{"GET /products", catalog},
		{"GET /products/{sku}", catalog},
		{"GET /carts/{user}", cart},
		{"POST /carts/{user}/items", cart},
		{"GET /orders", Authenticate(s, orders)},
		{"GET /orders/{id}", Authenticate(s, orders)},
		{"POST /orders", Authenticate(s, orders)},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, Logging(log, rt.h))
	}
}
