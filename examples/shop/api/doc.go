// Package api holds the shop's HTTP handlers, its in-memory store and its
// middleware. The handlers deliberately use every shape net/http allows
// (pointer- and value-receiver ServeHTTP, plain function, closure, method
// value) because that is what real services do.
package api
