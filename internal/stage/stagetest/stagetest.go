// Package stagetest is the conformance suite of the compress-stage
// contract (internal/stage), in the manner of testing/fstest: every backend
// calls Run with its constructor, so a drift between the CPU and GPU
// backends fails a test. It also holds the reference helpers (geometries,
// batches, fills, element-by-element tiling, output bookkeeping checks)
// that the stage and backend tests share.
package stagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// NewStage builds the backend under test.
type NewStage func(cfg stage.Config) (stage.Stage, error)

// Run checks the whole contract against newStage: outputs that decode to
// the input with correct bookkeeping (partial epochs, ragged edges, shards
// reaching past the shape) for every codec and shuffle the backend builds,
// determinism across worker counts and runs, several slots sharing the
// stage, the life cycle and its misuse errors, abort while in flight, and
// Output.Down with Config.Down. A codec whose stage cannot be built is
// skipped (logged); codec none must build.
func Run(t *testing.T, newStage NewStage) {
	t.Helper()
	probe := Geometries[4].Spec(zarr.Uint8, zarr.CodecNone)
	st, err := newStage(stage.Config{Spec: probe, Workers: 2})
	if err != nil {
		t.Fatalf("codec none stage: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close an unused stage: %v", err)
	}
	t.Run("Output", func(t *testing.T) { testOutput(t, newStage, viaStaging) })
	t.Run("Codecs", func(t *testing.T) { testCodecs(t, newStage, viaStaging) })
	t.Run("Determinism", func(t *testing.T) { testDeterminism(t, newStage, viaStaging) })
	t.Run("SharedStage", func(t *testing.T) { testShared(t, newStage, viaStaging) })
	t.Run("Misuse", func(t *testing.T) { testMisuse(t, newStage) })
	t.Run("Abort", func(t *testing.T) { testAbort(t, newStage, viaStaging) })
	t.Run("Down", func(t *testing.T) { testDown(t, newStage, viaStaging) })
	t.Run("FrameWriter", func(t *testing.T) {
		st := Open(t, newStage, stage.Config{Spec: probe, Workers: 1})
		if _, ok := NewSlot(t, st, 1).(stage.FrameWriter); !ok {
			t.Skip("the slots are no stage.FrameWriter")
		}
		t.Run("Output", func(t *testing.T) { testOutput(t, newStage, viaFrames) })
		t.Run("Codecs", func(t *testing.T) { testCodecs(t, newStage, viaFrames) })
		t.Run("Determinism", func(t *testing.T) { testDeterminism(t, newStage, viaFrames) })
		t.Run("SharedStage", func(t *testing.T) { testShared(t, newStage, viaFrames) })
		t.Run("Abort", func(t *testing.T) { testAbort(t, newStage, viaFrames) })
		t.Run("Down", func(t *testing.T) { testDown(t, newStage, viaFrames) })
		t.Run("Carry", func(t *testing.T) { testCarry(t, newStage) })
	})
}

// feed is how a test puts a batch's input into a slot.
type feed int

const (
	viaStaging feed = iota // copied into Staging
	viaFrames              // stage.FrameWriter, in pieces split at random points
)

// put makes the input of a batch of frames (Fill with seed) and feeds it to
// sl; it returns the input.
func put(t *testing.T, f feed, sl stage.Slot, spec *zarr.Spec, frames int64, seed uint64) []byte {
	t.Helper()
	n := frames * spec.FrameBytes()
	if f == viaStaging {
		in := sl.Staging()[:n]
		Fill(in, seed)
		return bytes.Clone(in)
	}
	in := make([]byte, n)
	Fill(in, seed)
	WriteFrames(t, sl, in, 0, seed)
	return in
}

// WriteFrames feeds p to sl (a stage.FrameWriter) at byte offset off in
// pieces cut at random points (from seed): some a few bytes, some many
// frames, most not aligned to frames or lines, half of them written from
// goroutines at once (the contract allows disjoint ranges concurrently).
func WriteFrames(t testing.TB, sl stage.Slot, p []byte, off int64, seed uint64) {
	t.Helper()
	fw, ok := sl.(stage.FrameWriter)
	if !ok {
		t.Fatal("the slot is no stage.FrameWriter")
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(p))))
	var wg sync.WaitGroup
	for i := 0; len(p) > 0; i++ {
		var k int
		switch rng.IntN(3) {
		case 0:
			k = 1 + rng.IntN(7)
		case 1:
			k = 1 + rng.IntN(300)
		default:
			k = 1 + rng.IntN(len(p))
		}
		k = min(k, len(p))
		piece, at := p[:k], off
		if i%2 == 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fw.WriteFrames(piece, at)
			}()
		} else {
			fw.WriteFrames(piece, at)
		}
		p, off = p[k:], off+int64(k)
	}
	wg.Wait()
}

