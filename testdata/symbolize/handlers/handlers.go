// Package handlers is a corpus module for internal/symbolize: a sibling
// module of shop that shop's go.mod replaces by its directory
// (=> ../handlers), as multi-module repositories do.
package handlers

import "strings"

// Hello is a handler in the sibling module.
//
//go:noinline
func Hello(s string) string { return "hello " + strings.TrimSpace(s) }

// Greeter returns a closure, inlined into its caller in another module.
func Greeter(greeting string) func(string) string {
	return func(s string) string { return greeting + " " + Hello(s) }
}
