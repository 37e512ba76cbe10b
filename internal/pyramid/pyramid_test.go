package pyramid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

func newCPU(c stage.Config) (stage.Stage, error) {
	c.Workers = 2
	return cpu.New(c)
}

// level reads level k of the image in files back through the zarr reader.
func level(t *testing.T, files map[string][]byte, k int) (*zarr.Meta, []byte) {
	t.Helper()
	fsys := fstest.MapFS{}
	prefix := fmt.Sprintf("%d/", k)
	for key, b := range files {
		if rest, ok := strings.CutPrefix(key, prefix); ok {
			fsys[rest] = &fstest.MapFile{Data: b}
		}
	}
	a, err := zarr.Open(fsys)
	if err != nil {
		t.Fatalf("level %d: %v", k, err)
	}
	defer a.Close()
	if _, err := a.Verify(zarr.VerifyOptions{}); err != nil {
		t.Fatalf("level %d does not verify: %v", k, err)
	}
	var buf bytes.Buffer
	if err := a.ReadAll(&buf); err != nil {
		t.Fatalf("level %d: %v", k, err)
	}
	return a.Meta, buf.Bytes()
}

func input(n int64, dt zarr.DType, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if dt == zarr.Float32 || dt == zarr.Float64 {
		// Finite floats: keep exponent bytes tame so means stay exact.
		size := dt.Size()
		for i := size - 1; i < len(b); i += size {
			b[i] &= 0x3f
		}
	}
	return b
}

// TestPyramid: every level equals the reference reduction of the level
// above it (exactly for integers; floats too, since both backends and the
// fast path round alike and the reference is compared within one ulp by
// the downsample tests), for methods, dtypes, ragged shapes, with and
// without dim 0 reduced, at several depths.
func TestPyramid(t *testing.T) {
	type tc struct {
		name   string
		spec   zarr.Spec
		frames int64
		reduce []bool
		levels int
	}
	mk := func(dt zarr.DType, shape, chunk, shard []int64) zarr.Spec {
		return zarr.Spec{Shape: shape, DType: dt, Chunk: chunk, Shard: shard, Codec: zarr.CodecZstd, Level: 1}
	}
	var cases []tc
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Uint8, zarr.Int32, zarr.Float32, zarr.Uint64} {
		cases = append(cases,
			tc{fmt.Sprintf("%v/space", dt), mk(dt, []int64{0, 37, 53}, []int64{4, 8, 16}, []int64{8, 16, 32}), 23, []bool{false, true, true}, 4},
			tc{fmt.Sprintf("%v/time+space", dt), mk(dt, []int64{0, 29, 31}, []int64{3, 8, 8}, []int64{6, 16, 16}), 41, []bool{true, true, true}, 3},
		)
	}
	cases = append(cases, tc{"fixed/zyx", mk(zarr.Uint16, []int64{19, 2, 45, 33}, []int64{2, 2, 16, 16}, []int64{4, 2, 32, 32}), 19, []bool{true, false, true, true}, 3})
	for _, c := range cases {
		for _, m := range downsample.Methods {
			for _, depth := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%v/depth%d", c.name, m, depth), func(t *testing.T) {
					raw := input(c.frames*c.spec.FrameBytes(), c.spec.DType, uint64(depth))
					mem := sinktest.NewMem()
					w, err := New(context.Background(), Config{Spec: c.spec, Levels: c.levels, Reduce: c.reduce, Method: m,
						NewStage: newCPU, Sink: mem, Writer: pipeline.Config{Depth: depth, BatchBytes: 1}})
					if err != nil {
						t.Fatal(err)
					}
					for off := 0; off < len(raw); off += 777 {
						if _, err := w.Write(raw[off:min(off+777, len(raw))]); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					files := mem.Files()
					want := raw
					shape := append([]int64{c.frames}, c.spec.Shape[1:]...)
					for k := 0; k < c.levels; k++ {
						meta, got := level(t, files, k)
						if !slicesEqual(meta.Spec.Shape, shape) {
							t.Fatalf("level %d shape %v, want %v", k, meta.Spec.Shape, shape)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("level %d differs from the reference reduction of level %d", k, k-1)
						}
						p, _ := downsample.NewPlan(shape, c.reduce, c.spec.DType, m)
						next := make([]byte, p.Out[0]*p.FrameBytes())
						downsample.Reference(p, next, want, 0, p.Out[0])
						if c.spec.DType == zarr.Float32 || c.spec.DType == zarr.Float64 {
							// Within one ulp of the reference: compare the
							// next level from what we wrote instead.
							p.Frames(next, want, 0, p.Out[0])
						}
						want, shape = next, p.Out
					}
				})
			}
		}
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPyramidConstant: a constant image is that constant at every level
// for every integer dtype, dim 0 reduced or not (the drift of other
// writers: 1000 came out as 343 at level 2).
func TestPyramidConstant(t *testing.T) {
	for _, dt := range zarr.DTypes {
		if dt == zarr.Float32 || dt == zarr.Float64 {
			continue
		}
		for _, reduce0 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/dim0-%v", dt, reduce0), func(t *testing.T) {
				spec := zarr.Spec{Shape: []int64{0, 33, 47}, DType: dt, Chunk: []int64{3, 8, 8}, Shard: []int64{6, 16, 16}, Codec: zarr.CodecLZ4, Level: 1}
				size := dt.Size()
				c := uint64(1000) & (1<<(8*uint(size)) - 1)
				raw := make([]byte, 25*spec.FrameBytes())
				for i := 0; i < len(raw); i += size {
					for k := 0; k < size; k++ {
						raw[i+k] = byte(c >> (8 * k))
					}
				}
				mem := sinktest.NewMem()
				w, err := New(context.Background(), Config{Spec: spec, Levels: 5, Reduce: []bool{reduce0, true, true}, Method: downsample.Mean,
					NewStage: newCPU, Sink: mem, Writer: pipeline.Config{Depth: 2}})
				if err != nil {
					t.Fatal(err)
				}
				w.Write(raw)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				for k := 0; k < 5; k++ {
					_, got := level(t, mem.Files(), k)
					for i := 0; i < len(got); i += size {
						if !bytes.Equal(got[i:i+size], raw[:size]) {
							t.Fatalf("level %d element %d is %x, want %x", k, i/size, got[i:i+size], raw[:size])
						}
					}
				}
			})
		}
	}
}

