package export

// freeList keeps up to cap(c) released values for reuse. Unlike a sync.Pool
// it keeps them across garbage collections: the proxy's buffers and walker
// state grow to the size of its payloads, and its HTTP traffic makes
// collections frequent enough that a sync.Pool would have them rebuilt for
// most payloads (BenchmarkProxy's v1.0 CPU ratio went from 5.0-5.6 to
// 4.5-4.6 with this list). The zero value allocates every time.
type freeList[T any] struct {
	c     chan *T
	alloc func() *T // nil: new(T)
}

func newFreeList[T any](n int, alloc func() *T) freeList[T] {
	return freeList[T]{c: make(chan *T, n), alloc: alloc}
}

func (l *freeList[T]) get() *T {
	select {
	case v := <-l.c:
		return v
	default:
	}
	if l.alloc != nil {
		return l.alloc()
	}
	return new(T)
}

// put keeps v unless the list is full.
func (l *freeList[T]) put(v *T) {
	select {
	case l.c <- v:
	default:
	}
}
