package pipeline

import (
	"errors"
	"fmt"
)

// PartialFrameError reports input that ended inside a frame. Every whole
// frame before it was written; the partial frame was dropped.
type PartialFrameError struct {
	Frame      int64 // the partial frame's index in the array (= the frames it holds; a resume's count from the array's start)
	Have       int64 // bytes of it that arrived
	FrameBytes int64
}

func (e *PartialFrameError) Error() string {
	return fmt.Sprintf("input ended %d bytes into frame %d (frame is %d bytes); the partial frame was dropped", e.Have, e.Frame, e.FrameBytes)
}

// TooManyFramesError reports input longer than a fixed shape[0]. The first
// Declared frames are stored; the rest of the input was not taken.
type TooManyFramesError struct {
	Declared int64 // shape[0]
	AtLeast  int64 // frames the array would have held, as far as the input was read
}

func (e *TooManyFramesError) Error() string {
	return fmt.Sprintf("input holds more frames than shape[0] = %d declares (at least %d); the first %d frames were stored (use shape[0] = 0 to let dim 0 grow with the input)", e.Declared, e.AtLeast, e.Declared)
}

// ShortInputError reports input that ended before a fixed shape[0] was
// reached. The store holds the frames that arrived and its zarr.json says
// shape[0] = Got.
type ShortInputError struct {
	Got, Declared int64
}

func (e *ShortInputError) Error() string {
	return fmt.Sprintf("input ended after %d of the %d frames shape[0] declares; the store holds the %d frames that arrived and its zarr.json says shape[0] = %d", e.Got, e.Declared, e.Got, e.Got)
}

// MemoryError reports settings whose memory cannot fit in what the
// machine has available (New checks before allocating). It is a
// configuration problem: fewer batches in flight (Depth), a smaller
// chunk[0] (a slot holds at least one epoch of chunk[0] frames), or fewer
// inner chunks per shard row (each needs an index entry while its row is
// open).
type MemoryError struct {
	Depth      int
	BatchBytes int64   // staging per slot
	SlotBytes  float64 // all of one slot: staging, output, per-chunk bookkeeping
	IndexBytes int64   // the open shard row's indexes
	SinkBytes  int64   // the sink's own buffers (sink.Buffered)
	Available  int64   // memory available when New ran
}

func (e *MemoryError) Error() string {
	// In float64: Depth × SlotBytes may overflow int64.
	need := float64(e.Depth)*e.SlotBytes + float64(e.IndexBytes) + float64(e.SinkBytes)
	rest := fmt.Sprintf("and %s of shard indexes", gib(float64(e.IndexBytes)))
	if e.SinkBytes > 0 {
		rest = fmt.Sprintf("%s of shard indexes and %s of the store's upload buffers", gib(float64(e.IndexBytes)), gib(float64(e.SinkBytes)))
	}
	return fmt.Sprintf("the writer needs %s: %d slots of %s (%s of staging, as much again for compressed output, and per-chunk bookkeeping) %s, but only %s of memory is available",
		gib(need), e.Depth, gib(e.SlotBytes), gib(float64(e.BatchBytes)), rest, gib(float64(e.Available)))
}

// PendingError reports a pending bound smaller than what the sink holds
// of its own with a shard row's files open (object storage's part
// buffers) plus one batch: the bound could not hold, and the writer
// does not silently exceed it.
type PendingError struct {
	Asked      int64 // the bound asked for
	SinkBytes  int64 // the sink's buffers with Files files open
	BatchBytes int64 // one batch
	Files      int64 // shards of one row, written at once
}

// Need is the smallest bound that works.
func (e *PendingError) Need() int64 { return e.SinkBytes + e.BatchBytes }

func (e *PendingError) Error() string {
	return fmt.Sprintf("a pending bound of %s cannot hold: the store keeps up to %s of upload buffers with the %d shards of a row open, and one batch is %s; allow at least %s, or use larger shards (fewer per row)",
		gib(float64(e.Asked)), gib(float64(e.SinkBytes)), e.Files, gib(float64(e.BatchBytes)), gib(float64(e.Need())))
}

// IndexBound reports whether the shard indexes alone exceed the memory.
func (e *MemoryError) IndexBound() bool { return float64(e.IndexBytes) > float64(e.Available)/2 }

// DepthError reports a Depth outside 1..MaxDepth.
type DepthError struct{ Depth int }

func (e *DepthError) Error() string {
	return fmt.Sprintf("%d batches in flight: want 1 to %d (3 already overlap reading, compressing and writing)", e.Depth, MaxDepth)
}

// gib formats a byte count for messages.
func gib(n float64) string { return fmt.Sprintf("%.2f GiB", n/(1<<30)) }

// ErrClosed is returned by Write after Close or Abort when no earlier error
// was recorded.
var ErrClosed = errors.New("write to a closed writer")

// ErrAborted is the reason recorded when Abort is called with a nil error.
var ErrAborted = errors.New("writer aborted")
