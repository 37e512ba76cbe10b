// Package hostmem allocates large, long-lived host buffers outside the Go
// heap, as anonymous mappings with transparent huge pages asked for, and
// faults buffers in on every core (Touch).
//
// The GPU backend maps its pinned buffers here and registers them with the
// driver (cuMemHostAlloc faults pages in on one thread: ~1 GB/s on the
// H200 VM). The CPU backend only uses Touch: its slot buffers on huge
// pages measured no faster for the chunk-major scatter on the 2-core dev
// VM (end-to-end / ceiling per CPU second 0.35-0.39 against 0.52 on 4 KiB
// pages, orca2 lz4, alternating runs), so they stay on the Go heap.
//
// The memory holds bytes only (never Go pointers: the GC does not scan
// it), and must not be used after Free: the owner's life cycle
// (stage.Life) guarantees that.
package hostmem