// variant is one codec setting: blosc codecs once per shuffle.
type variant struct {
	codec   zarr.Codec
	shuffle zarr.Shuffle
}

func (v variant) String() string {
	if v.codec == zarr.CodecLZ4 || v.codec == zarr.CodecBloscZstd {
		return v.codec.String() + "-" + v.shuffle.String()
	}
	return v.codec.String()
}

func (v variant) spec(g Geometry, dt zarr.DType) zarr.Spec {
	s := g.Spec(dt, v.codec)
	s.Shuffle = v.shuffle
	return s
}

func variants(allShuffles bool) []variant {
	var vs []variant
	for _, c := range zarr.Codecs {
		if c != zarr.CodecLZ4 && c != zarr.CodecBloscZstd {
			vs = append(vs, variant{codec: c})
			continue
		}
		for _, sh := range zarr.Shuffles {
			vs = append(vs, variant{c, sh})
			if !allShuffles {
				break
			}
		}
	}
	return vs
}

// Open builds a stage, skipping the test when the backend lacks the codec;
// the stage is closed at cleanup and must close cleanly.
func Open(t *testing.T, newStage NewStage, cfg stage.Config) stage.Stage {
	t.Helper()
	st, err := newStage(cfg)
	if err != nil {
		if cfg.Spec.Codec == zarr.CodecNone {
			t.Fatalf("new stage %+v: %v", cfg.Spec, err)
		}
		t.Skipf("backend does not build %v: %v", cfg.Spec.Codec, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// NewSlot allocates a slot freed at cleanup.
func NewSlot(t *testing.T, st stage.Stage, frames int64) stage.Slot {
	t.Helper()
	sl, err := st.NewSlot(frames)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sl.Free(); err != nil {
			t.Errorf("free: %v", err)
		}
	})
	return sl
}

// runBatch fills sl with seed, runs b and returns the output (valid until
// the slot's next Kick) and the staged input (a copy).
func runBatch(t *testing.T, f feed, sl stage.Slot, spec *zarr.Spec, b stage.Batch, seed uint64) (*stage.Output, []byte) {
	t.Helper()
	in := put(t, f, sl, spec, b.Frames, seed)
	if err := sl.Kick(b); err != nil {
		t.Fatalf("kick %+v: %v", b, err)
	}
	out, err := sl.Wait(context.Background())
	if err != nil {
		t.Fatalf("wait %+v: %v", b, err)
	}
	return out, in
}

// CheckOutput checks out against the batch's input: bookkeeping, and
// every chunk decoding to the chunk tiled element by element from in.
func CheckOutput(t *testing.T, spec *zarr.Spec, b stage.Batch, out *stage.Output, in []byte) {
	t.Helper()
	ids := CheckBookkeeping(t, spec, b, out.Segs, out.Chunks, int64(len(out.Data)), true)
	for k, c := range out.Chunks {
		got := codectest.Decode(t, spec, out.Data[c.Off:c.Off+c.Size])
		want := NaiveTile(spec, in, b.Frames, ids[k].Epoch-b.FirstEpoch, ids[k].Pos)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v batch %+v chunk %d %+v: decoded chunk differs from the input's", spec.Codec, b, k, ids[k])
		}
	}
	if out.Times.Wall <= 0 {
		t.Fatalf("batch %+v: wall time not filled: %+v", b, out.Times)
	}
}

// testOutput: every geometry, two dtypes, one setting per codec, every
// batch shape (whole and partial epochs, several shard rows, mid-row
// starts), one slot reused across the batches.
func testOutput(t *testing.T, newStage NewStage, f feed) {
	for _, v := range variants(false) {
		for _, g := range Geometries {
			for _, dt := range []zarr.DType{zarr.Uint8, zarr.Uint16} {
				spec := v.spec(g, dt)
				t.Run(fmt.Sprintf("%v/%s/%v", v, g.Name, dt), func(t *testing.T) {
					st := Open(t, newStage, stage.Config{Spec: spec, Workers: 2})
					bs := Batches(&spec)
					var most int64
					for _, b := range bs {
						most = max(most, b.Frames)
					}
					sl := NewSlot(t, st, most)
					for i, b := range bs {
						out, in := runBatch(t, f, sl, &spec, b, uint64(i))
						CheckOutput(t, &spec, b, out, in)
					}
				})
			}
		}
	}
}

