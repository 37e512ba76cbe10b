package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// newStage builds the compress stage the tests run with: the real CPU
// stage, with 3 workers so that chunks of a batch finish out of order.
func newStage(t testing.TB, spec zarr.Spec) stage.Stage {
	t.Helper()
	return newCPU(t, stage.Config{Spec: spec, Workers: 3})
}

// newCPU builds a CPU stage or fails t; the caller closes it.
func newCPU(t testing.TB, cfg stage.Config) stage.Stage {
	t.Helper()
	st, err := cpu.New(cfg)
	if err != nil {
		t.Fatalf("new cpu stage: %v", err)
	}
	return st
}

type shapeCase struct {
	name   string
	spec   zarr.Spec
	frames int64 // frames of input
}

func mkSpec(dt zarr.DType, codec zarr.Codec, shape, chunk, shard []int64) zarr.Spec {
	return zarr.Spec{Shape: shape, DType: dt, Chunk: chunk, Shard: shard, Codec: codec, Level: codec.DefaultLevel()}
}

// shapeCases are ragged in every way the writer must handle: shapes not a
// multiple of chunk or shard, partial last epoch, partial last shard row,
// shard rows spanning batches, batches spanning shard rows, rank 1 to 4.
func shapeCases(codec zarr.Codec) []shapeCase {
	return []shapeCase{
		{"rank3-ragged-growing", mkSpec(zarr.Uint16, codec, []int64{0, 13, 29}, []int64{3, 4, 8}, []int64{6, 8, 16}), 23},
		{"rank3-ragged-fixed", mkSpec(zarr.Uint16, codec, []int64{23, 13, 29}, []int64{3, 4, 8}, []int64{6, 8, 16}), 23},
		{"rank1", mkSpec(zarr.Uint32, codec, []int64{0}, []int64{7}, []int64{21}), 50},
		{"rank2-tall-shard", mkSpec(zarr.Uint8, codec, []int64{0, 37}, []int64{2, 10}, []int64{10, 20}), 31},
		{"rank4-exact", mkSpec(zarr.Float32, codec, []int64{0, 2, 8, 8}, []int64{2, 1, 4, 4}, []int64{4, 2, 8, 8}), 16},
		{"rank3-one-epoch-rows", mkSpec(zarr.Int16, codec, []int64{0, 5, 6}, []int64{1, 5, 3}, []int64{1, 5, 6}), 9},
	}
}

