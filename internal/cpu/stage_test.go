package cpu

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

func TestConformance(t *testing.T) {
	before := runtime.NumGoroutine()
	stagetest.Run(t, New)
	waitGoroutines(t, before)
}

// waitGoroutines fails when goroutines the stages started outlive them.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTimes: the CPU stage reports the busy time of each step it runs.
func TestTimes(t *testing.T) {
	for _, codec := range zarr.Codecs {
		t.Run(codec.String(), func(t *testing.T) {
			spec := zarr.Spec{Shape: []int64{0, 37, 41}, Chunk: []int64{4, 8, 8}, Shard: []int64{8, 16, 16}, DType: zarr.Uint16, Codec: codec, Level: 1}
			st := stagetest.Open(t, New, stage.Config{Spec: spec, Workers: 2, Down: &stage.Downsample{Reduce: []bool{true, true, true}, Method: downsample.Mean}})
			sl := stagetest.NewSlot(t, st, 8)
			stagetest.Fill(sl.Staging(), 1)
			if err := sl.Kick(stage.Batch{Frames: 8}); err != nil {
				t.Fatal(err)
			}
			out, err := sl.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tm := out.Times
			if tm.Wall <= 0 || tm.Tile <= 0 || tm.Downscale <= 0 || (codec != zarr.CodecNone) != (tm.Compress > 0) {
				t.Fatalf("times not filled: %+v", tm)
			}
		})
	}
}

// TestNoAllocs: after the first batch a slot allocates nothing per batch
// or per chunk (Kick, the workers' tiling and compression, Wait), and fed
// through WriteFrames nothing per frame either.
func TestNoAllocs(t *testing.T) {
	for _, codec := range zarr.Codecs {
		for _, fed := range []bool{false, true} {
			spec := zarr.Spec{Shape: []int64{0, 50, 150}, Chunk: []int64{4, 32, 64}, Shard: []int64{8, 64, 128}, DType: zarr.Uint16, Codec: codec, Level: 1}
			t.Run(fmt.Sprintf("%v/fed %v", codec, fed), func(t *testing.T) {
				testNoAllocs(t, spec, fed)
			})
		}
	}
}

func testNoAllocs(t *testing.T, spec zarr.Spec, fed bool) {
	sl := stagetest.NewSlot(t, stagetest.Open(t, New, stage.Config{Spec: spec, Workers: 2}), 12)
	in := make([]byte, 12*spec.FrameBytes())
	stagetest.Fill(in, 1)
	if !fed {
		copy(sl.Staging(), in)
	}
	epoch := int64(0)
	step := func() {
		if fed {
			fw := sl.(stage.FrameWriter)
			fw.WriteFrames(in[:1000], 0)
			fw.WriteFrames(in[1000:], 1000)
		}
		if err := sl.Kick(stage.Batch{FirstEpoch: epoch, Frames: 11}); err != nil {
			t.Fatal(err)
		}
		if _, err := sl.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		epoch += 3
	}
	// Warm up: klauspost sizes its FSE tables on first need, so
	// every worker must have met every kind of chunk; which worker
	// gets which chunk is up to the scheduler, so run many rounds.
	for i := 0; i < 20; i++ {
		step()
	}
	if a := testing.AllocsPerRun(10, step); a != 0 {
		t.Fatalf("%v allocations per batch, want 0", a)
	}
}

// TestPreShuffledBatches: blosc codecs with byte shuffle on uint16 fed
// through WriteFrames take the pre-shuffled layout, and their batches are
// the bytes of the same frames fed through Staging (the encoder's own
// shuffle): whole epochs, a partial last one, and a partial epoch carried
// to another slot before the rest of it arrives.
func TestPreShuffledBatches(t *testing.T) {
	for _, codec := range []zarr.Codec{zarr.CodecLZ4, zarr.CodecBloscZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			spec := zarr.Spec{Shape: []int64{0, 70, 256}, Chunk: []int64{4, 32, 64}, Shard: []int64{8, 64, 128}, DType: zarr.Uint16, Codec: codec, Level: 1}
			st := stagetest.Open(t, New, stage.Config{Spec: spec, Workers: 3})
			const frames = 10
			fb := spec.FrameBytes()
			in := make([]byte, frames*fb)
			stagetest.Fill(in, 11)
			run := func(sl stage.Slot, b stage.Batch) []byte {
				t.Helper()
				if err := sl.Kick(b); err != nil {
					t.Fatal(err)
				}
				out, err := sl.Wait(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				stagetest.CheckOutput(t, &spec, b, out, in[b.FirstEpoch*4*fb:])
				return append([]byte(nil), out.Data...)
			}
			ref := stagetest.NewSlot(t, st, frames)
			copy(ref.Staging(), in)
			want := run(ref, stage.Batch{Frames: frames})

			a := stagetest.NewSlot(t, st, frames)
			if haveNT && !a.(*cpuSlot).cm.shuffle {
				t.Fatal("the slot does not take the pre-shuffled layout")
			}
			a.(stage.FrameWriter).WriteFrames(in[:333], 0)
			a.(stage.FrameWriter).WriteFrames(in[333:], 333)
			if got := run(a, stage.Batch{Frames: frames}); !bytes.Equal(got, want) {
				t.Fatal("fed through WriteFrames: other bytes than through Staging")
			}

			// Epochs 0-1 in a, the first 1.5 frames of epoch 2 carried to b.
			a.(stage.FrameWriter).WriteFrames(in[:8*fb+fb*3/2], 0)
			b := stagetest.NewSlot(t, st, frames)
			if err := a.(stage.FrameWriter).CarryFrames(b, 8*fb, fb*3/2); err != nil {
				t.Fatal(err)
			}
			b.(stage.FrameWriter).WriteFrames(in[8*fb+fb*3/2:], fb*3/2)
			copy(ref.Staging(), in[8*fb:])
			want = run(ref, stage.Batch{FirstEpoch: 2, Frames: 2})
			if got := run(b, stage.Batch{FirstEpoch: 2, Frames: 2}); !bytes.Equal(got, want) {
				t.Fatal("carried: other bytes than through Staging")
			}
		})
	}
}
