package main

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// imgCase is an image written by zwrite append --levels.
type imgCase struct {
	name, shape, chunk, shard, dims, down, method, dtype, codec string
	frames                                                      int64
	levels                                                      int
}

func (c imgCase) args(store, in string) []string {
	a := []string{"append", "-o", store, "--shape", c.shape, "--dtype", c.dtype, "--chunk", c.chunk, "--shard", c.shard,
		"--codec", c.codec, "--dims", c.dims, "--levels", fmt.Sprint(c.levels), "--downsample", c.method, "--progress=false", in}
	if c.down != "" {
		a = append(a, "--downsample-dims", c.down)
	}
	return a
}

// reduce is what the image reduces per axis: --downsample-dims, or every
// space axis.
func (c imgCase) reduce() []bool {
	names := strings.Split(c.dims, ",")
	r := make([]bool, len(names))
	for i, n := range names {
		if c.down != "" {
			r[i] = strings.Contains(","+c.down+",", ","+n+",")
		} else {
			r[i] = n == "z" || n == "y" || n == "x"
		}
	}
	return r
}

// input writes c's level-0 frames (finite floats) to a file in dir.
func (c imgCase) input(t *testing.T, dir string, seed uint64) (string, []byte, []int64, zarr.DType) {
	t.Helper()
	dt := mustDType(t, c.dtype)
	shape, err := parseDims("shape", c.shape)
	if err != nil {
		t.Fatal(err)
	}
	shape[0] = c.frames
	spec := zarr.Spec{Shape: shape, DType: dt}
	raw := randomBytes(c.frames*spec.FrameBytes(), seed)
	finiteFloats(dt, raw)
	in := filepath.Join(dir, c.name+".raw")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return in, raw, shape, dt
}

// finiteFloats clears the top exponent bits of every float, so that no
// element is a NaN or an infinity.
func finiteFloats(dt zarr.DType, b []byte) {
	if dt != zarr.Float32 && dt != zarr.Float64 {
		return
	}
	for i := dt.Size() - 1; i < len(b); i += dt.Size() {
		b[i] &= 0x3f
	}
}

// sameReduction compares a level with the reference reduction of the
// level above: integers (and floats by min, max, decimate) exactly, float
// means within one ulp. It returns the first element that differs, -1.
func sameReduction(dt zarr.DType, m downsample.Method, got, want []byte) int64 {
	if len(got) != len(want) {
		return 0
	}
	size := dt.Size()
	for i := 0; i < len(got); i += size {
		g, w := got[i:i+size], want[i:i+size]
		if bytes.Equal(g, w) {
			continue
		}
		if m != downsample.Mean || (dt != zarr.Float32 && dt != zarr.Float64) {
			return int64(i / size)
		}
		var gf, wf float64
		var gb, wb int64
		if dt == zarr.Float32 {
			gu, wu := bin.LittleEndian.Uint32(g), bin.LittleEndian.Uint32(w)
			gf, wf, gb, wb = float64(math.Float32frombits(gu)), float64(math.Float32frombits(wu)), int64(int32(gu)), int64(int32(wu))
		} else {
			gu, wu := bin.LittleEndian.Uint64(g), bin.LittleEndian.Uint64(w)
			gf, wf, gb, wb = math.Float64frombits(gu), math.Float64frombits(wu), int64(gu), int64(wu)
		}
		if gf != wf && (math.Signbit(gf) != math.Signbit(wf) || gb-wb > 1 || wb-gb > 1) {
			return int64(i / size)
		}
	}
	return -1
}

var readImageCases = []imgCase{
	{"tyx-mean-u16", "0,45,61", "4,16,16", "8,32,32", "t,y,x", "", "mean", "uint16", "zstd", 21, 3},
	{"zyx-max-f32-dim0", "0,29,31", "3,8,8", "6,16,16", "z,y,x", "", "max", "float32", "lz4", 19, 3},
	{"tczyx-min-i16", "0,2,7,33,20", "2,1,4,16,16", "4,1,4,16,16", "t,c,z,y,x", "", "min", "int16", "none", 5, 3},
	{"yx-decimate-f64", "0,50", "8,16", "16,32", "y,x", "", "decimate", "float64", "zstd", 41, 3},
	{"tyx-time-too-mean-f32", "0,29,31", "3,8,8", "6,16,16", "t,y,x", "t,y,x", "mean", "float32", "zstd", 19, 3},
	{"tyx-mean-u64", "0,17,19", "2,8,8", "4,16,16", "t,y,x", "t,y,x", "mean", "uint64", "lz4", 9, 3},
	{"tyx-mean-i8-one-level", "0,9,9", "2,4,4", "4,8,8", "t,y,x", "", "mean", "int8", "zstd", 7, 1},
}

