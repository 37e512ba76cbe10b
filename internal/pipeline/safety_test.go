package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

// metaShape0 is shape[0] of the committed zarr.json in files.
func metaShape0(t *testing.T, files map[string][]byte) int64 {
	t.Helper()
	m, err := zarr.ParseArray(files["zarr.json"])
	if err != nil {
		t.Fatalf("zarr.json: %v", err)
	}
	return m.Spec.Shape[0]
}

// TestFlushCommitsSlowStream: a stream far too slow to fill a slot still
// commits its shard rows within about FlushInterval of their last frame;
// an abort then keeps them. The flushed store is byte-identical to one
// written without flushes (kicks happen at epoch boundaries, and a shard
// file is in C order of inner chunks whatever the batches).
func TestFlushCommitsSlowStream(t *testing.T) {
	for _, codec := range testCodecs {
		for _, depth := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%v/depth%d", codec, depth), func(t *testing.T) {
				spec, _ := midSpec(codec) // rows of 8 frames, epochs of 4
				fb := spec.FrameBytes()
				frames := int64(45)
				input := genInput(frames*fb, 21)
				ref, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: depth, FlushInterval: -1}})
				if err != nil {
					t.Fatal(err)
				}

				mem := sinktest.NewMem()
				st := newStage(t, spec)
				defer st.Close()
				w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: depth, FlushInterval: 5 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if w.Settings().BatchFrames <= frames {
					t.Fatalf("batch of %d frames: the test needs slots that never fill", w.Settings().BatchFrames)
				}
				// Three rows and a bit, in pieces, then silence: the rows
				// must commit without more input.
				cut := int64(3*8+2) * fb
				for off := int64(0); off < cut; off += 1000 {
					if _, err := w.Write(input[off:min(off+1000, cut)]); err != nil {
						t.Fatal(err)
					}
				}
				// Committed counts a row when its shards are in; zarr.json
				// follows right after.
				if !waitFor(10*time.Second, func() bool { return w.Stats().Committed == 24 && metaShape0(t, mem.Files()) == 24 }) {
					t.Fatalf("committed %d frames (zarr.json says %d) after the stream went quiet, want 24 (three rows)", w.Stats().Committed, metaShape0(t, mem.Files()))
				}
				// The rest, then Close: the same store as without flushes.
				if _, err := w.Write(input[cut:]); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				sameFiles(t, "flushed vs unflushed", mem.Files(), ref)
			})
		}
	}
}

// TestFlushThenAbort: what a flush committed survives an abort (Ctrl-C on
// a slow stream keeps every complete shard row).
func TestFlushThenAbort(t *testing.T) {
	spec, _ := midSpec(zarr.CodecZstd)
	fb := spec.FrameBytes()
	input := genInput(40*fb, 22)
	mem := sinktest.NewMem()
	st := newStage(t, spec)
	defer st.Close()
	w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for f := int64(0); f < 37; f++ { // four rows and five frames, one frame at a time
		if _, err := w.Write(input[f*fb : (f+1)*fb]); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(10*time.Second, func() bool { return w.Stats().Committed == 32 }) {
		t.Fatalf("committed %d frames, want 32", w.Stats().Committed)
	}
	w.Abort(errors.New("interrupt"))
	shape0, data, err := readStore(mem.Files(), &spec)
	if err != nil || shape0 != 32 || !bytes.Equal(data, input[:32*fb]) {
		t.Fatalf("after the abort: shape[0] %d, %d bytes, %v; want the 32 committed frames", shape0, len(data), err)
	}
}

// TestFixedShapeHonest: with a fixed shape[0], zarr.json names only the
// committed frames while the run goes on and after an abort, and the
// declared size only once every frame is in.
func TestFixedShapeHonest(t *testing.T) {
	spec, _ := midSpec(zarr.CodecLZ4)
	spec.Shape[0] = 40
	fb := spec.FrameBytes()
	input := genInput(40*fb, 23)
	for _, tc := range []struct {
		name  string
		write int64 // frames written before the end
		abort bool
		want  int64 // shape[0] at the end
	}{
		{"all frames", 40, false, 40},
		{"aborted after 3 rows", 27, true, 24},
		{"short input", 30, false, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sinktest.NewMem()
			st := newStage(t, spec)
			defer st.Close()
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, FlushInterval: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got := metaShape0(t, mem.Files()); got != 0 {
				t.Errorf("zarr.json at start says %d frames, want 0", got)
			}
			if _, err := w.Write(input[:tc.write*fb]); err != nil {
				t.Fatal(err)
			}
			rows := tc.write / 8 * 8
			if !waitFor(10*time.Second, func() bool { return w.Stats().Committed >= rows && metaShape0(t, mem.Files()) >= rows }) {
				t.Fatalf("committed %d frames, want %d", w.Stats().Committed, rows)
			}
			if got := metaShape0(t, mem.Files()); got != w.Stats().Committed || got > tc.write {
				t.Errorf("mid-run zarr.json says %d frames, committed %d of %d written", got, w.Stats().Committed, tc.write)
			}
			if tc.abort {
				w.Abort(errors.New("interrupt"))
			} else {
				w.Close()
			}
			shape0, data, err := readStore(mem.Files(), &spec)
			if err != nil || shape0 != tc.want || !bytes.Equal(data, input[:tc.want*fb]) {
				t.Fatalf("end: shape[0] %d (%v), want %d frames equal to the input", shape0, err, tc.want)
			}
		})
	}
}

