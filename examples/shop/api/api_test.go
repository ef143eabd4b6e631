package api

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, NewStore(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRoutes(t *testing.T) {
	srv := newServer(t)
	// The steps run in order against one store: later ones see earlier writes.
	steps := []struct {
		name, method, path, key, body string
		status                        int
		want                          string // substring of the response body
	}{
		{"health", "GET", "/healthz", "", "", 200, `"status":"ok"`},
		{"list users", "GET", "/users", "", "", 200, `"name":"Ada Lovelace"`},
		{"get user", "GET", "/users/2", "", "", 200, `"email":"grace@example.com"`},
		{"api key never leaks", "GET", "/users/1", "", "", 200, `"id":"1"`},
		{"unknown user", "GET", "/users/99", "", "", 404, "no such user"},
		{"catalog", "GET", "/products", "", "", 200, `"sku":"mug"`},
		{"product", "GET", "/products/tee", "", "", 200, `"price_cents":2500`},
		{"unknown product", "GET", "/products/nope", "", "", 404, "no such product"},
		{"empty cart", "GET", "/carts/1", "", "", 200, "[]"},
		{"add to cart", "POST", "/carts/1/items", "", `{"sku":"mug","quantity":2}`, 200, `"quantity":2`},
		{"add more", "POST", "/carts/1/items", "", `{"sku":"mug","quantity":1}`, 200, `"quantity":3`},
		{"cart bad json", "POST", "/carts/1/items", "", `{"sku":`, 400, "decode request body"},
		{"cart unknown field", "POST", "/carts/1/items", "", `{"sku":"mug","qty":1}`, 400, "unknown field"},
		{"cart zero quantity", "POST", "/carts/1/items", "", `{"sku":"mug","quantity":0}`, 400, "positive"},
		{"cart unknown user", "POST", "/carts/9/items", "", `{"sku":"mug","quantity":1}`, 404, "no such"},
		{"orders need a key", "GET", "/orders", "", "", 401, "X-API-Key"},
		{"orders reject bad key", "GET", "/orders", "bogus", "", 401, "X-API-Key"},
		{"no orders yet", "GET", "/orders", "key-ada", "", 200, "[]"},
		{"place order", "POST", "/orders", "key-ada", `{"items":[{"sku":"mug","quantity":2},{"sku":"sticker","quantity":1}]}`, 201, `"total_cents":2700`},
		{"order listed", "GET", "/orders", "key-ada", "", 200, `"id":"1"`},
		{"get order", "GET", "/orders/1", "key-ada", "", 200, `"user_id":"1"`},
		{"others' order hidden", "GET", "/orders/1", "key-grace", "", 404, "no such order"},
		{"out of stock", "POST", "/orders", "key-grace", `{"items":[{"sku":"plush","quantity":21}]}`, 409, "out of stock"},
		{"empty order", "POST", "/orders", "key-grace", `{"items":[]}`, 400, "at least one item"},
		{"unknown sku", "POST", "/orders", "key-grace", `{"items":[{"sku":"x","quantity":1}]}`, 404, "no such product"},
		{"wrong method", "DELETE", "/users/1", "", "", 405, ""},
	}
	for _, s := range steps {
		req, err := http.NewRequest(s.method, srv.URL+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.key != "" {
			req.Header.Set("X-API-Key", s.key)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.status || !bytes.Contains(body, []byte(s.want)) {
			t.Errorf("%s: %s %s = %d %s, want %d containing %q", s.name, s.method, s.path, resp.StatusCode, body, s.status, s.want)
		}
		if bytes.Contains(body, []byte("key-")) {
			t.Errorf("%s: response leaks an API key: %s", s.name, body)
		}
	}
}

func TestPlaceOrderTakesStock(t *testing.T) {
	s := NewStore()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o, err := s.PlaceOrder("3", []Item{{SKU: "plush", Quantity: 20}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if o.Total != 20*1800 || !o.Created.Equal(now) {
		t.Errorf("order = %+v", o)
	}
	if p, _ := s.Product("plush"); p.Stock != 0 {
		t.Errorf("stock after order = %d, want 0", p.Stock)
	}
	if _, err := s.PlaceOrder("3", []Item{{SKU: "plush", Quantity: 1}}, now); !errors.Is(err, ErrOutOfStock) {
		t.Errorf("second order: err = %v, want ErrOutOfStock", err)
	}
	if n := len(s.Orders("3")); n != 1 {
		t.Errorf("user 3 has %d orders, want 1", n)
	}
}
