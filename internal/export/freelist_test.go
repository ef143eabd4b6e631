package export

import "testing"

func TestFreeList(t *testing.T) {
	var zero freeList[int]
	a := zero.get()
	zero.put(a) // dropped: the zero value keeps nothing
	if zero.get() == a {
		t.Error("zero value returned a put value")
	}

	made := 0
	l := newFreeList(2, func() *int { made++; return new(int) })
	x, y, z := l.get(), l.get(), l.get()
	if made != 3 {
		t.Fatalf("allocated %d, want 3", made)
	}
	l.put(x)
	l.put(y)
	l.put(z) // beyond capacity: dropped
	got := map[*int]bool{l.get(): true, l.get(): true}
	if !got[x] || !got[y] || made != 3 {
		t.Errorf("reuse: got %v of x=%p y=%p, %d allocated", got, x, y, made)
	}
	if l.get(); made != 4 {
		t.Errorf("empty list did not allocate (%d allocated)", made)
	}
}