// corruptStage wraps a stage and damages one batch's Output the way a
// broken backend could; delivery must refuse it with a clear error before
// writing a byte of the damaged batch, and the store must hold exactly
// the rows committed before.
type corruptStage struct {
	stage.Stage
	at     int64 // the batch starting at this epoch is damaged
	damage func(o *stage.Output)
}

func (c *corruptStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	s, err := c.Stage.NewSlot(maxFrames)
	if err != nil {
		return nil, err
	}
	return &corruptSlot{Slot: s, c: c}, nil
}

type corruptSlot struct {
	stage.Slot
	c   *corruptStage
	b   stage.Batch
	out stage.Output
}

func (s *corruptSlot) Kick(b stage.Batch) error { s.b = b; return s.Slot.Kick(b) }

func (s *corruptSlot) Wait(ctx context.Context) (*stage.Output, error) {
	out, err := s.Slot.Wait(ctx)
	if err != nil || s.b.FirstEpoch != s.c.at {
		return out, err
	}
	// A copy: the slot's own plan must stay intact for its next batch.
	s.out = stage.Output{Data: out.Data, Times: out.Times,
		Segs: append([]stage.Segment(nil), out.Segs...), Chunks: append([]stage.Chunk(nil), out.Chunks...)}
	s.c.damage(&s.out)
	return &s.out, nil
}

// TestDeliveryGuards: every check delivery makes on a stage's output fires
// on the damage it guards against.
func TestDeliveryGuards(t *testing.T) {
	spec, _ := midSpec(zarr.CodecZstd) // rows of 2 epochs, 2x3 shards per row
	tests := []struct {
		name   string
		damage func(o *stage.Output)
		want   string
	}{
		{"row before the open one", func(o *stage.Output) { o.Segs[0].Row = 0 }, "out of order"},
		{"row before the batch", func(o *stage.Output) {
			for i := range o.Segs {
				o.Segs[i].Row = 1
			}
		}, "out of order"},
		{"negative column", func(o *stage.Output) { o.Segs[0].Col = -1 }, "shard column -1 out of range"},
		{"column past the row", func(o *stage.Output) { o.Segs[0].Col = 6 }, "shard column 6 out of range"},
		{"negative offset", func(o *stage.Output) { o.Segs[0].Off = -1 }, "outside the output"},
		{"negative length", func(o *stage.Output) { o.Segs[0].Len = -1 }, "outside the output"},
		{"past the data", func(o *stage.Output) { o.Segs[len(o.Segs)-1].Len += 1 }, "outside the output"},
		{"negative first chunk", func(o *stage.Output) { o.Segs[0].First = -1 }, "outside the output"},
		{"negative chunk count", func(o *stage.Output) { o.Segs[0].N = -1 }, "outside the output"},
		{"chunks past the list", func(o *stage.Output) { o.Segs[len(o.Segs)-1].N++ }, "outside the output"},
		{"inner index negative", func(o *stage.Output) { o.Chunks[0].Inner = -1 }, "outside its segment"},
		{"inner index past the shard", func(o *stage.Output) { o.Chunks[0].Inner = 1 << 20 }, "outside its segment"},
		{"chunk before its segment", func(o *stage.Output) { o.Chunks[o.Segs[1].First].Off = o.Segs[1].Off - 1 }, "outside its segment"},
		{"chunk size negative", func(o *stage.Output) { o.Chunks[0].Size = -1 }, "outside its segment"},
		{"chunk past its segment", func(o *stage.Output) { o.Chunks[0].Size = o.Segs[0].Len + 1 }, "outside its segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := genInput(45*spec.FrameBytes(), 24)
			st := newStage(t, spec)
			defer st.Close()
			// Batches of one epoch; the third (epochs 4.., row 2) is damaged
			// after rows 0 and 1 were committed.
			cs := &corruptStage{Stage: st, at: 4, damage: tc.damage}
			mem := sinktest.NewMem()
			_, err := runWriter(t, spec, input, runOpts{cfg: Config{Stage: cs, Sink: mem, Depth: 2, BatchBytes: 1}})
			if err == nil || !strings.Contains(err.Error(), "compress stage output") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Close: %v, want a compress-stage-output error with %q", err, tc.want)
			}
			shape0, data, rerr := readStore(mem.Files(), &spec)
			if rerr != nil || shape0 != 16 || !bytes.Equal(data, input[:16*spec.FrameBytes()]) {
				t.Fatalf("store after the refused batch: shape[0] %d, %v; want the 16 frames committed before it", shape0, rerr)
			}
			if mem.Temps() != 0 {
				t.Errorf("%d temp files left", mem.Temps())
			}
		})
	}
}