// genInput makes n bytes that compress somewhat: runs mixed with noise.
func genInput(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		if i%64 < 40 {
			b[i] = byte(i / 64)
		} else {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

// hangLimit is how long one runWriter may take before it counts as hung.
const hangLimit = 30 * time.Second

type runOpts struct {
	cfg       Config
	writeSize int // 0: all at once
	readFrom  bool
}

// runWriter writes input through a new Writer into cfg.Sink (a Mem when
// nil) and returns the store's files and Close's error.
func runWriter(t testing.TB, spec zarr.Spec, input []byte, o runOpts) (map[string][]byte, error) {
	t.Helper()
	cfg := o.cfg
	cfg.Spec = spec
	mem, _ := cfg.Sink.(*sinktest.Mem)
	if cfg.Sink == nil {
		mem = sinktest.NewMem()
		cfg.Sink = mem
	}
	if cfg.Stage == nil {
		st := newStage(t, spec)
		cfg.Stage = st
		defer func() {
			// The stage refuses to close while a slot is not freed: this
			// checks that every buffer came back, on every path.
			if err := st.Close(); err != nil {
				t.Errorf("stage Close: %v", err)
			}
		}()
	}
	w, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// A deadlock must fail the test, not wait for go test's timeout.
	hung := time.AfterFunc(hangLimit, func() {
		panic(fmt.Sprintf("%s: the writer hung for %v (deadlock)", t.Name(), hangLimit))
	})
	defer hung.Stop()
	var werr error
	if o.readFrom {
		_, werr = w.ReadFrom(bytes.NewReader(input))
	} else {
		p := input
		for len(p) > 0 && werr == nil {
			k := len(p)
			if o.writeSize > 0 {
				k = min(k, o.writeSize)
			}
			var n int
			n, werr = w.Write(p[:k])
			if werr == nil && n != k {
				t.Fatalf("Write returned %d of %d bytes and no error", n, k)
			}
			p = p[k:]
		}
	}
	cerr := w.Close()
	if werr != nil && !errors.Is(cerr, werr) && cerr != werr {
		t.Fatalf("Write error %v, but Close returned %v", werr, cerr)
	}
	if mem == nil {
		return nil, cerr
	}
	return mem.Files(), cerr
}

func TestRoundTrip(t *testing.T) {
	for _, codec := range testCodecs {
		for _, sc := range shapeCases(codec) {
			for _, depth := range []int{1, 3} {
				name := fmt.Sprintf("%v/%s/depth%d", codec, sc.name, depth)
				t.Run(name, func(t *testing.T) {
					input := genInput(sc.frames*sc.spec.FrameBytes(), 1)
					// small batches: many batches, rows spanning them
					cfg := Config{Depth: depth, BatchBytes: 1}
					files, err := runWriter(t, sc.spec, input, runOpts{cfg: cfg, writeSize: 1000})
					if err != nil {
						t.Fatalf("Close: %v", err)
					}
					if codec == zarr.CodecNone {
						// The naive reference tiler must give the same store.
						cfg.Stage = newRefStage(sc.spec)
						ref, err := runWriter(t, sc.spec, input, runOpts{cfg: cfg, writeSize: 1000})
						if err != nil {
							t.Fatalf("Close with the reference stage: %v", err)
						}
						sameFiles(t, "cpu stage vs reference stage", files, ref)
					}
					shape0, data, err := readStore(files, &sc.spec)
					if err != nil {
						t.Fatalf("store does not verify: %v", err)
					}
					if shape0 != sc.frames {
						t.Errorf("shape[0] = %d, want %d", shape0, sc.frames)
					}
					if !bytes.Equal(data, input) {
						t.Errorf("array bytes differ from the input")
					}
				})
			}
		}
	}
}

// slotCounter counts the slots a stage hands out.
type slotCounter struct {
	stage.Stage
	n atomic.Int32
}

func (c *slotCounter) NewSlot(maxFrames int64) (stage.Slot, error) {
	c.n.Add(1)
	return c.Stage.NewSlot(maxFrames)
}

// TestSlotsOnDemand: a short input allocates only the first slot (a
// one-frame append must not pin GBs it never fills); a long one gets all
// Depth slots. Both stores are whole.
func TestSlotsOnDemand(t *testing.T) {
	spec, _ := midSpec(zarr.CodecLZ4)
	fb := spec.FrameBytes()
	for _, tc := range []struct {
		name      string
		frames    int64
		wantSlots int32
	}{
		{"one frame", 1, 1},
		{"many batches", 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &slotCounter{Stage: newStage(t, spec)}
			defer st.Close()
			mem := sinktest.NewMem()
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: 3, BatchBytes: 64 * spec.EpochFrames() * fb})
			if err != nil {
				t.Fatal(err)
			}
			frames := tc.frames
			if frames == 0 {
				frames = 4 * w.Settings().BatchFrames
			}
			input := genInput(frames*fb, 5)
			if _, err := w.Write(input); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := st.n.Load(); got != tc.wantSlots {
				t.Errorf("%d slots allocated, want %d", got, tc.wantSlots)
			}
			if _, data, err := readStore(mem.Files(), &spec); err != nil || !bytes.Equal(data, input) {
				t.Fatalf("store: %d bytes, %v; want the %d input bytes", len(data), err, len(input))
			}
		})
	}
}
