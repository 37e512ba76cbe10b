package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/pyramid"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// writeArray writes data (whole frames) as the array spec (dim 0 growing)
// with the real writer and returns its files.
func writeArray(t *testing.T, spec zarr.Spec, data []byte) map[string][]byte {
	t.Helper()
	spec = spec.Clone()
	spec.Shape[0] = 0
	st, err := cpu.New(stage.Config{Spec: spec, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mem := sinktest.NewMem()
	w, err := pipeline.New(context.Background(), pipeline.Config{Spec: spec, Stage: st, Sink: mem, Depth: 1, BatchBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Files()
}

// image is an image under test: its metadata, level specs and data, and
// the files they make.
type image struct {
	img    *zarr.Image
	specs  []zarr.Spec
	data   [][]byte
	reduce []bool
	method downsample.Method
}

type geometry struct {
	names         string
	shape         []int64 // level 0, frames included
	chunk, shard  []int64
	reduce        []bool
	levels        int
	dtype         zarr.DType
	method        downsample.Method
	special       bool // floats: NaNs and infinities among the values
	foreignLayout bool // dataset paths s0, s1, ...
}

// newImage makes level 0 from seeded random values and every next level
// with Plan.Frames, as the writers do.
func newImage(t *testing.T, g geometry, seed uint64) *image {
	t.Helper()
	names := strings.Split(g.names, ",")
	spec := zarr.Spec{Shape: g.shape, DType: g.dtype, Chunk: g.chunk, Shard: g.shard, Codec: zarr.CodecZstd, Level: 1, DimNames: names}
	growing := spec.Clone()
	growing.Shape[0] = 0
	specs, err := pyramid.LevelSpecs(growing, g.levels, g.reduce)
	if err != nil {
		t.Fatal(err)
	}
	img, err := zarr.BuildImage(zarr.ImageOptions{Axes: zarr.DefaultAxes(names), Levels: g.levels, Reduce: g.reduce, Method: g.method.String()})
	if err != nil {
		t.Fatal(err)
	}
	im := &image{img: img, reduce: g.reduce, method: g.method}
	data := values(g.dtype, spec.FrameBytes()*g.shape[0], seed, g.special)
	shape := append([]int64(nil), g.shape...)
	for k := 0; k < g.levels; k++ {
		specs[k].Shape[0] = shape[0]
		im.data = append(im.data, data)
		p, err := downsample.NewPlan(shape, g.reduce, g.dtype, g.method)
		if err != nil {
			t.Fatal(err)
		}
		next := make([]byte, p.Out[0]*p.FrameBytes())
		p.Frames(next, data, 0, p.Out[0])
		data, shape = next, p.Out
	}
	im.specs = specs
	if g.foreignLayout {
		for k := range img.Multiscales[0].Datasets {
			img.Multiscales[0].Datasets[k].Path = fmt.Sprintf("s%d", k)
		}
	}
	return im
}

func values(dt zarr.DType, n int64, seed uint64, special bool) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	size := dt.Size()
	switch dt {
	case zarr.Float32:
		for i := 0; i < len(b); i += size {
			v := float32(r.NormFloat64() * 1000)
			if special && r.IntN(16) == 0 {
				v = []float32{float32(math.NaN()), float32(math.Inf(1)), math.Float32frombits(0x7fc00123)}[r.IntN(3)]
			}
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
		}
	case zarr.Float64:
		for i := 0; i < len(b); i += size {
			v := r.NormFloat64() * 1e6
			if special && r.IntN(16) == 0 {
				v = []float64{math.NaN(), math.Inf(-1), math.Float64frombits(0x7ff8000000000abc)}[r.IntN(3)]
			}
			binary.LittleEndian.PutUint64(b[i:], math.Float64bits(v))
		}
	}
	return b
}

// files writes the image: its group zarr.json and every level.
func (im *image) files(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	b, err := zarr.MarshalImage(im.img)
	if err != nil {
		t.Fatal(err)
	}
	fsys["zarr.json"] = &fstest.MapFile{Data: b}
	for k, ds := range im.img.Multiscales[0].Datasets {
		if im.data[k] == nil {
			continue // a level not created
		}
		for key, v := range writeArray(t, im.specs[k], im.data[k]) {
			fsys[ds.Path+"/"+key] = &fstest.MapFile{Data: v}
		}
	}
	return fsys
}

// setElem writes v (an integer, or a float's bits) into element i of a
// level's data.
func setElem(dt zarr.DType, data []byte, i int64, v uint64) {
	size := int64(dt.Size())
	for k := int64(0); k < size; k++ {
		data[i*size+k] = byte(v >> (8 * k))
	}
}

func getElem(dt zarr.DType, data []byte, i int64) uint64 {
	size := int64(dt.Size())
	var v uint64
	for k := size - 1; k >= 0; k-- {
		v = v<<8 | uint64(data[i*size+k])
	}
	return v
}

var tyx = geometry{names: "t,y,x", shape: []int64{21, 45, 61}, chunk: []int64{4, 16, 16}, shard: []int64{8, 32, 32},
	reduce: []bool{false, true, true}, levels: 3, dtype: zarr.Uint16, method: downsample.Mean}

// TestImageGood: images whose levels are what the writers make pass, for
// every dtype and method, dim 0 reduced or not, ragged edges, one block or
// many, one worker or several; every frame of every level is compared.
func TestImageGood(t *testing.T) {
	geoms := map[string]geometry{
		"tyx": {names: "t,y,x", shape: []int64{9, 21, 27}, chunk: []int64{2, 8, 8}, shard: []int64{4, 16, 16},
			reduce: []bool{false, true, true}, levels: 3},
		"tzyx":  {names: "t,z,y,x", shape: []int64{9, 5, 13, 11}, chunk: []int64{2, 2, 8, 8}, shard: []int64{4, 4, 16, 16}, reduce: []bool{false, true, true, true}, levels: 3},
		"zyx":   {names: "z,y,x", shape: []int64{23, 17, 19}, chunk: []int64{3, 8, 8}, shard: []int64{6, 16, 16}, reduce: []bool{true, true, true}, levels: 4},
		"yx":    {names: "y,x", shape: []int64{41, 50}, chunk: []int64{8, 16}, shard: []int64{16, 32}, reduce: []bool{true, true}, levels: 3},
		"t-too": {names: "t,y,x", shape: []int64{19, 29, 31}, chunk: []int64{3, 8, 8}, shard: []int64{6, 16, 16}, reduce: []bool{true, true, true}, levels: 3},
	}
	for gname, g := range geoms {
		for _, dt := range zarr.DTypes {
			for _, m := range downsample.Methods {
				if gname != "tyx" && dt != zarr.Uint16 && dt != zarr.Float32 && dt != zarr.Int64 {
					continue // every dtype on one geometry; three on the others
				}
				g := g
				g.dtype, g.method, g.special = dt, m, true
				t.Run(fmt.Sprintf("%s/%v/%v", gname, dt, m), func(t *testing.T) {
					im := newImage(t, g, uint64(len(gname))+uint64(dt)*7+uint64(m))
					fsys := im.files(t)
					opts := []Options{{}}
					if dt == zarr.Uint16 || dt == zarr.Float64 {
						// Blocks of one epoch, of a few frames, with one
						// worker and several.
						opts = append(opts, Options{Workers: 1, BlockBytes: 1}, Options{Workers: 3, BlockBytes: 4096})
					}
					for _, o := range opts {
						r, err := Image(context.Background(), fsys, im.img, o)
						if err != nil {
							t.Fatalf("%+v: %v\n%s", o, err, strings.Join(r.Problems, "\n"))
						}
						if len(r.Warnings) > 0 {
							t.Errorf("warnings: %v", r.Warnings)
						}
						if r.Method != m.String() || !r.RecomputedAll() {
							t.Fatalf("method %q, compared %v: not every level was recomputed", r.Method, r.Compared)
						}
						for k, c := range r.Compared {
							if c != im.specs[k+1].Shape[0] {
								t.Errorf("level %d: %d frames compared, want all %d", k+1, c, im.specs[k+1].Shape[0])
							}
						}
					}
				})
			}
		}
	}
}

// damage is one change to a good image and what Image must say about it.
type damage struct {
	name   string
	geom   geometry
	change func(t *testing.T, im *image)
	// after the files are written
	files   func(t *testing.T, im *image, fsys fstest.MapFS)
	problem string // "" when the image must pass
	warning string
	// compared, when set, is what Report.Compared must be.
	compared []int64
}

// editMeta rewrites level k's zarr.json with edit applied to its spec.
func editMeta(t *testing.T, fsys fstest.MapFS, im *image, k int, edit func(s *zarr.Spec)) {
	t.Helper()
	s := im.specs[k].Clone()
	edit(&s)
	b, err := zarr.MarshalArray(&s, s.Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	fsys[im.img.Multiscales[0].Datasets[k].Path+"/zarr.json"] = &fstest.MapFile{Data: b}
}

func elemsPerFrame(s *zarr.Spec) int64 { return s.FrameBytes() / int64(s.DType.Size()) }

func TestImageDamaged(t *testing.T) {
	f32mean := tyx
	f32mean.dtype = zarr.Float32
	f32max := f32mean
	f32max.method = downsample.Max
	f64dec := f32mean
	f64dec.dtype, f64dec.method = zarr.Float64, downsample.Decimate
	rows := tyx // level 2 has 21 frames in shard rows of 8
	dim0 := geometry{names: "t,y,x", shape: []int64{45, 20, 24}, chunk: []int64{2, 8, 8}, shard: []int64{4, 16, 16},
		reduce: []bool{true, true, true}, levels: 3, dtype: zarr.Uint8, method: downsample.Mean}
	dim0odd := dim0
	dim0odd.chunk, dim0odd.shard = []int64{3, 8, 8}, []int64{3, 16, 16}
	tcyx := geometry{names: "t,c,y,x", shape: []int64{5, 3, 20, 24}, chunk: []int64{2, 1, 8, 8}, shard: []int64{4, 1, 16, 16},
		reduce: []bool{false, false, true, true}, levels: 2, dtype: zarr.Int16, method: downsample.Min}
	// bump adds one to level k's element at frame f, offset e in the
	// frame, or for level 0 flips its top bit (one more in a block of 4 may
	// not change the mean).
	bump := func(k int, f, e int64) func(t *testing.T, im *image) {
		return func(t *testing.T, im *image) {
			s := &im.specs[k]
			i := f*elemsPerFrame(s) + e
			v := getElem(s.DType, im.data[k], i) + 1
			if k == 0 {
				v = getElem(s.DType, im.data[k], i) ^ 1<<(8*s.DType.Size()-1)
			}
			setElem(s.DType, im.data[k], i, v)
		}
	}
	// setFloat puts v into level k's element at frame f, offset e.
	setF32 := func(k int, f, e int64, v func(old float32) float32) func(t *testing.T, im *image) {
		return func(t *testing.T, im *image) {
			i := f*elemsPerFrame(&im.specs[k]) + e
			old := math.Float32frombits(uint32(getElem(zarr.Float32, im.data[k], i)))
			setElem(zarr.Float32, im.data[k], i, uint64(math.Float32bits(v(old))))
		}
	}
	tests := []damage{
		{name: "an element of level 2", geom: tyx, change: bump(2, 13, 5*16+7),
			problem: "level 2: frame 13 differs from the level above reduced again (mean): at t=13, y=5, x=7"},
		{name: "an element of level 1, first frame", geom: tyx, change: bump(1, 0, 0),
			problem: "level 1: frame 0 differs"},
		{name: "last element of the last frame", geom: tyx, change: bump(2, 20, 12*16-1),
			problem: "level 2: frame 20 differs"},
		{name: "dim 0 reduced, an element of level 2", geom: dim0, change: bump(2, 11, 3),
			problem: "level 2: frame 11 differs"},
		{name: "level 0 changed (level 1 no longer follows)", geom: tyx, change: bump(0, 7, 0),
			problem: "level 1: frame 7 differs"},
		{name: "float mean one ulp off", geom: f32mean, change: setF32(1, 3, 10, func(v float32) float32 { return math.Nextafter32(v, float32(math.Inf(1))) })},
		{name: "float mean two ulps off", geom: f32mean, change: setF32(1, 3, 10, func(v float32) float32 {
			return math.Nextafter32(math.Nextafter32(v, float32(math.Inf(1))), float32(math.Inf(1)))
		}), problem: "level 1: frame 3 differs"},
		{name: "float mean of the opposite sign", geom: f32mean, change: setF32(1, 3, 10, func(v float32) float32 { return -v }),
			problem: "level 1: frame 3 differs"},
		{name: "float mean: a NaN where a number belongs", geom: f32mean, change: setF32(2, 4, 0, func(float32) float32 { return float32(math.NaN()) }),
			problem: "level 2: frame 4 differs"},
		{name: "float max one ulp off", geom: f32max, change: setF32(1, 2, 1, func(v float32) float32 { return math.Nextafter32(v, float32(math.Inf(1))) }),
			problem: "level 1: frame 2 differs"},
		{name: "float64 decimate one ulp off", geom: f64dec, change: func(t *testing.T, im *image) {
			i := 5*elemsPerFrame(&im.specs[1]) + 2
			setElem(zarr.Float64, im.data[1], i, getElem(zarr.Float64, im.data[1], i)^1)
		}, problem: "level 1: frame 5 differs"},
		{name: "lagging level in whole shard rows", geom: rows, change: func(t *testing.T, im *image) {
			im.specs[2].Shape[0] = 16
			im.data[2] = im.data[2][:16*im.specs[2].FrameBytes()]
		}, warning: "level 2 holds 16 of the 21 frames level 1 implies: a writer stopped", compared: []int64{21, 16}},
		{name: "lagging level, damaged too", geom: rows, change: func(t *testing.T, im *image) {
			im.specs[2].Shape[0] = 16
			im.data[2] = im.data[2][:16*im.specs[2].FrameBytes()]
			bump(2, 15, 0)(t, im)
		}, warning: "level 2 holds 16", problem: "level 2: frame 15 differs"},
		{name: "level short of whole shard rows", geom: rows, change: func(t *testing.T, im *image) {
			im.specs[2].Shape[0] = 19
			im.data[2] = im.data[2][:19*im.specs[2].FrameBytes()]
		}, problem: "level 2 holds 19 of the 21 frames level 1 implies, and 19 is not a whole number of its 8-frame shard rows"},
		{name: "dim 0 reduced, lagging level", geom: dim0, change: func(t *testing.T, im *image) {
			// Level 1 holds 23 frames, level 2 one shard row of 4 of its 12.
			im.specs[2].Shape[0] = 4
			im.data[2] = im.data[2][:4*im.specs[2].FrameBytes()]
		}, warning: "level 2 holds 4 of the 12 frames level 1 implies", compared: []int64{23, 4}},
		{name: "dim 0 reduced, the level above lags", geom: dim0, change: func(t *testing.T, im *image) {
			// Level 1 stopped at 20 frames (5 rows of 4); level 2 holds 12,
			// of which 10 have their whole block in level 1.
			im.specs[1].Shape[0] = 20
			im.data[1] = im.data[1][:20*im.specs[1].FrameBytes()]
		}, warning: "level 2 holds 12 frames, more than the 10 that level 1's 20 frames make: level 1 lags", compared: []int64{20, 10}},
		{name: "the level above lags by an odd number of frames", geom: dim0odd, change: func(t *testing.T, im *image) {
			// Level 1 stopped at 21 frames (7 rows of 3); level 2's frame
			// 10 came from level 1's frames 20 and 21, and 21 is gone: only
			// frames 0..9 can be compared.
			im.specs[1].Shape[0] = 21
			im.data[1] = im.data[1][:21*im.specs[1].FrameBytes()]
		}, warning: "level 2 holds 12 frames, more than the 11 that level 1's 21 frames make: level 1 lags", compared: []int64{21, 10}},
		{name: "the level above lags, not in whole rows", geom: dim0, change: func(t *testing.T, im *image) {
			im.specs[1].Shape[0] = 21
			im.data[1] = im.data[1][:21*im.specs[1].FrameBytes()]
		}, problem: "level 2 holds 12 frames, more than the 11 that level 1's 21 frames make, and 21 is not a whole number"},
		{name: "shape breaks the reduction rule", geom: tyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 2, func(s *zarr.Spec) { s.Shape[2] = 17 })
			}, problem: "level 2's shape [21 12 17] breaks the reduction rule: along x (dim 2) level 1's 31 halves to 16 (ceil(n/2)), and level 2 has 17"},
		{name: "a reduced axis one too long", geom: dim0,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 1, func(s *zarr.Spec) { s.Shape[1] = 11 })
			}, problem: "level 1's shape [23 11 12] breaks the reduction rule: along y (dim 1) level 0's 20 halves to 10 (ceil(n/2)), and level 1 has 11"},
		{name: "a kept axis changed", geom: tcyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 1, func(s *zarr.Spec) { s.Shape[1] = 2 })
			}, problem: "level 1's shape [5 2 10 12] breaks the reduction rule: along c (dim 1) level 0's 3 is kept (not reduced), and level 1 has 2"},
		{name: "dimension_names differ from the axes", geom: tyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 1, func(s *zarr.Spec) { s.DimNames = []string{"t", "x", "y"} })
			}, problem: "level 1: dimension_names t,x,y differ from the image's axis names t,y,x"},
		{name: "no dimension_names", geom: tyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 0, func(s *zarr.Spec) { s.DimNames = nil })
			}, problem: "level 0 has no dimension_names"},
		{name: "a level of another dtype", geom: tyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 1, func(s *zarr.Spec) { s.DType = zarr.Int16 })
			}, problem: "level 1 holds int16, level 0 holds uint16"},
		{name: "a level of another rank", geom: tyx,
			files: func(t *testing.T, im *image, fsys fstest.MapFS) {
				editMeta(t, fsys, im, 2, func(s *zarr.Spec) {
					s.Shape, s.Chunk, s.Shard, s.DimNames = s.Shape[1:], s.Chunk[1:], s.Shard[1:], s.DimNames[1:]
				})
			}, problem: "level 2 has 2 dimensions; the image has 3 axes (t,y,x)"},
		{name: "scale of a level", geom: tyx, change: func(t *testing.T, im *image) {
			im.img.Multiscales[0].Datasets[2].Scale[1] = 2
		}, problem: "level 2: the scale along y is 2 times level 0's; a level reduced 2 times along it must be 4 times"},
		{name: "scale of a kept axis", geom: tyx, change: func(t *testing.T, im *image) {
			im.img.Multiscales[0].Datasets[1].Scale[0] = 2
			im.img.Multiscales[0].Datasets[2].Scale[0] = 2
		}, problem: "level 1: the scale along t is 2 times level 0's; a level reduced 0 times along it must be 1 times"},
		{name: "a level missing", geom: tyx, change: func(t *testing.T, im *image) { im.data[1] = nil },
			problem: "level 1 is missing: its directory holds no zarr.json, while the image holds frames"},
		{name: "levels not created yet", geom: tyx, change: func(t *testing.T, im *image) {
			im.data[0], im.data[1] = nil, nil
			im.specs[2].Shape[0] = 0
			im.data[2] = []byte{}
		}, warning: "level 0, level 1 not created yet and the image holds no frames"},
		{name: "a level path outside the image", geom: tyx, change: func(t *testing.T, im *image) {
			im.img.Multiscales[0].Datasets[1].Path = "../1"
		}, problem: `level 1 (path "../1"): the path is not a directory inside the image`},
		{name: "a level that is a group", geom: tyx, files: func(t *testing.T, im *image, fsys fstest.MapFS) {
			b, _ := zarr.MarshalGroup(nil)
			fsys["1/zarr.json"] = &fstest.MapFile{Data: b}
		}, problem: "level 1: parse zarr.json"},
		{name: "a level's shard damaged", geom: tyx, files: func(t *testing.T, im *image, fsys fstest.MapFS) {
			f := fsys["2/c/1/0/0"]
			f.Data = append([]byte(nil), f.Data...)
			f.Data[len(f.Data)-6] ^= 1
		}, problem: "level 2: shard c/1/0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im := newImage(t, tc.geom, 11)
			if tc.change != nil {
				tc.change(t, im)
			}
			fsys := im.files(t)
			if tc.files != nil {
				tc.files(t, im, fsys)
			}
			// A block per epoch, so that a difference in a later block is
			// found there.
			r, err := Image(context.Background(), fsys, im.img, Options{BlockBytes: 1, Workers: 2})
			all := strings.Join(r.Problems, "\n")
			switch {
			case tc.problem == "" && err != nil:
				t.Fatalf("want no problem, got %v:\n%s", err, all)
			case tc.problem != "" && (err == nil || !strings.Contains(all, tc.problem)):
				t.Fatalf("want a problem saying %q, got %v:\n%s", tc.problem, err, all)
			}
			var warns []string
			for _, w := range r.Warnings {
				warns = append(warns, w.Text)
			}
			if w := strings.Join(warns, "\n"); (tc.warning == "") != (w == "") || !strings.Contains(w, tc.warning) {
				t.Fatalf("warnings %q, want %q", w, tc.warning)
			}
			if tc.compared != nil && fmt.Sprint(r.Compared) != fmt.Sprint(tc.compared) {
				t.Errorf("compared %v, want %v", r.Compared, tc.compared)
			}
		})
	}
}

