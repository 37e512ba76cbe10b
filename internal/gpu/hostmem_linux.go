package gpu

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
)

// mapHost maps n bytes of anonymous private memory for AllocHost to pin,
// asking for transparent huge pages: a 2 MiB page is one fault instead of
// 512, and fewer, larger pages are also cheaper to lock.
func mapHost(n int64) ([]byte, error) {
	if int64(int(n)) != n {
		return nil, fmt.Errorf("map %d bytes: too large", n)
	}
	buf, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", n, err)
	}
	// Advice only: without THP the pages are 4 KiB and all still works.
	_ = syscall.Madvise(buf, 14) // MADV_HUGEPAGE
	return buf, nil
}

func unmapHost(buf []byte) error { return syscall.Munmap(buf) }

// touchPages writes one byte of every 4 KiB page of buf, split over the
// cores, so the kernel backs the whole buffer before it is pinned: page
// faults run in parallel here instead of one after another in the driver.
func touchPages(buf []byte) {
	const page = 4096
	const minPart = 64 << 20 // below this a goroutine costs more than it saves
	parts := min(runtime.GOMAXPROCS(0), max(1, len(buf)/minPart))
	part := (len(buf)/parts + page - 1) / page * page
	var wg sync.WaitGroup
	for off := 0; off < len(buf); off += part {
		wg.Add(1)
		go func(b []byte) {
			defer wg.Done()
			for i := 0; i < len(b); i += page {
				b[i] = 0
			}
		}(buf[off:min(off+part, len(buf))])
	}
	wg.Wait()
}
