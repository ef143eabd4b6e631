package api

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ErrNotFound is returned by the store for an unknown ID.
var ErrNotFound = errors.New("not found")

// User is a customer account.
type User struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	APIKey string `json:"-"`
}

// Product is a catalog entry; prices are in cents.
type Product struct {
	SKU   string `json:"sku"`
	Name  string `json:"name"`
	Price int64  `json:"price_cents"`
	Stock int    `json:"stock"`
}

// Item is a quantity of a product in a cart or an order.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Order is a placed order.
type Order struct {
	ID      string    `json:"id"`
	UserID  string    `json:"user_id"`
	Items   []Item    `json:"items"`
	Total   int64     `json:"total_cents"`
	Created time.Time `json:"created"`
}

// Store is the shop's in-memory database, safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	users    map[string]User
	products map[string]Product
	carts    map[string][]Item
	orders   []Order
	nextID   int
}

// NewStore returns a store seeded with a few users and products.
func NewStore() *Store {
	s := &Store{
		users:    map[string]User{},
		products: map[string]Product{},
		carts:    map[string][]Item{},
	}
	for _, u := range []User{
		{ID: "1", Name: "Ada Lovelace", Email: "ada@example.com", APIKey: "key-ada"},
		{ID: "2", Name: "Grace Hopper", Email: "grace@example.com", APIKey: "key-grace"},
		{ID: "3", Name: "Alan Turing", Email: "alan@example.com", APIKey: "key-alan"},
	} {
		s.users[u.ID] = u
	}
	for _, p := range []Product{
		{SKU: "mug", Name: "Gopher mug", Price: 1200, Stock: 100},
		{SKU: "tee", Name: "Gopher t-shirt", Price: 2500, Stock: 50},
		{SKU: "sticker", Name: "Sticker pack", Price: 300, Stock: 1000},
		{SKU: "plush", Name: "Gopher plush", Price: 1800, Stock: 20},
	} {
		s.products[p.SKU] = p
	}
	return s
}

// User returns the user with the given ID.
func (s *Store) User(id string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

// Users returns every user ordered by ID.
func (s *Store) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b User) int { return compareIDs(a.ID, b.ID) })
	return out
}

// UserByKey returns the user owning an API key.
func (s *Store) UserByKey(key string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if key != "" && u.APIKey == key {
			return u, true
		}
	}
	return User{}, false
}

// Product returns the product with the given SKU.
func (s *Store) Product(sku string) (Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[sku]
	if !ok {
		return Product{}, ErrNotFound
	}
	return p, nil
}

// Products returns the catalog ordered by SKU.
func (s *Store) Products() []Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Product, 0, len(s.products))
	for _, p := range s.products {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Product) int { return compareIDs(a.SKU, b.SKU) })
	return out
}

// AddToCart adds an item to a user's cart and returns the cart.
func (s *Store) AddToCart(userID string, it Item) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return nil, ErrNotFound
	}
	if _, ok := s.products[it.SKU]; !ok {
		return nil, ErrNotFound
	}
	cart := s.carts[userID]
	i := slices.IndexFunc(cart, func(c Item) bool { return c.SKU == it.SKU })
	if i >= 0 {
		cart[i].Quantity += it.Quantity
	} else {
		cart = append(cart, it)
	}
	s.carts[userID] = cart
	return slices.Clone(cart), nil
}

// Cart returns a user's cart.
func (s *Store) Cart(userID string) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(s.carts[userID]), nil
}

// ErrOutOfStock is returned when an order asks for more than is in stock.
var ErrOutOfStock = errors.New("out of stock")

// PlaceOrder prices the items, takes them from stock and records the order.
func (s *Store) PlaceOrder(userID string, items []Item, now time.Time) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for _, it := range items {
		p, ok := s.products[it.SKU]
		if !ok {
			return Order{}, ErrNotFound
		}
		if p.Stock < it.Quantity {
			return Order{}, ErrOutOfStock
		}
		total += p.Price * int64(it.Quantity)
	}
	for _, it := range items {
		p := s.products[it.SKU]
		p.Stock -= it.Quantity
		s.products[it.SKU] = p
	}
	s.nextID++
	o := Order{ID: strconv.Itoa(s.nextID), UserID: userID, Items: slices.Clone(items), Total: total, Created: now}
	s.orders = append(s.orders, o)
	delete(s.carts, userID)
	return o, nil
}

// Order returns an order by ID.
func (s *Store) Order(id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if o.ID == id {
			return o, nil
		}
	}
	return Order{}, ErrNotFound
}

// Orders returns a user's orders, oldest first.
func (s *Store) Orders(userID string) []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Order
	for _, o := range s.orders {
		if o.UserID == userID {
			out = append(out, o)
		}
	}
	return out
}

// compareIDs orders numeric IDs numerically and the rest lexically.
func compareIDs(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return x - y
	}
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}
