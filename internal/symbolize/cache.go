package symbolize

import (
	"container/list"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Cache shares Binaries between the processes that run the same executable,
// keyed by the binary's identity, and keeps at most a fixed number of them
// (least recently used first out). It is safe for concurrent use.
type Cache struct {
	max  int
	opts Options

	mu     sync.Mutex
	lru    *list.List               // of *cacheEntry, most recent first
	byID   map[string]*list.Element // Binary.ID() -> entry
	byStat map[statKey]*list.Element
}

type cacheEntry struct {
	b     *Binary
	stats []statKey
}

// statKey identifies a file version cheaply, before it is opened.
type statKey struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// NewCache returns a cache of at most maxBinaries binaries (at least 1),
// each opened with opts.
func NewCache(maxBinaries int, opts Options) *Cache {
	return &Cache{
		max:    max(maxBinaries, 1),
		opts:   opts,
		lru:    list.New(),
		byID:   make(map[string]*list.Element),
		byStat: make(map[statKey]*list.Element),
	}
}

// Binary returns the Binary of the executable at path, which may be
// /proc/PID/exe or lie under /proc/PID/root. Files with the same build ID
// share one Binary even when they are different copies, as in containers.
func (c *Cache) Binary(path string) (*Binary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("stat %s: no device and inode", path)
	}
	key := statKey{dev: uint64(sys.Dev), ino: sys.Ino, size: st.Size(), mtime: st.ModTime()}
	c.mu.Lock()
	if e, ok := c.byStat[key]; ok {
		c.lru.MoveToFront(e)
		b := e.Value.(*cacheEntry).b
		c.mu.Unlock()
		return b, nil
	}
	c.mu.Unlock()

	// Open outside the lock: it maps and parses the file.
	b, err := Open(path, c.opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[b.ID()]; ok {
		ce := e.Value.(*cacheEntry)
		ce.stats = append(ce.stats, key)
		c.byStat[key] = e
		c.lru.MoveToFront(e)
		return ce.b, nil
	}
	e := c.lru.PushFront(&cacheEntry{b: b, stats: []statKey{key}})
	c.byID[b.ID()] = e
	c.byStat[key] = e
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		ce := old.Value.(*cacheEntry)
		c.lru.Remove(old)
		delete(c.byID, ce.b.ID())
		for _, k := range ce.stats {
			delete(c.byStat, k)
		}
	}
	return b, nil
}

// Remove forgets the binary with the given ID and returns it (nil when not
// held), so that the caller, knowing it is no longer used, may Close it.
func (c *Cache) Remove(id string) *Binary {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil
	}
	ce := e.Value.(*cacheEntry)
	c.lru.Remove(e)
	delete(c.byID, id)
	for _, k := range ce.stats {
		delete(c.byStat, k)
	}
	return ce.b
}

// Len returns the number of binaries held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
