package sinktest

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
)

// The sinks below wrap another sink.Sink to make the conditions the
// pipeline must survive (a slow disk, a stalled mount, a full disk) happen
// on demand, and to record the order of operations.

// Slow passes writes to its inner sink at a fixed bandwidth, shared by all
// files, like a disk that sustains only so many bytes per second.
type Slow struct {
	inner sink.Sink
	bps   float64

	mu   sync.Mutex
	next time.Time // when the bytes accepted so far will have drained
}

// NewSlow wraps inner so that writes proceed at bytesPerSec.
func NewSlow(inner sink.Sink, bytesPerSec int64) *Slow {
	return &Slow{inner: inner, bps: float64(bytesPerSec)}
}

// Create implements sink.Sink.
func (s *Slow) Create(key string) (sink.File, error) {
	f, err := s.inner.Create(key)
	if err != nil {
		return nil, err
	}
	return &slowFile{File: f, s: s, key: key, abort: make(chan struct{})}, nil
}

// Put implements sink.Sink.
func (s *Slow) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// Close implements sink.Sink.
func (s *Slow) Close() error { return s.inner.Close() }

type slowFile struct {
	sink.File
	s        *Slow
	key      string
	abort    chan struct{}
	abortOne sync.Once
}

func (f *slowFile) Write(p []byte) (int, error) {
	f.s.mu.Lock()
	now := time.Now()
	if f.s.next.Before(now) {
		f.s.next = now
	}
	f.s.next = f.s.next.Add(time.Duration(float64(len(p)) / f.s.bps * float64(time.Second)))
	d := f.s.next.Sub(now)
	f.s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.abort:
		return 0, errAborted
	}
	return f.File.Write(p)
}

func (f *slowFile) Abort() error {
	f.abortOne.Do(func() { close(f.abort) })
	return f.File.Abort()
}

// Stalled passes writes through until a given number of bytes went to the
// matching keys; then every Write and Commit on a matching key blocks
// until Release, until the file is aborted (from any goroutine) or until
// the sink is closed. It models a hung mount or network store.
type Stalled struct {
	inner sink.Sink
	after int64
	match func(key string) bool

	mu        sync.Mutex
	written   int64
	release   chan struct{}
	relOnce   sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	stalled   chan struct{} // closed when the first call blocks
	stallOnce sync.Once
}

// ErrStalledAborted is returned by a stalled call that was interrupted by
// Abort or Close.
var ErrStalledAborted = errors.New("stalled write interrupted")

// NewStalled wraps inner; it stalls once after bytes went to keys for
// which match returns true (match nil: every key).
func NewStalled(inner sink.Sink, after int64, match func(key string) bool) *Stalled {
	if match == nil {
		match = func(string) bool { return true }
	}
	return &Stalled{inner: inner, after: after, match: match,
		release: make(chan struct{}), closed: make(chan struct{}), stalled: make(chan struct{})}
}

// Release lets every blocked and future call proceed.
func (s *Stalled) Release() { s.relOnce.Do(func() { close(s.release) }) }

// Stalling is closed as soon as some call is blocked by the stall.
func (s *Stalled) Stalling() <-chan struct{} { return s.stalled }

// Create implements sink.Sink.
func (s *Stalled) Create(key string) (sink.File, error) {
	f, err := s.inner.Create(key)
	if err != nil {
		return nil, err
	}
	return &stalledFile{File: f, s: s, key: key, on: s.match(key), abort: make(chan struct{})}, nil
}

// Put implements sink.Sink.
func (s *Stalled) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// Close releases blocked calls with an error and closes the inner sink.
func (s *Stalled) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.inner.Close()
}

type stalledFile struct {
	sink.File
	s        *Stalled
	key      string
	on       bool
	abort    chan struct{}
	abortOne sync.Once
}

// wait blocks while the sink is stalled; it reports an interruption.
func (f *stalledFile) wait() error {
	f.s.stallOnce.Do(func() { close(f.s.stalled) })
	select {
	case <-f.s.release:
		return nil
	case <-f.abort:
	case <-f.s.closed:
	}
	return ErrStalledAborted
}