// testCodecs: every codec and shuffle, every dtype, on a ragged rank-3
// geometry with a partial epoch.
func testCodecs(t *testing.T, newStage NewStage, f feed) {
	g := Geometries[4]
	for _, v := range variants(true) {
		for _, dt := range zarr.DTypes {
			spec := v.spec(g, dt)
			t.Run(fmt.Sprintf("%v/%v", v, dt), func(t *testing.T) {
				st := Open(t, newStage, stage.Config{Spec: spec, Workers: 2})
				b := stage.Batch{FirstEpoch: 3, Frames: 3*spec.Chunk[0] + 1}
				out, in := runBatch(t, f, NewSlot(t, st, b.Frames), &spec, b, 11)
				CheckOutput(t, &spec, b, out, in)
			})
		}
	}
}

// snapshot is a deep copy of an Output's bytes and bookkeeping.
type snapshot struct {
	data   []byte
	segs   []stage.Segment
	chunks []stage.Chunk
	down   []byte
}

func snap(o *stage.Output) snapshot {
	return snapshot{bytes.Clone(o.Data), append([]stage.Segment(nil), o.Segs...), append([]stage.Chunk(nil), o.Chunks...), bytes.Clone(o.Down)}
}

func (s snapshot) equal(o snapshot) bool {
	return bytes.Equal(s.data, o.data) && bytes.Equal(s.down, o.down) &&
		fmt.Sprint(s.segs) == fmt.Sprint(o.segs) && fmt.Sprint(s.chunks) == fmt.Sprint(o.chunks)
}

// testDeterminism: the same input gives the same bytes for every worker
// count and every run, with many small chunks so that scheduling varies;
// fed through FrameWriter, the bytes are those of the Staging feed (the
// first run) whatever the pieces.
func testDeterminism(t *testing.T, newStage NewStage, f feed) {
	for _, v := range variants(false) {
		spec := zarr.Spec{Shape: []int64{0, 37, 41}, Chunk: []int64{4, 8, 8}, Shard: []int64{8, 16, 16}, DType: zarr.Uint16, Codec: v.codec, Shuffle: v.shuffle, Level: 1}
		b := stage.Batch{FirstEpoch: 1, Frames: 22}
		t.Run(v.String(), func(t *testing.T) {
			var ref *snapshot
			for _, workers := range []int{1, 2, 3, 8} {
				st := Open(t, newStage, stage.Config{Spec: spec, Workers: workers})
				sl := NewSlot(t, st, b.Frames)
				for run := 0; run < 2; run++ {
					how := f
					if ref == nil {
						how = viaStaging
					}
					out, _ := runBatch(t, how, sl, &spec, b, 5)
					got := snap(out)
					if ref == nil {
						ref = &got
						continue
					}
					if !got.equal(*ref) {
						t.Fatalf("workers %d run %d: output differs from the first run", workers, run)
					}
				}
			}
		})
	}
}