// TestImageNaNRules: where a NaN sits in level 0's block, min and max must
// store the canonical NaN and decimate the very element; a mean may store
// any NaN.
func TestImageNaNRules(t *testing.T) {
	other := uint64(0x7fc00077) // a quiet NaN that is not the canonical one
	for _, tc := range []struct {
		method downsample.Method
		fails  bool
	}{
		{downsample.Mean, false},
		{downsample.Min, true},
		{downsample.Max, true},
		{downsample.Decimate, true},
	} {
		t.Run(tc.method.String(), func(t *testing.T) {
			g := tyx
			g.dtype, g.method = zarr.Float32, tc.method
			im := newImage(t, g, 5)
			// Level 0 frame 3, element (0, 0): a NaN; level 1's element
			// (3, 0, 0) is made from it and stores other NaN bits.
			setElem(zarr.Float32, im.data[0], 3*elemsPerFrame(&im.specs[0]), uint64(math.Float32bits(float32(math.NaN()))))
			p, _ := downsample.NewPlan(im.specs[0].Shape, g.reduce, g.dtype, g.method)
			p.Frames(im.data[1], im.data[0], 0, p.Out[0])
			i := 3 * elemsPerFrame(&im.specs[1])
			if v := math.Float32frombits(uint32(getElem(zarr.Float32, im.data[1], i))); v == v {
				t.Fatalf("level 1 element holds %v, want a NaN", v)
			}
			setElem(zarr.Float32, im.data[1], i, other)
			p2, _ := downsample.NewPlan(im.specs[1].Shape, g.reduce, g.dtype, g.method)
			p2.Frames(im.data[2], im.data[1], 0, p2.Out[0])
			r, err := Image(context.Background(), im.files(t), im.img, Options{})
			if got := err != nil; got != tc.fails {
				t.Fatalf("fails %v, want %v: %v", got, tc.fails, r.Problems)
			}
			if tc.fails && !strings.Contains(r.Problems[0], "level 1: frame 3 differs") {
				t.Fatalf("problem %q does not name level 1, frame 3", r.Problems[0])
			}
		})
	}
}