func (f *stalledFile) Write(p []byte) (int, error) {
	if !f.on {
		return f.File.Write(p)
	}
	f.s.mu.Lock()
	room := f.s.after - f.s.written
	if room < 0 {
		room = 0
	}
	if room > int64(len(p)) {
		room = int64(len(p))
	}
	f.s.written += room
	f.s.mu.Unlock()
	n, err := f.File.Write(p[:room])
	if err != nil || n == len(p) {
		return n, err
	}
	if err := f.wait(); err != nil {
		return n, err
	}
	m, err := f.File.Write(p[n:])
	return n + m, err
}

func (f *stalledFile) Commit() error {
	if f.on {
		f.s.mu.Lock()
		stalled := f.s.written >= f.s.after
		f.s.mu.Unlock()
		if stalled {
			if err := f.wait(); err != nil {
				f.File.Abort()
				return err
			}
		}
	}
	return f.File.Commit()
}

func (f *stalledFile) Abort() error {
	f.abortOne.Do(func() { close(f.abort) })
	return f.File.Abort()
}

// Failing lets a given number of bytes through (over all files) and then
// fails every Write with ENOSPC, like a disk that filled up.
type Failing struct {
	inner sink.Sink
	mu    sync.Mutex
	left  int64
}

// NewFailing wraps inner; writes fail once after bytes were written.
func NewFailing(inner sink.Sink, after int64) *Failing { return &Failing{inner: inner, left: after} }

// Create implements sink.Sink.
func (s *Failing) Create(key string) (sink.File, error) {
	f, err := s.inner.Create(key)
	if err != nil {
		return nil, err
	}
	return &failingFile{File: f, s: s, key: key}, nil
}

// Put implements sink.Sink.
func (s *Failing) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// Close implements sink.Sink.
func (s *Failing) Close() error { return s.inner.Close() }

type failingFile struct {
	sink.File
	s   *Failing
	key string
}

func (f *failingFile) Write(p []byte) (int, error) {
	f.s.mu.Lock()
	room := min(f.s.left, int64(len(p)))
	f.s.left -= room
	f.s.mu.Unlock()
	n, err := f.File.Write(p[:room])
	if err != nil || n == len(p) {
		return n, err
	}
	return n, syscall.ENOSPC
}

// Op is a sink operation seen by Recording.
type Op string

const (
	OpCreate Op = "create"
	OpWrite  Op = "write"
	OpCommit Op = "commit"
	OpAbort  Op = "abort"
)

// Event is one recorded operation; N is the byte count of a write.
type Event struct {
	Op  Op
	Key string
	N   int
}

func (e Event) String() string {
	if e.Op == OpWrite {
		return fmt.Sprintf("%s %s %d", e.Op, e.Key, e.N)
	}
	return fmt.Sprintf("%s %s", e.Op, e.Key)
}

// Recording passes everything to its inner sink and records each
// operation in order, for tests of delivery order.
type Recording struct {
	inner  sink.Sink
	mu     sync.Mutex
	events []Event
}

// NewRecording wraps inner.
func NewRecording(inner sink.Sink) *Recording { return &Recording{inner: inner} }

// Events returns a copy of the operations so far.
func (r *Recording) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *Recording) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Create implements sink.Sink.
func (r *Recording) Create(key string) (sink.File, error) {
	f, err := r.inner.Create(key)
	if err != nil {
		return nil, err
	}
	r.add(Event{Op: OpCreate, Key: key})
	return &recordingFile{File: f, r: r, key: key}, nil
}

// Put implements sink.Sink.
func (r *Recording) Put(key string, data []byte) error { return sink.Put(r, key, data) }

// Close implements sink.Sink.
func (r *Recording) Close() error { return r.inner.Close() }

type recordingFile struct {
	sink.File
	r   *Recording
	key string
}

func (f *recordingFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.r.add(Event{Op: OpWrite, Key: f.key, N: n})
	return n, err
}

func (f *recordingFile) Commit() error {
	err := f.File.Commit()
	if err == nil {
		f.r.add(Event{Op: OpCommit, Key: f.key})
	}
	return err
}

func (f *recordingFile) Abort() error {
	f.r.add(Event{Op: OpAbort, Key: f.key})
	return f.File.Abort()
}
