package hostmem

import (
	"fmt"
	"syscall"
)

// Mapped reports whether Alloc maps memory itself here (so a caller that
// must pin it, the GPU backend, can register it with the driver).
const Mapped = true

// Alloc maps n zeroed bytes (n > 0) of anonymous private memory, asking
// for transparent huge pages.
func Alloc(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("map %d bytes", n)
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", n, err)
	}
	// Advice only: where THP is off the pages are 4 KiB and all works.
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
	return b, nil
}

// Free unmaps b (a whole buffer from Alloc). nil does nothing.
func Free(b []byte) error {
	if b == nil {
		return nil
	}
	if err := syscall.Munmap(b); err != nil {
		return fmt.Errorf("unmap %d bytes: %w", len(b), err)
	}
	return nil
}

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14; the syscall
// package predates it).
const madvPopulateWrite = 23

// populate faults in every page of b (fresh memory: page-aligned parts of
// one mapping) for writing, and reports whether the kernel did; an older
// kernel answers EINVAL and the caller writes to each page instead.
func populate(b []byte) bool {
	return len(b) > 0 && syscall.Madvise(b, madvPopulateWrite) == nil
}
