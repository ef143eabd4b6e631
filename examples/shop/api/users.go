package api

import (
	"errors"
	"net/http"
)

// Users serves the user directory. Its methods are registered as method
// values (mux.HandleFunc("GET /users/{id}", users.Get)).
type Users struct {
	Store *Store
}

// List answers GET /users.
func (u *Users) List(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, u.Store.Users())
}

// Get answers GET /users/{id}.
func (u *Users) Get(w http.ResponseWriter, r *http.Request) {
	user, err := u.Store.User(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	writeJSON(w, http.StatusOK, user)
}
