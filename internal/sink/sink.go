package sink

import "io"

// Sink is where a store's files go. Keys use "/" and are relative to the
// store root ("zarr.json", "c/0/1/2").
//
// A Sink is used from one goroutine at a time (the delivery worker, or the
// producer at depth 1); the implementations need no locking of their own
// beyond what their test hooks require.
type Sink interface {
	// Create starts a new file at key. Its errors, like File's, need not
	// name the key; Put's do. Its bytes become visible under key
	// only when Commit succeeds; until then readers see the previous
	// content of key or nothing.
	Create(key string) (File, error)
	// Put writes a small file atomically (Create, Write, Commit).
	Put(key string, data []byte) error
	// Close releases the sink. Files not committed are removed.
	Close() error
}

// File is a file being written. Commit or Abort must be called exactly
// once; both are safe to call again afterwards (they then do nothing).
//
// Abort, unlike the other methods, may also be called from another
// goroutine while a Write or Commit is in progress or blocked (a stalled
// disk or network): it interrupts that call, which then returns an error,
// and nothing becomes visible. This is how a pipeline tears down within a
// bounded time whatever the sink is doing.
//
// Errors from a File's methods need not name the key; the caller adds it
// ("write shard c/0/1: no space left on device").
type File interface {
	io.Writer
	// Commit makes the file visible under its key, complete.
	Commit() error
	// Abort drops the file; nothing becomes visible.
	Abort() error
}
