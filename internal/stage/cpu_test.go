package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// cpuCodecs are the codecs the CPU stage implements.
var cpuCodecs = zarr.Codecs

// runBatch kicks one batch on a fresh slot and returns a copy of its output.
func runBatch(t *testing.T, st Stage, spec *zarr.Spec, b Batch, seed uint64) (*Output, []byte) {
	t.Helper()
	sl, err := st.NewSlot(b.Frames)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Free()
	staging := sl.Staging()[:b.Frames*spec.FrameBytes()]
	fillStaging(staging, seed)
	if err := sl.Kick(b); err != nil {
		t.Fatal(err)
	}
	out, err := sl.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp := &Output{
		Data:   append([]byte(nil), out.Data...),
		Segs:   append([]Segment(nil), out.Segs...),
		Chunks: append([]Chunk(nil), out.Chunks...),
		Times:  out.Times,
		Down:   append([]byte(nil), out.Down...),

		DownFrames: out.DownFrames,
	}
	return cp, append([]byte(nil), staging...)
}

func TestCPUOutput(t *testing.T) {
	for _, codec := range cpuCodecs {
		for _, ts := range testSpecs {
			for _, dt := range []zarr.DType{zarr.Uint8, zarr.Uint16, zarr.Int32, zarr.Float64} {
				spec := ts.spec(dt, codec)
				t.Run(fmt.Sprintf("%v/%s/%v", codec, ts.name, dt), func(t *testing.T) {
					st, err := NewCPU(Config{Spec: spec, Workers: 3})
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					for _, b := range testBatches(&spec) {
						out, staging := runBatch(t, st, &spec, b, uint64(b.Frames))
						ids := checkBookkeeping(t, &spec, b, out.Segs, out.Chunks, int64(len(out.Data)), true)
						for k, c := range out.Chunks {
							got := codectest.Decode(t, &spec, out.Data[c.Off:c.Off+c.Size])
							want := naiveTile(&spec, staging, b.Frames, ids[k].epoch-b.FirstEpoch, ids[k].pos)
							if !bytes.Equal(got, want) {
								t.Fatalf("batch %+v chunk %d %+v: decoded chunk differs from the tiled one", b, k, ids[k])
							}
						}
						if out.Times.Wall <= 0 || out.Times.Tile <= 0 {
							t.Fatalf("batch %+v: times not filled: %+v", b, out.Times)
						}
						if codec != zarr.CodecNone && out.Times.Compress <= 0 {
							t.Fatalf("batch %+v: compress time not filled: %+v", b, out.Times)
						}
					}
				})
			}
		}
	}
}

