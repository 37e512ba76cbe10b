package stage

import (
	"context"
	"fmt"
	"time"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Batch is one slot's input: whole frames, C order, little endian, starting
// at the global epoch FirstEpoch. Frames may stop short of a whole number of
// epochs only for the last batch of a stream; the missing frames of that
// epoch are compressed as fill value (0).
type Batch struct {
	FirstEpoch int64
	Frames     int64
}

// Output is what a compress stage hands to delivery: the batch's compressed
// inner chunks grouped by shard. Segments are ordered by (shard row, shard
// column); inside a segment the chunks are in ascending Inner index, which
// is epoch-major C order, so appending segments of successive batches to a
// shard file keeps the file in C order of inner chunks.
//
// Only chunks that hold array data are present: an epoch with no frames and
// a chunk wholly beyond the shape in dims 1.. are never written (their index
// entries stay empty).
//
// The slices are owned by the slot and reused by the next Kick.
type Output struct {
	Data   []byte
	Segs   []Segment
	Chunks []Chunk
	Times  Times // what this batch cost, per stage

	// Down is the batch reduced for the next pyramid level, when the
	// stage was built with Config.Down: DownFrames frames of the next
	// level's shape, C order, made from this batch's frames alone (with
	// Reduce[0], frame j from frames 2j and 2j+1 of the batch; an odd last
	// frame of the stream makes one alone). Owned by the slot like Data.
	Down       []byte
	DownFrames int64
}

// Segment is the part of one shard that one batch produced.
type Segment struct {
	Row      int64 // shard row along dim 0
	Col      int64 // C-order shard index over dims 1..
	Off, Len int64 // bytes of Data
	First, N int   // Chunks[First:First+N]
}

// Chunk is one compressed inner chunk.
type Chunk struct {
	Inner int64 // C-order index of the inner chunk inside its shard
	Off   int64 // offset in Output.Data
	Size  int64
}

// Times is the busy time of each step for one batch. Steps a backend does
// not have stay zero. Wall-clock per step, summed over parallel workers
// where a step runs on several cores (so Compress may exceed the batch's
// wall time on a CPU backend).
type Times struct {
	H2D       time.Duration
	Scatter   time.Duration // FrameWriter: the writes into the chunk-major input, summed over whoever did them (the producer, its helpers, the stage's workers)
	Tile      time.Duration
	Shuffle   time.Duration
	Downscale time.Duration // the next pyramid level's reduction
	Compress  time.Duration
	Aggregate time.Duration
	D2H       time.Duration
	Wall      time.Duration // kick to done
}

// Add accumulates o into t.
func (t *Times) Add(o Times) {
	t.H2D += o.H2D
	t.Scatter += o.Scatter
	t.Tile += o.Tile
	t.Shuffle += o.Shuffle
	t.Downscale += o.Downscale
	t.Compress += o.Compress
	t.Aggregate += o.Aggregate
	t.D2H += o.D2H
	t.Wall += o.Wall
}

// Stage is a compress backend (CPU or GPU). The pipeline drives it without
// knowing which.
type Stage interface {
	// Name is "cpu" or "gpu", for reports.
	Name() string
	// NewSlot allocates one slot's buffers for batches of up to maxFrames
	// frames (a whole number of epochs). Staging memory comes from the
	// stage so the GPU backend can hand out pinned memory.
	NewSlot(maxFrames int64) (Slot, error)
	// Close releases what the stage shares between slots (worker pool,
	// context). Every slot must be freed first.
	Close() error
}

// Slot is one pipeline buffer set. It has one owner at a time (see
// DESIGN.md rule 1): the producer fills Staging and calls Kick; the
// delivery side calls Wait; nobody touches Staging between Kick and the
// return of Wait.
type Slot interface {
	// Staging is where the producer copies frames; len = maxFrames*FrameBytes.
	Staging() []byte
	// Kick starts compressing b (reading Staging[:b.Frames*FrameBytes]).
	// It does not wait for the work to finish.
	Kick(b Batch) error
	// Wait blocks until the kicked batch is compressed and returns its
	// output, valid until the next Kick. If ctx ends first, Wait still
	// does not return before the slot's in-flight work has stopped touching
	// its buffers, and then reports ctx's error.
	Wait(ctx context.Context) (*Output, error)
	// Free releases the slot's memory. Only after Wait has returned.
	Free() error
}

// FrameWriter is implemented by a Slot that takes its input through calls
// instead of Staging, so that it can lay the bytes out as it compresses
// them as they arrive (the CPU backend scatters them straight into
// chunk-major order: each byte is touched once before compression instead
// of being copied into frame order and gathered again). The pipeline uses
// it whenever a slot implements it, and then never calls Staging, which
// such a slot may therefore allocate only on its first call. One batch is
// fed one way: through WriteFrames (and CarryFrames), or through Staging.
//
// Like Staging, both methods belong to the producer: only between Wait
// (or NewSlot) and Kick.
type FrameWriter interface {
	// WriteFrames puts p at byte offset off of the batch's input, the
	// frame-order bytes Staging would hold (off and len(p) need not be
	// whole frames). Calls for disjoint ranges may run concurrently.
	WriteFrames(p []byte, off int64)
	// CarryFrames copies bytes [off, off+n) of this slot's input, off at
	// the start of an epoch, to bytes [0, n) of to's input: the partial
	// epoch a flush leaves behind, moved to the slot that fills next. to
	// is a slot of the same stage, or this slot itself once its batch has
	// been waited for (the bytes [off, off+n) are not part of a kicked
	// batch, so they survive it).
	CarryFrames(to Slot, off, n int64) error
}

// Canceler is implemented by a Slot that can stop its in-flight batch
// early: the pipeline calls Cancel on every slot when it aborts, from
// whatever goroutine aborts, so that an abort with many batches in flight
// does not wait for all of them to be compressed. Cancel on a slot with no
// batch in flight does nothing. Wait must still be called for a kicked
// batch; after a Cancel it returns an error once the slot's buffers are no
// longer touched, or the finished output if the batch was already done.
type Canceler interface {
	Cancel()
}

// CopyHinter is implemented by a Stage that knows better than the
// pipeline's default how many copy helpers its producer wants. The GPU
// backend, whose compression does not run on the host's cores, asks for
// the cores it leaves idle: with the GPU compressing, the copy into pinned
// memory is the whole writer's limit (one core moves ~14 GB/s; PCIe gen5
// takes ~55 GB/s). The CPU backend asks for none: it splits large
// WriteFrames calls over its own workers, and every core a copy helper
// takes is a core its workers lose.
type CopyHinter interface {
	// CopyHelpers is the number of copy helpers the pipeline should run
	// when its Config leaves the choice open.
	CopyHelpers() int
}

// Config is what every backend needs to build a Stage.
type Config struct {
	Spec zarr.Spec
	// Workers is the number of CPU workers for tiling and compression;
	// 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Down, when set, makes every batch also give Output.Down.
	Down *Downsample
}

// Downsample is the reduction a stage computes beside compressing, for
// the next level of a pyramid (see internal/downsample for the
// arithmetic). With Reduce[0] the pipeline kicks batches of an even
// number of frames (all but the stream's last), so pairs of frames never
// straddle two batches.
type Downsample struct {
	Reduce []bool // per dimension of the array, dim 0 included
	Method downsample.Method
}

// Validate checks d against the array it reduces.
func (d *Downsample) Validate(spec *zarr.Spec) error {
	if len(d.Reduce) != spec.Rank() {
		return fmt.Errorf("downsample: %d reduce flags for %d dimensions", len(d.Reduce), spec.Rank())
	}
	_, err := downsample.NewPlan(append([]int64{1}, spec.Shape[1:]...), d.Reduce, spec.DType, d.Method)
	return err
}

// DownFrameBytes is the size of one frame of the next level.
func (d *Downsample) DownFrameBytes(spec *zarr.Spec) int64 {
	out := downsample.OutShape(append([]int64{1}, spec.Shape[1:]...), d.Reduce)
	n := int64(spec.DType.Size())
	for _, x := range out[1:] {
		n *= x
	}
	return n
}

// DownFrames is how many next-level frames a batch of frames makes.
func (d *Downsample) DownFrames(frames int64) int64 {
	if d.Reduce[0] {
		return (frames + 1) / 2
	}
	return frames
}