// TestReadImages: images written by append --levels (methods, dtypes, dim
// 0 reduced or not) read back: info describes every level, cat of each
// level equals the reference reduction of the level above, verify passes
// having recomputed every level.
func TestReadImages(t *testing.T) {
	dir := t.TempDir()
	for i, c := range readImageCases {
		t.Run(c.name, func(t *testing.T) {
			in, raw, shape, dt := c.input(t, dir, uint64(100+i))
			store := filepath.Join(dir, c.name+".zarr")
			mustZw(t, nil, c.args(store, in)...)
			m, _ := downsample.ParseMethod(c.method)
			reduce := c.reduce()

			// cat: level 0 is the input, level k the reduction of level k-1.
			if got := mustZw(t, nil, "cat", store); got != string(raw) {
				t.Fatalf("cat (level 0 by default) differs from the input")
			}
			level, lshape := raw, shape
			var shapes [][]int64
			for k := 0; k < c.levels; k++ {
				got := []byte(mustZw(t, nil, "cat", store, "--level", fmt.Sprint(k)))
				if k > 0 {
					p, err := downsample.NewPlan(lshape, reduce, dt, m)
					if err != nil {
						t.Fatal(err)
					}
					want := make([]byte, p.Out[0]*p.FrameBytes())
					downsample.Reference(p, want, level, 0, p.Out[0])
					if i := sameReduction(dt, m, got, want); i >= 0 {
						t.Fatalf("cat --level %d: %d bytes, element %d differs from the reference reduction of level %d", k, len(got), i, k-1)
					}
					lshape = p.Out
				}
				shapes = append(shapes, lshape)
				level = got
			}

			out := mustZw(t, nil, "verify", store)
			want := fmt.Sprintf("%s: ok: OME-Zarr image, %d levels", store, c.levels)
			if c.levels > 1 {
				want += fmt.Sprintf("; every level equals the level above reduced again (%s along", c.method)
			}
			if !strings.Contains(out, want) {
				t.Fatalf("verify does not say %q:\n%s", want, out)
			}
			for k := 0; k < c.levels; k++ {
				if !strings.Contains(out, fmt.Sprintf("%s/%d: ok: %d frames", store, k, shapes[k][0])) {
					t.Errorf("verify does not list level %d as an array:\n%s", k, out)
				}
			}
			mustZw(t, nil, "verify", store, "--raw", in)

			// info: the axes, the method, every level's shape.
			text := mustZw(t, nil, "info", store)
			for _, w := range []string{"OME-Zarr 0.5", "method  " + c.method, "LEVEL"} {
				if !strings.Contains(text, w) {
					t.Errorf("info does not say %q:\n%s", w, text)
				}
			}
			var doc infoDoc
			if err := json.Unmarshal([]byte(mustZw(t, nil, "info", store, "--json")), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Nodes) != 1 || doc.Nodes[0].Kind != "image" || doc.Nodes[0].Path != "." {
				t.Fatalf("info --json nodes %+v", doc.Nodes)
			}
			ii := doc.Nodes[0].Image
			if ii.Method != c.method || len(ii.Levels) != c.levels || len(ii.Axes) != len(shape) {
				t.Fatalf("info --json image %+v", ii)
			}
			for k, lv := range ii.Levels {
				if lv.Array == nil || formatDims(lv.Array.Shape) != formatDims(shapes[k]) || lv.Array.DType != dt.String() {
					t.Errorf("info --json level %d: %+v, want shape %v", k, lv.Array, shapes[k])
				}
				for d, red := range reduce {
					want := 1.0
					if red {
						want = math.Ldexp(1, k)
					}
					if lv.Scale[d] != want {
						t.Errorf("level %d scale %v, want %v along %d", k, lv.Scale, want, d)
					}
				}
			}
		})
	}
}