// TestCPUEveryDType runs one ragged rank-3 spec for every dtype and codec.
func TestCPUEveryDType(t *testing.T) {
	ts := testSpecs[4]
	for _, codec := range cpuCodecs {
		for _, dt := range zarr.DTypes {
			spec := ts.spec(dt, codec)
			t.Run(fmt.Sprintf("%v/%v", codec, dt), func(t *testing.T) {
				st, err := NewCPU(Config{Spec: spec, Workers: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				b := Batch{FirstEpoch: 3, Frames: 3*spec.Chunk[0] + 1}
				out, staging := runBatch(t, st, &spec, b, 11)
				ids := checkBookkeeping(t, &spec, b, out.Segs, out.Chunks, int64(len(out.Data)), true)
				for k, c := range out.Chunks {
					got := codectest.Decode(t, &spec, out.Data[c.Off:c.Off+c.Size])
					if want := naiveTile(&spec, staging, b.Frames, ids[k].epoch-b.FirstEpoch, ids[k].pos); !bytes.Equal(got, want) {
						t.Fatalf("chunk %d %+v differs", k, ids[k])
					}
				}
			})
		}
	}
}

// TestCPUDeterminism: the same input gives the same bytes for every worker
// count and every run, with many small chunks so that scheduling varies.
func TestCPUDeterminism(t *testing.T) {
	for _, codec := range cpuCodecs {
		spec := zarr.Spec{Shape: []int64{0, 37, 41}, Chunk: []int64{4, 8, 8}, Shard: []int64{8, 16, 16}, DType: zarr.Uint16, Codec: codec, Level: 1}
		b := Batch{FirstEpoch: 1, Frames: 22}
		t.Run(codec.String(), func(t *testing.T) {
			var ref *Output
			for workers := 1; workers <= 8; workers++ {
				st, err := NewCPU(Config{Spec: spec, Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				sl, err := st.NewSlot(b.Frames)
				if err != nil {
					t.Fatal(err)
				}
				for run := 0; run < 3; run++ {
					fillStaging(sl.Staging(), 5)
					if err := sl.Kick(b); err != nil {
						t.Fatal(err)
					}
					out, err := sl.Wait(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if ref == nil {
						ref = &Output{Data: bytes.Clone(out.Data), Segs: append([]Segment(nil), out.Segs...), Chunks: append([]Chunk(nil), out.Chunks...)}
						continue
					}
					if !bytes.Equal(out.Data, ref.Data) || fmt.Sprint(out.Segs) != fmt.Sprint(ref.Segs) || fmt.Sprint(out.Chunks) != fmt.Sprint(ref.Chunks) {
						t.Fatalf("workers %d run %d: output differs from workers 1 run 0", workers, run)
					}
				}
				sl.Free()
				st.Close()
			}
		})
	}
}

// TestCPUSlotsShareThePool: several slots in flight at once, waited in
// kick order, each reused for several batches.
func TestCPUSlotsShareThePool(t *testing.T) {
	spec := zarr.Spec{Shape: []int64{0, 30, 20}, Chunk: []int64{2, 8, 8}, Shard: []int64{4, 16, 16}, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1}
	st, err := NewCPU(Config{Spec: spec, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const depth, frames = 3, 4
	want := make([][]byte, depth)
	slots := make([]Slot, depth)
	for i := range slots {
		if slots[i], err = st.NewSlot(frames); err != nil {
			t.Fatal(err)
		}
		fillStaging(slots[i].Staging(), uint64(i))
		out, _ := runBatch(t, st, &spec, Batch{FirstEpoch: int64(i * 2), Frames: frames}, uint64(i))
		want[i] = out.Data
	}
	for round := 0; round < 5; round++ {
		for i, sl := range slots {
			if err := sl.Kick(Batch{FirstEpoch: int64(i * 2), Frames: frames}); err != nil {
				t.Fatal(err)
			}
		}
		for i, sl := range slots {
			out, err := sl.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Data, want[i]) {
				t.Fatalf("round %d slot %d: output differs from the same batch run alone", round, i)
			}
		}
	}
	for _, sl := range slots {
		if err := sl.Free(); err != nil {
			t.Fatal(err)
		}
	}
}

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

func TestCPUCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	spec := zarr.Spec{Shape: []int64{0, 256, 256}, Chunk: []int64{4, 32, 32}, Shard: []int64{8, 128, 128}, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1}
	st, err := NewCPU(Config{Spec: spec, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := st.NewSlot(32)
	if err != nil {
		t.Fatal(err)
	}
	fillStaging(sl.Staging(), 3)
	b := Batch{FirstEpoch: 0, Frames: 32}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"canceled before wait", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
		{"deadline during wait", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			if err := sl.Kick(b); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			out, err := sl.Wait(ctx)
			if err == nil {
				// The batch may have beaten the deadline; then it must be whole.
				checkBookkeeping(t, &spec, b, out.Segs, out.Chunks, int64(len(out.Data)), true)
			} else if !errors.Is(err, ctx.Err()) {
				t.Fatalf("wait: %v, want %v", err, ctx.Err())
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("wait took %v after cancel", d)
			}
			// The slot is usable again and gives a whole batch.
			if err := sl.Kick(b); err != nil {
				t.Fatal(err)
			}
			out, err = sl.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checkBookkeeping(t, &spec, b, out.Segs, out.Chunks, int64(len(out.Data)), true)
		})
	}
	if err := sl.Free(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	waitGoroutines(t, before)
}

func TestCPUMisuse(t *testing.T) {
	spec := testSpecs[2].spec(zarr.Uint8, zarr.CodecZstd)
	st, err := NewCPU(Config{Spec: spec, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name() != "cpu" {
		t.Fatalf("name %q", st.Name())
	}
	sl, err := st.NewSlot(6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Wait(context.Background()); err == nil {
		t.Fatal("wait without kick: no error")
	}
	if err := sl.Kick(Batch{0, 7}); err == nil {
		t.Fatal("kick over capacity: no error")
	}
	if err := sl.Kick(Batch{0, 6}); err != nil {
		t.Fatal(err)
	}
	if err := sl.Kick(Batch{0, 6}); err == nil {
		t.Fatal("second kick without wait: no error")
	}
	if err := sl.Free(); err == nil {
		t.Fatal("free while in flight: no error")
	}
	if _, err := sl.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err == nil {
		t.Fatal("close with a live slot: no error")
	}
	if err := sl.Free(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.NewSlot(6); err == nil {
		t.Fatal("new slot after close: no error")
	}
	if _, err := NewCPU(Config{Spec: zarr.Spec{Shape: []int64{0}}}); err == nil {
		t.Fatal("invalid spec: no error")
	}
}

// TestCPUNoAllocs: after the first batch a slot allocates nothing per batch
// or per chunk (Kick, the workers' tiling and compression, Wait).
func TestCPUNoAllocs(t *testing.T) {
	for _, codec := range cpuCodecs {
		spec := zarr.Spec{Shape: []int64{0, 50, 150}, Chunk: []int64{4, 32, 64}, Shard: []int64{8, 64, 128}, DType: zarr.Uint16, Codec: codec, Level: 1}
		t.Run(codec.String(), func(t *testing.T) {
			st, err := NewCPU(Config{Spec: spec, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			sl, err := st.NewSlot(12)
			if err != nil {
				t.Fatal(err)
			}
			defer sl.Free()
			fillStaging(sl.Staging(), 1)
			epoch := int64(0)
			step := func() {
				if err := sl.Kick(Batch{FirstEpoch: epoch, Frames: 11}); err != nil {
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
		})
	}
}

// TestCPUDownsample: with Config.Down, every batch's Output.Down is the
// reference reduction of the batch's frames, for every method, dtype and
// reduce pattern (dim 0 included, odd frame counts), and compressing is
// unchanged by it.
func TestCPUDownsample(t *testing.T) {
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Int32, zarr.Float32, zarr.Uint64} {
		for _, m := range downsample.Methods {
			for _, reduce := range [][]bool{{false, true, true}, {true, true, true}, {false, false, true}} {
				t.Run(fmt.Sprintf("%v/%v/%v", dt, m, reduce), func(t *testing.T) {
					spec := zarr.Spec{Shape: []int64{0, 37, 41}, Chunk: []int64{4, 8, 8}, Shard: []int64{8, 16, 16}, DType: dt, Codec: zarr.CodecZstd, Level: 1}
					d := &Downsample{Reduce: reduce, Method: m}
					st, err := NewCPU(Config{Spec: spec, Workers: 3, Down: d})
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					for _, b := range []Batch{{FirstEpoch: 0, Frames: 8}, {FirstEpoch: 2, Frames: 7}, {FirstEpoch: 5, Frames: 1}} {
						out, staging := runBatch(t, st, &spec, b, uint64(b.Frames))
						p, _ := downsample.NewPlan(append([]int64{b.Frames}, spec.Shape[1:]...), reduce, dt, m)
						want := make([]byte, p.Out[0]*p.FrameBytes())
						downsample.Reference(p, want, staging[:b.Frames*spec.FrameBytes()], 0, p.Out[0])
						if out.DownFrames != p.Out[0] || !bytes.Equal(out.Down, want) {
							t.Fatalf("batch %+v: %d down frames (want %d), equal to the reference: %v", b, out.DownFrames, p.Out[0], bytes.Equal(out.Down, want))
						}
						if out.Times.Downscale <= 0 {
							t.Errorf("batch %+v: downscale time not filled", b)
						}
					}
				})
			}
		}
	}
}