// TestWriterLimits: settings that would take the machine's memory are
// refused before anything is allocated, with what was asked; tiny chunks
// get batches bounded by chunk count.
func TestWriterLimits(t *testing.T) {
	t.Run("depth", func(t *testing.T) {
		spec, _ := midSpec(zarr.CodecZstd)
		for _, d := range []int{-1, MaxDepth + 1, 5000, 1 << 62} {
			mem := sinktest.NewMem()
			_, err := New(context.Background(), Config{Spec: spec, Stage: newStage(t, spec), Sink: mem, Depth: d})
			var de *DepthError
			if !errors.As(err, &de) || de.Depth != d {
				t.Errorf("depth %d: err %v, want a *DepthError", d, err)
			}
			if len(mem.Files()) != 0 {
				t.Errorf("depth %d: files written before the refusal", d)
			}
		}
	})
	t.Run("tiny chunks", func(t *testing.T) {
		spec := mkSpec(zarr.Uint8, zarr.CodecZstd, []int64{0}, []int64{1}, []int64{1})
		mem := sinktest.NewMem()
		st := newStage(t, spec)
		defer st.Close()
		w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem})
		if err != nil {
			t.Fatal(err)
		}
		set := w.Settings()
		if set.BatchChunks > MaxBatchChunks {
			t.Errorf("batch of %d chunks, limit %d", set.BatchChunks, MaxBatchChunks)
		}
		if m := settingsMemory(set); m > 64<<20 {
			t.Errorf("writer memory %.0f MiB for 1-byte chunks", m/(1<<20))
		}
		input := genInput(1000, 25)
		w.Write(input)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, data, err := readStore(mem.Files(), &spec); err != nil || !bytes.Equal(data, input) {
			t.Fatalf("store: %v", err)
		}
	})
	t.Run("index memory", func(t *testing.T) {
		// 1024 shards per row of 64 Ki chunks each: 1 GiB of index.
		spec := mkSpec(zarr.Uint8, zarr.CodecNone, []int64{0, 1 << 17, 1 << 15}, []int64{1, 1, 128}, []int64{1, 256, 1 << 15})
		set := settle(&spec, Config{})
		err := checkMemory(set, 512<<20)
		var me *MemoryError
		if !errors.As(err, &me) || !me.IndexBound() || !strings.Contains(err.Error(), "of shard indexes") {
			t.Fatalf("checkMemory: %v, want an index-bound *MemoryError", err)
		}
	})
}

// allocStage wraps a stage whose NewSlot is slow after the first slot, or
// fails at slot failAt (1-based; 0: never).
type allocStage struct {
	stage.Stage
	delay  time.Duration
	failAt int
	n      int
}

var errNoMemory = errors.New("out of pinned memory")

func (a *allocStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	a.n++
	if a.n > 1 {
		time.Sleep(a.delay)
	}
	if a.n == a.failAt {
		return nil, errNoMemory
	}
	return a.Stage.NewSlot(maxFrames)
}