// TestGroupStore: a group store holding two arrays and an image, each
// made by its own append with --array, read node by node.
func TestGroupStore(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "lab.zarr")
	const fb1, fb2 = 45 * 61 * 2, 30 * 20
	raw1, raw2 := randomBytes(21*fb1, 1), randomBytes(13*fb2, 2)
	in1, in2 := filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")
	os.WriteFile(in1, raw1, 0o644)
	os.WriteFile(in2, raw2, 0o644)
	mustZw(t, nil, "append", "-o", store, "--array", "cam1/raw", "--shape", "0,45,61", "--dtype", "u16", "--chunk", "4,16,16", "--shard", "8,32,32", "--progress=false", in1)
	mustZw(t, nil, "append", "-o", store, "--array", "cam2", "--shape", "0,30,20", "--dtype", "u8", "--chunk", "4,8,8", "--codec", "lz4", "--progress=false", in2)
	img := imgCase{"img", "0,45,61", "4,16,16", "8,32,32", "t,y,x", "", "max", "uint16", "zstd", 21, 3}
	mustZw(t, nil, append(img.args(store, in1), "--array", "img")...)

	// info lists every node, an image with its levels.
	text := mustZw(t, nil, "info", store)
	for _, w := range []string{
		"nodes  2 arrays, 1 image, 1 group below it",
		"cam1      group", "cam1/raw  array    21,45,61  uint16  4,16,16  8,32,32  zstd level 1",
		"cam2      array    13,30,20  uint8   4,8,8    4,8,8    lz4",
		"img       image    21,45,61  uint16", "  img/2   level 2  21,12,16  uint16  4,12,16  8,12,16",
		"image   " + store + "/img: OME-Zarr 0.5", "method  max along y,x", "axes    t (time), y (space), x (space)",
		"2      2     21,12,16  1,4,4  0,1.5,1.5",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("info does not say %q:\n%s", w, text)
		}
	}
	var doc infoDoc
	if err := json.Unmarshal([]byte(mustZw(t, nil, "info", store, "--json")), &doc); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range doc.Nodes {
		kinds = append(kinds, n.Path+"="+n.Kind)
	}
	if got := strings.Join(kinds, " "); got != ".=group cam1=group cam1/raw=array cam2=array img=image" {
		t.Fatalf("info --json nodes: %s", got)
	}
	if a := doc.Nodes[3].Array; a.BytesRaw != int64(len(raw2)) || a.BytesStored == 0 || a.Ratio <= 0 || a.Shard == nil {
		t.Errorf("info --json cam2: %+v", a)
	}
	if out := mustZw(t, nil, "info", store, "--array", "cam1/raw"); !strings.Contains(out, "array    cam1/raw") || !strings.Contains(out, "frames   21") {
		t.Errorf("info --array cam1/raw:\n%s", out)
	}
	if out := mustZw(t, nil, "info", store, "--array", "img"); !strings.Contains(out, "LEVEL  PATH  SHAPE     SCALE  TRANSLATION  DTYPE") {
		t.Errorf("info --array img:\n%s", out)
	}
	if out := mustZw(t, nil, "info", store, "--array", "cam1"); !strings.Contains(out, "nodes  1 array, 0 images, 0 groups below it") {
		t.Errorf("info --array cam1:\n%s", out)
	}

	// cat of each array, and of the image's levels.
	if got := mustZw(t, nil, "cat", store, "--array", "cam1/raw"); got != string(raw1) {
		t.Errorf("cat --array cam1/raw differs from its input")
	}
	if got := mustZw(t, nil, "cat", store, "--array", "cam2/"); got != string(raw2) {
		t.Errorf("cat --array cam2/ differs from its input")
	}
	if got := mustZw(t, nil, "cat", store, "--array", "img"); got != string(raw1) {
		t.Errorf("cat --array img differs from its input")
	}
	l1 := mustZw(t, nil, "cat", store, "--array", "img", "--level", "1")
	if got := mustZw(t, nil, "cat", store, "--array", "img/1"); got != l1 {
		t.Errorf("cat --array img/1 differs from cat --array img --level 1")
	}
	p, _ := downsample.NewPlan([]int64{21, 45, 61}, []bool{false, true, true}, zarr.Uint16, downsample.Max)
	want := make([]byte, p.Out[0]*p.FrameBytes())
	downsample.Reference(p, want, raw1, 0, p.Out[0])
	if l1 != string(want) {
		t.Errorf("level 1 differs from the reference reduction")
	}

	// verify: every node, or one.
	out := mustZw(t, nil, "verify", store)
	for _, w := range []string{store + "/cam1/raw: ok: 21 frames", store + "/cam2: ok: 13 frames", store + "/img/2: ok: 21 frames",
		store + "/img: ok: OME-Zarr image, 3 levels; every level equals the level above reduced again (max along y,x; frames compared per level: 21, 21)",
		store + ": ok: 2 arrays and 1 image (3 levels) verified"} {
		if !strings.Contains(out, w) {
			t.Errorf("verify does not say %q:\n%s", w, out)
		}
	}
	if out := mustZw(t, nil, "verify", store, "--array", "cam2", "--raw", in2); !strings.Contains(out, "equals "+in2) {
		t.Errorf("verify --array cam2 --raw:\n%s", out)
	}
	if out := mustZw(t, nil, "verify", store, "--array", "img", "--raw", in1); !strings.Contains(out, store+"/img/0: ok: 21 frames") || !strings.Contains(out, "equals "+in1) {
		t.Errorf("verify --array img --raw:\n%s", out)
	}
	if code, _, stderr := zw(t, context.Background(), nil, "verify", store, "--array", "img", "--raw", in2); code != exitFailure || !strings.Contains(stderr, "level 0: array differs from the raw input") {
		t.Errorf("verify --array img --raw OTHER: exit %d:\n%s", code, stderr)
	}

	// Nodes inside an image besides its levels (labels) are verified and
	// listed with it.
	mustZw(t, nil, "append", "-o", store, "--array", "img/labels/cells", "--shape", "0,30,20", "--dtype", "u8", "--chunk", "4,8,8", "--progress=false", in2)
	out = mustZw(t, nil, "verify", store, "--array", "img")
	for _, w := range []string{store + "/img/labels/cells: ok: 13 frames", store + "/img: ok: OME-Zarr image, 3 levels", store + "/img: ok: 1 array and 1 image (3 levels) verified"} {
		if !strings.Contains(out, w) {
			t.Errorf("verify --array img does not say %q:\n%s", w, out)
		}
	}
	if out := mustZw(t, nil, "info", store, "--array", "img"); !strings.Contains(out, "LEVEL") || !strings.Contains(out, "img/labels/cells  array  13,30,20") {
		t.Errorf("info --array img does not list the labels:\n%s", out)
	}

	// Mistakes on the command line name what the store holds.
	holds := "cam1/raw, cam2, img (an image"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cat", store}, store + " is a group; name the array to write with --array PATH: it holds " + holds + ": --level 0..2)"},
		{[]string{"cat", store, "--array", "cam1"}, store + "/cam1 is a group; name the array to write with --array PATH: it holds cam1/raw"},
		{[]string{"cat", store, "--array", "cam3"}, "--array cam3: " + store + "/cam3 has no zarr.json: no node there; the store holds " + holds},
		{[]string{"cat", store, "--array", "cam2", "--level", "0"}, "--level is for OME-Zarr images; " + store + "/cam2 is an array"},
		{[]string{"cat", store, "--array", "img", "--level", "3"}, "--level 3: the image " + store + "/img has levels 0 to 2"},
		{[]string{"cat", store, "--array", "img", "--level", "-1"}, "--level -1: want a level number"},
		{[]string{"cat", store, "--array", "../lab.zarr"}, `--array "../lab.zarr": want a path inside the store`},
		{[]string{"cat", store, "--array", "/cam2"}, `--array "/cam2": want a path inside the store`},
		{[]string{"verify", store, "--raw", in1}, "--raw compares one array or image with its input, and " + store + " is a group: name it with --array PATH (the group holds " + holds + " of 3 levels)"},
		{[]string{"verify", store, "--array", "nope"}, "--array nope: " + store + "/nope has no zarr.json"},
		{[]string{"info", store, "--array", "nope"}, "--array nope: " + store + "/nope has no zarr.json"},
		{[]string{"info", "--gpu", "--json"}, "--gpu describes this machine: leave out --array and --json"},
	} {
		code, _, stderr := zw(t, context.Background(), nil, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want %d saying %q:\n%s", tc.args, code, exitUsage, tc.want, stderr)
		}
	}
}