// testShared: several slots of one stage in flight at once, waited in kick
// order and reused, each giving what the same batch gives alone.
func testShared(t *testing.T, newStage NewStage, f feed) {
	spec := zarr.Spec{Shape: []int64{0, 30, 20}, Chunk: []int64{2, 8, 8}, Shard: []int64{4, 16, 16}, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1}
	st := Open(t, newStage, stage.Config{Spec: spec, Workers: 3})
	const depth, frames = 3, 4
	want := make([]snapshot, depth)
	slots := make([]stage.Slot, depth)
	batch := func(i int) stage.Batch { return stage.Batch{FirstEpoch: int64(i * 2), Frames: frames} }
	for i := range slots {
		slots[i] = NewSlot(t, st, frames)
		out, _ := runBatch(t, f, slots[i], &spec, batch(i), uint64(i))
		want[i] = snap(out)
	}
	for round := 0; round < 3; round++ {
		for i, sl := range slots {
			if err := sl.Kick(batch(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i, sl := range slots {
			out, err := sl.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !snap(out).equal(want[i]) {
				t.Fatalf("round %d slot %d: output differs from the same batch run alone", round, i)
			}
		}
	}
}

// testMisuse: every out-of-order call is an error (never a panic or a
// hang), and leaves the slot and stage usable.
func testMisuse(t *testing.T, newStage NewStage) {
	spec := Geometries[2].Spec(zarr.Uint8, zarr.CodecZstd)
	st, err := newStage(stage.Config{Spec: spec, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.NewSlot(0); err == nil {
		t.Fatal("new slot of 0 frames: no error")
	}
	sl, err := st.NewSlot(6)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() error
		wantErr error // nil: must succeed; errAny: any error
	}{
		{"wait without kick", func() error { _, err := sl.Wait(context.Background()); return err }, stage.ErrNotKicked},
		{"kick past the slot's frames", func() error { return sl.Kick(stage.Batch{Frames: 7}) }, errAny},
		{"kick no frames", func() error { return sl.Kick(stage.Batch{Frames: 0}) }, errAny},
		{"kick", func() error { return sl.Kick(stage.Batch{Frames: 6}) }, nil},
		{"kick twice", func() error { return sl.Kick(stage.Batch{Frames: 6}) }, stage.ErrInFlight},
		{"free during a batch", sl.Free, stage.ErrInFlight},
		{"close during a batch", st.Close, stage.ErrLiveSlots},
		{"wait", func() error { _, err := sl.Wait(context.Background()); return err }, nil},
		{"wait twice", func() error { _, err := sl.Wait(context.Background()); return err }, stage.ErrNotKicked},
		{"kick again", func() error { return sl.Kick(stage.Batch{FirstEpoch: 1, Frames: 6}) }, nil},
		{"wait again", func() error { _, err := sl.Wait(context.Background()); return err }, nil},
		{"close with a live slot", st.Close, stage.ErrLiveSlots},
		{"free", sl.Free, nil},
		{"free twice", sl.Free, nil},
		{"kick after free", func() error { return sl.Kick(stage.Batch{Frames: 6}) }, stage.ErrFreed},
		{"wait after free", func() error { _, err := sl.Wait(context.Background()); return err }, stage.ErrFreed},
		{"close", st.Close, nil},
		{"close twice", st.Close, nil},
		{"new slot after close", func() error { _, err := st.NewSlot(6); return err }, stage.ErrClosed},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.wantErr == nil:
		case err == nil:
			t.Fatalf("%s: no error", s.name)
		case s.wantErr != errAny && !errors.Is(err, s.wantErr):
			t.Fatalf("%s: %v, want %v", s.name, err, s.wantErr)
		}
	}
	if _, err := newStage(stage.Config{Spec: zarr.Spec{Shape: []int64{0}}}); err == nil {
		t.Fatal("invalid spec: no error")
	}
}

var errAny = errors.New("any error")

// testAbort: a batch stopped by ctx or Cancel while in flight makes Wait
// return an error (or the whole output, if it won) only once the slot's
// buffers are no longer touched: the test writes staging right after Wait,
// which the race detector reports if a worker still reads it. The slot is
// then reused for a whole batch. Fed through FrameWriter, the test writes
// the input again right after Wait instead.
func testAbort(t *testing.T, newStage NewStage, f feed) {
	spec := zarr.Spec{Shape: []int64{0, 128, 128}, Chunk: []int64{4, 32, 32}, Shard: []int64{8, 64, 64}, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1}
	st := Open(t, newStage, stage.Config{Spec: spec, Workers: 2})
	b := stage.Batch{Frames: 16}
	sl := NewSlot(t, st, b.Frames)
	cancelCtx := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	}
	for _, tc := range []struct {
		name     string
		ctx      func() (context.Context, context.CancelFunc)
		canceler bool
	}{
		{"ctx canceled before wait", cancelCtx, false},
		{"deadline during wait", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Millisecond)
		}, false},
		{"cancel", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := sl.(stage.Canceler)
			if tc.canceler && !ok {
				t.Skip("the slot is no stage.Canceler")
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			in := put(t, f, sl, &spec, b.Frames, 3)
			if err := sl.Kick(b); err != nil {
				t.Fatal(err)
			}
			if tc.canceler {
				c.Cancel()
			}
			out, err := sl.Wait(ctx)
			if f == viaStaging {
				clear(sl.Staging()) // races with a worker that still reads it
			} else {
				sl.(stage.FrameWriter).WriteFrames(make([]byte, len(in)), 0) // the same race
			}
			switch {
			case err == nil: // the batch beat the abort: then it is whole
				if out == nil {
					t.Fatal("no output and no error")
				}
				CheckOutput(t, &spec, b, out, in)
			case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
				t.Fatalf("wait: %v, want %v", err, ctx.Err())
			}
			out, in = runBatch(t, f, sl, &spec, b, 4)
			CheckOutput(t, &spec, b, out, in)
		})
	}
	if c, ok := sl.(stage.Canceler); ok {
		c.Cancel() // nothing in flight: does nothing
		out, in := runBatch(t, f, sl, &spec, b, 5)
		CheckOutput(t, &spec, b, out, in)
	}
}