// TestBackgroundAlloc: New returns once the first slot is allocated; the
// others come while it fills, and the store is the same as with eager
// slots. A slot that cannot be allocated fails the run with a clear error;
// an abort during allocation frees what was allocated.
func TestBackgroundAlloc(t *testing.T) {
	spec, frames := midSpec(zarr.CodecZstd)
	input := genInput(frames*spec.FrameBytes(), 41)
	batch := spec.EpochFrames() * spec.FrameBytes()
	ref, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: 1, BatchBytes: batch}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("slow", func(t *testing.T) {
		st := newStage(t, spec)
		defer st.Close()
		as := &allocStage{Stage: st, delay: 50 * time.Millisecond}
		start := time.Now()
		mem := sinktest.NewMem()
		w, err := New(context.Background(), Config{Spec: spec, Stage: as, Sink: mem, Depth: 4, BatchBytes: batch})
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 40*time.Millisecond {
			t.Logf("New took %v (the background slots take 150 ms)", el)
		}
		w.Write(input)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if s := w.Stats(); s.StallAlloc <= 0 || s.AllocRest <= 0 {
			t.Errorf("stats %+v: want the producer to have waited for the background allocation", s)
		}
		sameFiles(t, "background alloc", mem.Files(), ref)
	})
	t.Run("fails", func(t *testing.T) {
		st := newStage(t, spec)
		defer func() {
			if err := st.Close(); err != nil {
				t.Errorf("stage Close: %v (a slot not freed?)", err)
			}
		}()
		_, err := runWriter(t, spec, input, runOpts{cfg: Config{Stage: &allocStage{Stage: st, failAt: 3}, Depth: 4, BatchBytes: batch}})
		if !errors.Is(err, errNoMemory) || !strings.Contains(err.Error(), "allocate slot 3 of 4") {
			t.Fatalf("Close: %v, want the allocation failure of slot 3", err)
		}
	})
	t.Run("abort while allocating", func(t *testing.T) {
		st := newStage(t, spec)
		as := &allocStage{Stage: st, delay: 100 * time.Millisecond}
		w, err := New(context.Background(), Config{Spec: spec, Stage: as, Sink: sinktest.NewMem(), Depth: 6, BatchBytes: batch})
		if err != nil {
			t.Fatal(err)
		}
		w.Abort(errors.New("interrupt"))
		if err := st.Close(); err != nil {
			t.Errorf("stage Close: %v (a slot not freed?)", err)
		}
	})
}

// TestResumeWriter: a Writer continuing an array at the start of its
// last, partial shard row (StartFrame), fed that row's frames again and
// then the rest, leaves the very store one uninterrupted run leaves; the
// old zarr.json stands until the committed rows pass it.
func TestResumeWriter(t *testing.T) {
	for _, codec := range testCodecs {
		for _, depth := range []int{1, 3} {
			for _, stop := range []int64{0, 5, 8, 19, 24, 45} {
				t.Run(fmt.Sprintf("%v/depth%d/stop%d", codec, depth, stop), func(t *testing.T) {
					spec, frames := midSpec(codec) // rows of 8 frames
					fb := spec.FrameBytes()
					input := genInput(frames*fb, 51)
					ref, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: depth}})
					if err != nil {
						t.Fatal(err)
					}
					// The first run stops after stop frames (Close: its last
					// row partial).
					mem := sinktest.NewMem()
					if _, err := runWriter(t, spec, input[:stop*fb], runOpts{cfg: Config{Depth: depth, Sink: mem}}); err != nil {
						t.Fatal(err)
					}
					start := stop / 8 * 8
					st := newStage(t, spec)
					defer st.Close()
					w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: depth, StartFrame: start, ExistingFrames: stop})
					if err != nil {
						t.Fatal(err)
					}
					if got := metaShape0(t, mem.Files()); got != stop {
						t.Fatalf("zarr.json at resume start says %d, want the %d it said", got, stop)
					}
					if _, err := w.Write(input[start*fb:]); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					sameFiles(t, "resumed", mem.Files(), ref)
				})
			}
		}
	}
	t.Run("refused", func(t *testing.T) {
		spec, _ := midSpec(zarr.CodecZstd)
		for _, c := range []Config{{StartFrame: 4, ExistingFrames: 6}, {StartFrame: 16, ExistingFrames: 8}, {StartFrame: -8}} {
			c.Spec, c.Stage, c.Sink = spec, newStage(t, spec), sinktest.NewMem()
			if _, err := New(context.Background(), c); err == nil || !strings.Contains(err.Error(), "resume at frame") {
				t.Errorf("start %d of %d: %v", c.StartFrame, c.ExistingFrames, err)
			}
		}
	})
}
