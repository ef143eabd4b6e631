package export

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// budget counts the bytes of trace payload buffers in use, so that a burst
// of large payloads cannot take the process past its memory limit.
type budget struct {
	mu        sync.Mutex
	used, max int64
}

// tryAcquire reserves n bytes if they fit.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// force reserves n bytes that are already allocated, even past the limit:
// the enriched copy of a payload is only known once it is built.
func (b *budget) force(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// MemoryLimit returns the process's memory limit in bytes: the Go runtime's
// soft limit (GOMEMLIMIT) when set, else the cgroup's memory limit (v2
// memory.max or v1 memory.limit_in_bytes), whichever is lower; 0 when none
// is set.
func MemoryLimit() int64 {
	limit := int64(0)
	if l := debug.SetMemoryLimit(-1); l > 0 && l != math.MaxInt64 {
		limit = l
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max" (v2) and a huge page-rounded MaxInt64 (v1) mean no limit.
		if err != nil || v <= 0 || v >= math.MaxInt64/2 {
			continue
		}
		if limit == 0 || v < limit {
			limit = v
		}
		break
	}
	return limit
}

// DefaultBufferBudgetFor returns the buffer budget for a memory limit: a
// quarter of it, which leaves the rest to the probe engine's binaries and
// symbol tables, the record store and the garbage collector's headroom; with
// no limit (0), DefaultBufferBudget.
func DefaultBufferBudgetFor(memLimit int64) int64 {
	if memLimit <= 0 {
		return DefaultBufferBudget
	}
	return max(memLimit/4, 4<<20)
}