// testDown: with Config.Down every batch's Output.Down is the reference
// reduction of its frames (every method, reduce patterns with and without
// dim 0, odd frame counts), and the compressed output is unchanged by it.
func testDown(t *testing.T, newStage NewStage, f feed) {
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Float32} {
		for _, m := range downsample.Methods {
			if dt != zarr.Uint16 && m != downsample.Mean {
				continue // the other methods' arithmetic does not depend on the type
			}
			for _, reduce := range [][]bool{{false, true, true}, {true, true, true}, {false, false, true}} {
				t.Run(fmt.Sprintf("%v/%v/%v", dt, m, reduce), func(t *testing.T) {
					spec := zarr.Spec{Shape: []int64{0, 37, 41}, Chunk: []int64{4, 8, 8}, Shard: []int64{8, 16, 16}, DType: dt, Codec: zarr.CodecZstd, Level: 1}
					st := Open(t, newStage, stage.Config{Spec: spec, Workers: 2, Down: &stage.Downsample{Reduce: reduce, Method: m}})
					sl := NewSlot(t, st, 8)
					for i, b := range []stage.Batch{{FirstEpoch: 0, Frames: 8}, {FirstEpoch: 2, Frames: 7}, {FirstEpoch: 5, Frames: 1}} {
						out, in := runBatch(t, f, sl, &spec, b, uint64(i))
						CheckOutput(t, &spec, b, out, in)
						p, err := downsample.NewPlan(append([]int64{b.Frames}, spec.Shape[1:]...), reduce, dt, m)
						if err != nil {
							t.Fatal(err)
						}
						want := make([]byte, p.Out[0]*p.FrameBytes())
						downsample.Reference(p, want, in, 0, p.Out[0])
						if out.DownFrames != p.Out[0] || !bytes.Equal(out.Down, want) {
							t.Fatalf("batch %+v: %d down frames (want %d), equal to the reference: %v", b, out.DownFrames, p.Out[0], bytes.Equal(out.Down, want))
						}
					}
				})
			}
		}
	}
}

// testCarry: CarryFrames moves a slot's partial epoch (the bytes a flush
// leaves behind, a partial frame included) to the start of the next
// slot's input, or of the same slot's once its batch was waited for, and
// the batches then compress exactly the input they were given.
func testCarry(t *testing.T, newStage NewStage) {
	for _, g := range []Geometry{Geometries[2], Geometries[4]} {
		spec := g.Spec(zarr.Uint16, zarr.CodecZstd)
		for _, same := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/same slot %v", g.Name, same), func(t *testing.T) {
				st := Open(t, newStage, stage.Config{Spec: spec, Workers: 2})
				fb, c0 := spec.FrameBytes(), spec.Chunk[0]
				frames := 3 * c0
				a := NewSlot(t, st, frames)
				b := a
				if !same {
					b = NewSlot(t, st, frames)
				}
				// Two epochs and a tail of c0-1 frames and a half.
				n := (2*c0+c0-1)*fb + fb/2
				in := make([]byte, 3*frames*fb)
				Fill(in, 7)
				WriteFrames(t, a, in[:n], 0, 1)
				whole := 2 * c0 * fb
				first := stage.Batch{FirstEpoch: 4, Frames: 2 * c0}
				if !same {
					if err := a.(stage.FrameWriter).CarryFrames(b, whole, n-whole); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.Kick(first); err != nil {
					t.Fatal(err)
				}
				out, err := a.Wait(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				CheckOutput(t, &spec, first, out, in[:whole])
				if same {
					if err := a.(stage.FrameWriter).CarryFrames(b, whole, n-whole); err != nil {
						t.Fatal(err)
					}
				}
				// The rest of the second batch: a partial last epoch.
				second := stage.Batch{FirstEpoch: 6, Frames: 2*c0 + 1}
				end := whole + second.Frames*fb
				WriteFrames(t, b, in[n:end], n-whole, 2)
				if err := b.Kick(second); err != nil {
					t.Fatal(err)
				}
				out, err = b.Wait(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				CheckOutput(t, &spec, second, out, in[whole:end])
			})
		}
	}
	spec := Geometries[2].Spec(zarr.Uint16, zarr.CodecZstd)
	st := Open(t, newStage, stage.Config{Spec: spec, Workers: 1})
	sl := NewSlot(t, st, 2*spec.Chunk[0])
	if err := sl.(stage.FrameWriter).CarryFrames(sl, 1, 1); err == nil {
		t.Fatal("carry from a byte not at an epoch start: no error")
	}
}