// TestImageForeign: an image that does not record zwrite's downsampling
// (another writer's, levels at other paths) is checked as arrays only.
func TestImageForeign(t *testing.T) {
	g := tyx
	g.foreignLayout = true
	im := newImage(t, g, 3)
	ms := &im.img.Multiscales[0]
	ms.Metadata, ms.Downsampling = nil, nil
	setElem(g.dtype, im.data[2], 0, 12345) // not recomputed: not found
	r, err := Image(context.Background(), im.files(t), im.img, Options{})
	if err != nil {
		t.Fatal(err, r.Problems)
	}
	if r.Method != "" || r.RecomputedAll() || len(r.Levels) != 3 || !r.Levels[2].ArrayOK {
		t.Fatalf("report %+v", r)
	}
	// Its levels are still checked as arrays: by path.
	fsys := im.files(t)
	delete(fsys, "s1/zarr.json")
	_, err = Image(context.Background(), fsys, im.img, Options{})
	if err == nil || !strings.Contains(err.Error(), `level 1 (path "s1") is missing`) {
		t.Fatalf("err %v", err)
	}
}

// TestImageRaw: level 0 against a raw input.
func TestImageRaw(t *testing.T) {
	im := newImage(t, tyx, 8)
	fsys := im.files(t)
	r, err := Image(context.Background(), fsys, im.img, Options{Raw: bytes.NewReader(im.data[0])})
	if err != nil || !r.Levels[0].Array.RawCompared {
		t.Fatalf("raw: %v, compared %v", err, r.Levels[0].Array.RawCompared)
	}
	other := append([]byte(nil), im.data[0]...)
	other[1000] ^= 4
	_, err = Image(context.Background(), fsys, im.img, Options{Raw: bytes.NewReader(other)})
	if err == nil || !strings.Contains(err.Error(), "level 0: array differs from the raw input at byte 1000") {
		t.Fatalf("raw: %v", err)
	}
}

