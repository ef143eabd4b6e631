// Package api is the ginshop's HTTP API: handlers of several shapes (a
// function, method values with pointer and value receivers, a closure from
// a constructor), in groups and behind middleware, as gin services write
// them.
package api

import (
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// Book is one title on the shelf.
type Book struct {
	ISBN   string `json:"isbn"`
	Title  string `json:"title"`
	Author string `json:"author"`
}

// Shelf holds the books, safe for concurrent use.
type Shelf struct {
	mu    sync.Mutex
	books map[string]Book
}

// NewShelf returns a shelf with a few books on it.
func NewShelf() *Shelf {
	s := &Shelf{books: map[string]Book{}}
	for _, b := range []Book{
		{"9780262510875", "Structure and Interpretation of Computer Programs", "Abelson"},
		{"9780134190440", "The Go Programming Language", "Donovan"},
		{"9780201633610", "Design Patterns", "Gamma"},
	} {
		s.books[b.ISBN] = b
	}
	return s
}

// Register adds the routes to r: public reads, and writes in an admin
// group behind RequireKey.
func Register(r *gin.Engine, s *Shelf) {
	r.Use(RequestID())
	r.GET("/healthz", Health)
	r.GET("/books", s.List)
	r.GET("/books/:isbn", s.Get)
	r.GET("/authors/:name", Authors(s))
	admin := r.Group("/admin", RequireKey("key-ada"))
	admin.POST("/books", s.Add)
	admin.DELETE("/books/:isbn", Catalog{Shelf: s}.Remove)
}

// Health reports that the service is up.
func Health(c *gin.Context) {
	c.String(http.StatusOK, "ok\n")
}

// List returns every book, ordered by ISBN.
func (s *Shelf) List(c *gin.Context) {
	s.mu.Lock()
	out := make([]Book, 0, len(s.books))
	for _, b := range s.books {
		out = append(out, b)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ISBN < out[j].ISBN })
	c.JSON(http.StatusOK, out)
}

// Get returns one book.
func (s *Shelf) Get(c *gin.Context) {
	s.mu.Lock()
	b, ok := s.books[c.Param("isbn")]
	s.mu.Unlock()
	if !ok {
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": "no such book"})
		return
	}
	c.JSON(http.StatusOK, b)
}

// Add puts a book on the shelf.
func (s *Shelf) Add(c *gin.Context) {
	var b Book
	if err := c.ShouldBindJSON(&b); err != nil || b.ISBN == "" {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": "want a book with an isbn"})
		return
	}
	s.mu.Lock()
	s.books[b.ISBN] = b
	s.mu.Unlock()
	c.JSON(http.StatusCreated, b)
}

// Authors returns the handler listing an author's books (matched
// case-insensitively by name).
func Authors(s *Shelf) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := strings.ToLower(c.Param("name"))
		var out []Book
		s.mu.Lock()
		for _, b := range s.books {
			if strings.ToLower(b.Author) == name {
				out = append(out, b)
			}
		}
		s.mu.Unlock()
		c.JSON(http.StatusOK, out)
	}
}

// Catalog is the admin view of a shelf.
type Catalog struct{ Shelf *Shelf }

// Remove takes a book off the shelf.
func (k Catalog) Remove(c *gin.Context) {
	k.Shelf.mu.Lock()
	delete(k.Shelf.books, c.Param("isbn"))
	k.Shelf.mu.Unlock()
	c.Status(http.StatusNoContent)
}
