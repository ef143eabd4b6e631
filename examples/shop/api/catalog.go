package api

import (
	"net/http"
)

// Catalog serves the product catalog. It is a value type: the mux holds a
// copy, and ServeHTTP has a value receiver.
type Catalog struct {
	Store    *Store
	Currency string
}

// ServeHTTP answers GET /products and GET /products/{sku}.
func (c Catalog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Currency", c.Currency)
	sku := r.PathValue("sku")
	if sku == "" {
		writeJSON(w, http.StatusOK, c.Store.Products())
		return
	}
	p, err := c.Store.Product(sku)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such product")
		return
	}
	writeJSON(w, http.StatusOK, p)
}
