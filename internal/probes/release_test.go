package probes

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/probes/discover"
	"github.com/originagent/originagent/internal/testutil"
)

// mapsMention reports whether /proc/self/maps names path.
func mapsMention(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), path)
}

// TestReleaseBinaryOnLastExit runs two processes of a binary that is then
// deleted (a deployment replacing it): the engine must keep the binary
// mapped while one of them runs, and unmap it (and drop its analysis) when
// the last one exits, without waiting for a garbage collection.
func TestReleaseBinaryOnLastExit(t *testing.T) {
	testutil.RequireRoot(t)
	built := e2eservices.Build(t, e2eservices.NetHTTPV2)
	bin := filepath.Join(t.TempDir(), "release-target")
	data, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	agent := e2eservices.NewAgent(t)
	env := []string{"DD_TRACE_AGENT_URL=" + agent.URL, "DD_INSTRUMENTATION_TELEMETRY_ENABLED=false"}
	a := e2eservices.Start(t, bin, env...)
	b := e2eservices.Start(t, bin, env...)

	e, err := New(DefaultConfig(), newRecorder(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	e.Start(processOf(a.PID), discover.Decision{Selected: true})
	e.Start(processOf(b.PID), discover.Decision{Selected: true})
	if n := len(e.Processes()); n != 2 {
		t.Fatalf("attached %d processes, want 2", n)
	}
	if !mapsMention(t, bin) {
		t.Fatalf("%s not mapped while attached", bin)
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}

	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	e.Exit(a.PID)
	if !mapsMention(t, bin) {
		t.Fatalf("%s unmapped while pid %d still runs it", bin, b.PID)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	e.Exit(b.PID)
	if mapsMention(t, bin) {
		t.Errorf("%s (deleted) still mapped after its last process exited", bin)
	}
	e.mu.Lock()
	nbins := len(e.bins)
	e.mu.Unlock()
	if nbins != 0 || e.cache.Len() != 0 {
		t.Errorf("%d binary analyses and %d cached binaries left, want none", nbins, e.cache.Len())
	}
}
