package pipeline

import (
	"errors"
	"fmt"
)

// PartialFrameError reports input that ended inside a frame. Every whole
// frame before it was written; the partial frame was dropped.
type PartialFrameError struct {
	Frame      int64 // index of the partial frame (= whole frames written)
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
	AtLeast  int64 // frames the input held, as far as it was read
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

// MemoryError reports a Depth whose slots cannot fit in the memory
// available (New checks before allocating). It is a configuration problem:
// the user picks a smaller --depth or a smaller chunk[0].
type MemoryError struct {
	Depth      int
	BatchBytes int64 // staging per slot
	Available  int64 // memory available when New ran
}

func (e *MemoryError) Error() string {
	what := "a smaller --depth, or a smaller chunk[0] (a slot holds at least one epoch of chunk[0] frames)"
	if e.Depth == 1 {
		what = "a smaller chunk[0] (a slot holds at least one epoch of chunk[0] frames)"
	}
	// In float64: Depth × BatchBytes may overflow int64.
	return fmt.Sprintf("--depth %d: %d slots of %s (staging plus as much again for compressed output) need %s, but only %s of memory is available; use %s",
		e.Depth, e.Depth, gib(float64(e.BatchBytes)), gib(slotMemory(e.Depth, e.BatchBytes)), gib(float64(e.Available)), what)
}

// gib formats a byte count for messages.
func gib(n float64) string { return fmt.Sprintf("%.2f GiB", n/(1<<30)) }

// ErrClosed is returned by Write after Close or Abort when no earlier error
// was recorded.
var ErrClosed = errors.New("write to a closed writer")

// ErrAborted is the reason recorded when Abort is called with a nil error.
var ErrAborted = errors.New("writer aborted")
