package symbolize

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCacheSharesAndBounds checks that copies of one executable share a
// Binary, that processes reach it through /proc/PID/exe, and that the cache
// holds no more than its bound.
func TestCacheSharesAndBounds(t *testing.T) {
	dir := t.TempDir()
	orig := corpusBinary(t, variants[0])
	cp := filepath.Join(dir, "copy")
	copyFile(t, orig, cp)

	c := NewCache(2, Options{})
	b1, err := c.Binary(orig)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := c.Binary(cp)
	if err != nil {
		t.Fatal(err)
	}
	if b1 != b2 {
		t.Error("two copies of one build (same build ID) got different Binaries")
	}

	// A running process of the copy resolves to the same Binary.
	cmd := exec.Command(cp, "-truth")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	p, err := OpenProcess(cmd.Process.Pid, c)
	if err != nil {
		t.Fatal(err)
	}
	if p.Binary() != b1 || p.PID() != cmd.Process.Pid {
		t.Error("process of a cached executable got another Binary")
	}
	if c.Len() != 1 {
		t.Errorf("cache holds %d binaries, want 1", c.Len())
	}

	// Two more distinct builds evict the least recently used.
	for _, v := range variants[1:3] {
		if _, err := c.Binary(corpusBinary(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 2 {
		t.Errorf("cache holds %d binaries, want its bound 2", c.Len())
	}
	b3, err := c.Binary(orig)
	if err != nil {
		t.Fatal(err)
	}
	if b3 == b1 {
		t.Error("evicted binary still returned")
	}
	// The evicted Binary stays usable by whoever holds it.
	if _, err := b1.Lookup(b1.text+1, false); err != nil {
		t.Error(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentLookup runs lookups from several goroutines through a small
// PC cache (run it with -race); every answer must equal the uncached one.
func TestConcurrentLookup(t *testing.T) {
	path := corpusBinary(t, variants[0])
	ref, err := Open(path, Options{PCCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path, Options{PCCacheSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	var pcs []uint64
	for f := range ref.Funcs() {
		pcs = append(pcs, f.Entry+(f.End-f.Entry)/2)
	}
	want := make([][]Frame, len(pcs))
	for i, pc := range pcs {
		want[i], _ = ref.Lookup(pc, false)
	}
	errc := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range pcs {
				k := (i*(g+1) + g*131) % len(pcs)
				got, _ := b.Lookup(pcs[k], false)
				if !equalFrames(got, want[k]) {
					errc <- fmt.Errorf("%#x: %v, want %v", pcs[k], got, want[k])
					return
				}
			}
			errc <- nil
		}()
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
