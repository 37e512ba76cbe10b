//go:build !linux

package hostmem

import "fmt"

// Mapped reports whether Alloc maps memory itself here: elsewhere it is
// the Go heap.
const Mapped = false

// Alloc returns n zeroed bytes from the Go heap (n > 0).
func Alloc(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("allocate %d bytes", n)
	}
	return make([]byte, n), nil
}

// Free drops b to the GC.
func Free(b []byte) error { return nil }

// populate: only Linux faults pages in by madvise.
func populate(b []byte) bool { return false }
