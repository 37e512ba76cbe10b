package sink

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// Sink is where a store's files go. Keys use "/" and are relative to the
// sink's root ("zarr.json", "c/0/1/2").
//
// A Sink is safe for concurrent use: the pipeline's I/O workers create and
// write several files at once. Each File is written by one goroutine at a
// time (its owner); only Abort may come from another.
type Sink interface {
	// Create starts a new file at key. Its errors, like File's, need not
	// name the key; Put's do. Its bytes become visible under key only when
	// Commit succeeds; until then readers see the previous content of key
	// or nothing.
	Create(key string) (File, error)
	// Put writes a small file atomically (Create, Write, Commit).
	Put(key string, data []byte) error
	// Close releases the sink. Files not committed are removed.
	Close() error
}

// Buffered is a Sink that holds written bytes in memory of its own before
// they are stored (object storage keeps each file's part being filled and
// the parts uploading). BufferBytes is the most it holds while files
// files are being written at once; a writer counts it within its
// pending bound, so that a slow store holds the producer back within the
// memory the caller allowed rather than on top of it.
type Buffered interface {
	BufferBytes(files int) int64
}

// BufferBytes is s's Buffered bound for files open at once, 0 for a sink
// that keeps nothing of its own (its writes are stored when they return).
func BufferBytes(s Sink, files int) int64 {
	if b, ok := s.(Buffered); ok {
		return b.BufferBytes(files)
	}
	return 0
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

// CheckKey rejects keys that are empty, absolute, not clean or that would
// escape the sink's root; every Sink applies it in Create.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") || strings.Contains(key, "\x00") {
		return fmt.Errorf("invalid key %q", key)
	}
	return nil
}

// Put writes data to key through s.Create, Write and Commit, aborting the
// file on any error. Sinks use it to implement Sink.Put; its errors name
// the key.
func Put(s Sink, key string, data []byte) error {
	f, err := s.Create(key)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	return nil
}

// Sub is the part of a sink under a key prefix: Create("zarr.json") on
// Sub(s, "0") creates "0/zarr.json" in s. It lets several writers (the
// levels of a pyramid, the arrays of a group) share one store.
func Sub(s Sink, prefix string) (Sink, error) {
	if err := CheckKey(prefix); err != nil {
		return nil, fmt.Errorf("sub-sink: %w", err)
	}
	return &sub{inner: s, prefix: prefix + "/"}, nil
}

type sub struct {
	inner  Sink
	prefix string
}

func (s *sub) Create(key string) (File, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return s.inner.Create(s.prefix + key)
}

func (s *sub) Put(key string, data []byte) error { return Put(s, key, data) }

// BufferBytes is the inner sink's: the sub-sink's files share its
// buffers. (Several sub-sinks' writers each count all of them: an
// over-estimate on the safe side.)
func (s *sub) BufferBytes(files int) int64 { return BufferBytes(s.inner, files) }

// Close does nothing: the sub-sink's files belong to the sink it came
// from, which its owner closes.
func (s *sub) Close() error { return nil }