// TestPyramidAbort: an abort mid-stream leaves every level a store that
// verifies and names only committed frames.
func TestPyramidAbort(t *testing.T) {
	spec := zarr.Spec{Shape: []int64{0, 64, 64}, DType: zarr.Uint16, Chunk: []int64{2, 16, 16}, Shard: []int64{4, 32, 32}, Codec: zarr.CodecZstd, Level: 1}
	raw := input(40*spec.FrameBytes(), spec.DType, 3)
	mem := sinktest.NewMem()
	w, err := New(context.Background(), Config{Spec: spec, Levels: 3, Reduce: []bool{false, true, true}, Method: downsample.Mean,
		NewStage: newCPU, Sink: mem, Writer: pipeline.Config{Depth: 3, BatchBytes: 1}})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw[:len(raw)/2])
	reason := errors.New("interrupt")
	if err := w.Abort(reason); !errors.Is(err, reason) {
		t.Fatalf("Abort: %v", err)
	}
	for k := 0; k < 3; k++ {
		level(t, mem.Files(), k)
	}
}

func TestLevelSpecs(t *testing.T) {
	spec := zarr.Spec{Shape: []int64{0, 100, 70}, DType: zarr.Uint16, Chunk: []int64{8, 64, 64}, Shard: []int64{16, 128, 128}, Codec: zarr.CodecZstd, Level: 1}
	specs, err := LevelSpecs(spec, 4, []bool{false, true, true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][3][]int64{
		{{0, 100, 70}, {8, 64, 64}, {16, 128, 128}},
		{{0, 50, 35}, {8, 50, 35}, {16, 50, 35}},
		{{0, 25, 18}, {8, 25, 18}, {16, 25, 18}},
		{{0, 13, 9}, {8, 13, 9}, {16, 13, 9}},
	}
	for k, s := range specs {
		if !slicesEqual(s.Shape, want[k][0]) || !slicesEqual(s.Chunk, want[k][1]) || !slicesEqual(s.Shard, want[k][2]) {
			t.Errorf("level %d: shape %v chunk %v shard %v, want %v", k, s.Shape, s.Chunk, s.Shard, want[k])
		}
	}
	if n := AutoLevels(spec, []bool{false, true, true}); n != 2 {
		t.Errorf("AutoLevels = %d, want 2 (100x70 fits in one 64x64 chunk after one halving)", n)
	}
}

// TestPyramidStartFails: a level whose stage cannot start fails New with
// that error, and the levels already started are torn down (their stages
// closed with every slot freed).
func TestPyramidStartFails(t *testing.T) {
	spec := zarr.Spec{Shape: []int64{0, 64, 64}, DType: zarr.Uint16, Chunk: []int64{2, 16, 16}, Shard: []int64{4, 32, 32}, Codec: zarr.CodecZstd, Level: 1}
	refused := errors.New("no GPU")
	var made []stage.Stage
	n := 0
	newStage := func(c stage.Config) (stage.Stage, error) {
		n++
		if n == 2 { // the second level built (level 1: they are built bottom up)
			return nil, refused
		}
		st, err := newCPU(c)
		made = append(made, st)
		return st, err
	}
	_, err := New(context.Background(), Config{Spec: spec, Levels: 3, Reduce: []bool{false, true, true}, NewStage: newStage, Sink: sinktest.NewMem()})
	if !errors.Is(err, refused) {
		t.Fatalf("New: %v, want the stage's error", err)
	}
	for _, st := range made {
		if err := st.Close(); err != nil {
			t.Errorf("a stage left with live slots: %v", err)
		}
	}
}

// failRows fails the creation of level 0's shard files from shard row
// `from` on, like a disk that filled while the lower levels, fed from
// level 0's batches before its files are written, go on.
type failRows struct {
	sink.Sink
	from int
}

func (s failRows) Create(key string) (sink.File, error) {
	var row int
	if n, _ := fmt.Sscanf(key, "0/c/%d/", &row); n == 1 && row >= s.from {
		return nil, syscall.ENOSPC
	}
	return s.Sink.Create(key)
}

func (s failRows) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// TestPyramidLevel0Fails: when level 0's last rows fail, no lower level is
// left naming frames reduced from level-0 frames that level 0 does not
// name, whether the stream ends in Close or in Abort.
func TestPyramidLevel0Fails(t *testing.T) {
	spec := zarr.Spec{Shape: []int64{0, 32, 32}, DType: zarr.Uint16, Chunk: []int64{2, 16, 16}, Shard: []int64{4, 32, 32}, Codec: zarr.CodecLZ4, Level: 1}
	raw := input(40*spec.FrameBytes(), spec.DType, 5)
	for _, abort := range []bool{false, true} {
		for _, reduce := range [][]bool{{true, true, true}, {false, true, true}} {
			t.Run(fmt.Sprintf("abort %v/reduce t %v", abort, reduce[0]), func(t *testing.T) {
				mem := sinktest.NewMem()
				w, err := New(context.Background(), Config{Spec: spec, Levels: 3, Reduce: reduce, Method: downsample.Mean,
					NewStage: newCPU, Sink: failRows{mem, 2}, Writer: pipeline.Config{Depth: 3, BatchBytes: 1}})
				if err != nil {
					t.Fatal(err)
				}
				w.Write(raw)
				if abort {
					w.Abort(errors.New("stop"))
				} else if err := w.Close(); !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Close: %v, want ENOSPC", err)
				}
				m0, _ := level(t, mem.Files(), 0)
				n0 := m0.Spec.Shape[0]
				if n0 > 8 {
					t.Fatalf("level 0 names %d frames, its rows from frame 8 on failed", n0)
				}
				for k := 1; k < 3; k++ {
					m, _ := level(t, mem.Files(), k)
					lim := n0
					if reduce[0] {
						lim = n0 >> k
					}
					if n := m.Spec.Shape[0]; n > lim {
						t.Errorf("level %d names %d frames, level 0's %d support %d", k, n, n0, lim)
					}
				}
			})
		}
	}
}
