// Package health is a corpus package for internal/symbolize whose only
// function is inlined into its caller, so the binary keeps no function of
// this package but the closure Health returns, named after the caller
// (main.exercise.Health.func1).
package health

// Health returns a handler closure, as handler factories do.
func Health(version string) func(string) string {
	return func(s string) string { return "ok " + version + " " + s }
}
