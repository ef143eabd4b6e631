package api

import (
	"errors"
	"net/http"
)

// CartHandler returns a closure answering GET /carts/{user} and
// POST /carts/{user}/items.
func CartHandler(s *Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		var (
			cart []Item
			err  error
		)
		switch r.Method {
		case http.MethodPost:
			var it Item
			if err := readJSON(w, r, &it); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			if it.Quantity <= 0 {
				writeError(w, http.StatusBadRequest, "quantity must be positive")
				return
			}
			cart, err = s.AddToCart(user, it)
		default:
			cart, err = s.Cart(user)
		}
		if errors.Is(err, ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such user or product")
			return
		}
		if cart == nil {
			cart = []Item{}
		}
		writeJSON(w, http.StatusOK, cart)
	}
}
