// Package store is a dependency-like package inside the main module.
package store

import "strconv"

// DB is a toy key-value store.
type DB struct{ m map[string]string }

// New returns a DB with n entries.
func New(n int) *DB {
	db := &DB{m: make(map[string]string, n)}
	for i := 0; i < n; i++ {
		db.m["u"+strconv.Itoa(i)] = "user-" + strconv.Itoa(i)
	}
	return db
}

// Lookup is inlinable and inlines get.
func (db *DB) Lookup(k string) string { return db.get(k) }

func (db *DB) get(k string) string {
	if v, ok := db.m[k]; ok {
		return v
	}
	return "?"
}