// cancelFS cancels a context when the file name is opened for the n-th
// time: the second open of a level 1 shard happens while levels are
// recomputed (the first is level 1's check as an array).
type cancelFS struct {
	fs.FS
	name   string
	n      int32
	opens  atomic.Int32
	cancel context.CancelFunc
}

func (c *cancelFS) Open(name string) (fs.File, error) {
	if name == c.name && c.opens.Add(1) == c.n {
		c.cancel()
	}
	return c.FS.Open(name)
}

// TestImageInterrupt: a cancelled context stops Image with its error,
// during the arrays' checks and during a recomputation.
func TestImageInterrupt(t *testing.T) {
	im := newImage(t, tyx, 2)
	fsys := im.files(t)
	for _, n := range []int32{1, 2} {
		t.Run(fmt.Sprintf("open %d", n), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			stop := errors.New("stop now")
			cfs := &cancelFS{FS: fsys, name: "1/c/0/0/0", n: n, cancel: func() { cancel(stop) }}
			_, err := Image(ctx, cfs, im.img, Options{BlockBytes: 1})
			if !errors.Is(err, stop) {
				t.Fatalf("err %v, want the context's cause", err)
			}
		})
	}
}

// TestReferenceStops: the reference reduction of a block stops at a done
// context instead of finishing the block (it is slow: an interrupt must
// not wait for it).
func TestReferenceStops(t *testing.T) {
	shape := []int64{64, 8, 8}
	plan, err := downsample.NewPlan(shape, []bool{false, true, true}, zarr.Uint16, downsample.Mean)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &pairRun{ctx: ctx, cnt: 64, workers: 2, in: make([]byte, 64*8*8*2)}
	want := bytes.Repeat([]byte{0xA5}, int(64*plan.FrameBytes()))
	if err := p.reference(plan, want); !errors.Is(err, context.Canceled) {
		t.Fatalf("reference: %v, want the context's error", err)
	}
	if !bytes.Equal(want, bytes.Repeat([]byte{0xA5}, len(want))) {
		t.Fatalf("reference reduced frames after the context was done")
	}
}