// imageStore writes the image c into dir with codec none (so that tests
// can edit decoded chunks in place) and returns its path.
func imageStore(t *testing.T, dir string, c imgCase) (string, []byte) {
	t.Helper()
	in, raw, _, _ := c.input(t, dir, 7)
	store := filepath.Join(dir, c.name+".zarr")
	mustZw(t, nil, c.args(store, in)...)
	return store, raw
}

// editLevel rewrites level k's zarr.json with edit applied to its spec.
func editLevel(t *testing.T, store string, k int, edit func(s *zarr.Spec)) {
	t.Helper()
	p := filepath.Join(store, fmt.Sprint(k), "zarr.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := zarr.ParseArray(b)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Spec.Clone()
	edit(&s)
	if b, err = zarr.MarshalArray(&s, s.Shape[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editChunk flips a bit of byte off of inner chunk i (of n in the shard)
// in a shard file of codec none.
func editChunk(t *testing.T, shard string, n, i, off int) {
	t.Helper()
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	e, err := zarr.DecodeIndex(b[len(b)-zarr.IndexSize(n):], n)
	if err != nil {
		t.Fatal(err)
	}
	b[e[i].Offset+uint64(off)] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDamagedImage: verify fails (exit 1, naming the level and the
// frame) on an image whose level was damaged, whose level breaks the
// reduction rule or the axes, and warns (exit 0) about a level that lags
// the one above in whole shard rows.
func TestVerifyDamagedImage(t *testing.T) {
	c := imgCase{"img", "0,24,32", "4,8,8", "8,16,16", "t,y,x", "", "mean", "uint16", "none", 21, 3}
	tests := []struct {
		name   string
		damage func(t *testing.T, store string)
		code   int
		want   []string // in stderr
	}{
		{"a chunk of level 2 edited", func(t *testing.T, store string) {
			// Codec none: the shard holds the decoded chunks; the index
			// checksum covers only the index, so the array stays valid.
			// Level 2 is 21x6x8 in shards of 8x6x8: shard row 1 starts at
			// frame 8, its first chunk is (8, 0, 0), of 4x6x8 elements.
			editChunk(t, filepath.Join(store, "2", "c", "1", "0", "0"), 2, 0, 2*(8*2+5)) // frame 8, y=2, x=5
		}, exitFailure, []string{"problem: " + "STORE: level 2: frame 8 differs from the level above reduced again (mean): at t=8, y=2, x=5"}},
		{"level 2 written again from other data", func(t *testing.T, store string) {
			other := filepath.Join(t.TempDir(), "other.raw")
			os.WriteFile(other, randomBytes(21*6*8*2, 99), 0o644)
			mustZw(t, nil, "append", "-o", filepath.Join(store, "2"), "--overwrite", "--shape", "0,6,8", "--dtype", "u16",
				"--chunk", "4,6,8", "--shard", "8,6,8", "--codec", "none", "--dims", "t,y,x", "--progress=false", other)
		}, exitFailure, []string{"STORE/2: ok: 21 frames", "problem: STORE: level 2: frame 0 differs"}},
		{"level 1 edited in its last frame", func(t *testing.T, store string) {
			// Shard row 2 (frames 16..23) of 2x2x2 chunks: inner chunk 4 is
			// (20, 0, 0), frame 20 its first.
			editChunk(t, filepath.Join(store, "1", "c", "2", "0", "0"), 8, 4, 0)
		}, exitFailure, []string{"level 1: frame 20 differs"}},
		{"a shape that breaks the reduction rule", func(t *testing.T, store string) {
			editLevel(t, store, 1, func(s *zarr.Spec) { s.Shape[2] = 17 })
		}, exitFailure, []string{"level 1's shape [21 12 17] breaks the reduction rule: along x (dim 2) level 0's 32 halves to 16 (ceil(n/2)), and level 1 has 17"}},
		{"dimension_names that are not the axes", func(t *testing.T, store string) {
			editLevel(t, store, 2, func(s *zarr.Spec) { s.DimNames = []string{"t", "x", "y"} })
		}, exitFailure, []string{"level 2: dimension_names t,x,y differ from the image's axis names t,y,x"}},
		{"no dimension_names", func(t *testing.T, store string) {
			editLevel(t, store, 0, func(s *zarr.Spec) { s.DimNames = nil })
		}, exitFailure, []string{"level 0 has no dimension_names; OME-Zarr 0.5 requires them"}},
		{"a lagging level", func(t *testing.T, store string) {
			// What a writer stopped after level 2's second shard row
			// leaves: zarr.json names 16 frames, row 2 lies beyond.
			editLevel(t, store, 2, func(s *zarr.Spec) { s.Shape[0] = 16 })
		}, exitOK, []string{"warning: STORE: level 2 holds 16 of the 21 frames level 1 implies: a writer stopped; `zwrite append --resume` completes it",
			"warning: STORE/2: 1 shard files", "lie in shard rows past shape[0] = 16"}},
		{"a level short of whole shard rows", func(t *testing.T, store string) {
			editLevel(t, store, 2, func(s *zarr.Spec) { s.Shape[0] = 19 })
		}, exitFailure, []string{"level 2 holds 19 of the 21 frames level 1 implies, and 19 is not a whole number of its 8-frame shard rows"}},
		{"a level missing", func(t *testing.T, store string) {
			os.RemoveAll(filepath.Join(store, "1"))
		}, exitFailure, []string{"level 1 is missing: its directory holds no zarr.json, while the image holds frames"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := imageStore(t, t.TempDir(), c)
			mustZw(t, nil, "verify", store)
			tc.damage(t, store)
			code, out, stderr := zw(t, context.Background(), nil, "verify", store)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s\n%s", code, tc.code, out, stderr)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "STORE", store)
				if !strings.Contains(stderr+out, w) {
					t.Errorf("verify does not say %q:\n%s\n%s", w, out, stderr)
				}
			}
			if code == exitOK && strings.Contains(stderr, "problem:") {
				t.Errorf("exit 0 with problems:\n%s", stderr)
			}
		})
	}
}

// TestVerifyAfterKill: an image whose writer was killed part way is
// whatever its levels committed, each lagging the others or not: verify
// must pass it (warnings allowed, no problem), and once resumed, pass it
// without a warning about lagging levels.
func TestVerifyAfterKill(t *testing.T) {
	dir := t.TempDir()
	const fb = 24 * 40 * 2
	raw := randomBytes(96*fb, 81)
	in := filepath.Join(dir, "in.raw")
	os.WriteFile(in, raw, 0o644)
	geom := []string{"--shape", "0,24,40", "--dtype", "u16", "--chunk", "2,8,8", "--shard", "8,16,16", "--dims", "t,y,x", "--levels", "3", "--flush-interval", "20ms"}
	for i, tc := range []struct {
		down string
		cut  int // frames fed before the kill
	}{
		{"y,x", 37}, {"t,y,x", 53}, {"t,y,x", 90}, {"y,x", 11},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.down, tc.cut), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("k%d.zarr", i))
			args := append(append([]string{"append", "-o", out}, geom...), "--downsample-dims", tc.down, "--depth", "2")
			cmd, pipe, _ := startPiped(t, args...)
			for off := 0; off < tc.cut*fb; off += 5 * fb {
				pipe.Write(raw[off:min(off+5*fb, tc.cut*fb)])
			}
			deadline := time.Now().Add(10 * time.Second)
			for committedFrames(out, true) == 0 && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			cmd.Process.Kill()
			cmd.Wait()
			pipe.Close()
			code, stdout, stderr := run(t, nil, "verify", out)
			if code != 0 || strings.Contains(stderr, "problem:") {
				t.Fatalf("verify after a kill: exit %d:\n%s\n%s", code, stdout, stderr)
			}
			t.Logf("after the kill:\n%s", stderr)
			mustZw(t, nil, "append", "--resume", "--skip", "auto", "-o", out, "--progress=false", in)
			code, stdout, stderr = run(t, nil, "verify", out, "--raw", in)
			if code != 0 || strings.Contains(stderr, "holds") || !strings.Contains(string(stdout), "every level equals the level above") {
				t.Fatalf("verify after the resume: exit %d:\n%s\n%s", code, stdout, stderr)
			}
		})
	}
}
