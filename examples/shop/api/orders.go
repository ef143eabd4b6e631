package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
)

// Orders serves orders for the authenticated user. It is registered as a
// pointer and implements http.Handler with a pointer receiver.
type Orders struct {
	Store *Store
	// Now returns the time orders are stamped with; nil means time.Now.
	Now func() time.Time
}

// ServeHTTP answers GET /orders, GET /orders/{id} and POST /orders.
func (o *Orders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, ok := UserFromContext(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "missing or unknown X-API-Key")
		return
	}
	switch {
	case r.Method == http.MethodPost:
		o.place(w, r, user)
	case r.PathValue("id") != "":
		ord, err := o.Store.Order(r.PathValue("id"))
		if err != nil || ord.UserID != user.ID {
			writeError(w, http.StatusNotFound, "no such order")
			return
		}
		writeJSON(w, http.StatusOK, ord)
	default:
		orders := o.Store.Orders(user.ID)
		if orders == nil {
			orders = []Order{}
		}
		writeJSON(w, http.StatusOK, orders)
	}
}

type placeRequest struct {
	Items []Item `json:"items"`
}

func (o *Orders) place(w http.ResponseWriter, r *http.Request, user User) {
	var req placeRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Items) == 0 {
		writeError(w, http.StatusBadRequest, "an order needs at least one item")
		return
	}
	for _, it := range req.Items {
		if it.Quantity <= 0 {
			writeError(w, http.StatusBadRequest, "quantity must be positive")
			return
		}
	}
	// A child span, as services commonly add around their business logic:
	// code origin belongs on the request's entry span, not on this one.
	span, _ := tracer.StartSpanFromContext(r.Context(), "shop.place_order", tracer.ResourceName("place_order"))
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	ord, err := o.Store.PlaceOrder(user.ID, req.Items, now().UTC())
	span.Finish(tracer.WithError(err))
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no such product")
	case errors.Is(err, ErrOutOfStock):
		writeError(w, http.StatusConflict, "out of stock")
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusCreated, ord)
	}
}
