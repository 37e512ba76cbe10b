package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Fill is a synthetic data pattern. Every fill is a pure function of an
// element's global coordinates (for rand and thirds: of its global C-order
// element index), so any split of a stream into writes, any worker count and
// any run give the same bytes, and a store can be checked against a
// regenerated fill. scripts/peer/tensorstore_bench.py computes the same
// values with numpy.
type Fill int

const (
	// FillXor: each element is the xor of its global coordinates (dim 0
	// included), cut to the dtype (truncated to its width; float dtypes
	// hold the value as a float). Highly compressible, with structure.
	FillXor Fill = iota + 1
	// FillZeros: all zero; the best case for every codec.
	FillZeros
	// FillRand: uniform 12-bit noise (0..4095), like a camera's dark
	// frames: nearly incompressible beyond the 4 unused bits.
	FillRand
	// FillThirds splits the second-to-last axis (y for ...yx arrays; the
	// last axis of a rank-2 array) into three equal bands (band of
	// coordinate c along an axis of n: c*3/n): the first third is 12-bit gaussian-like noise around
	// 2048 (sum of four uniform bytes plus 1538: mean 2048, sigma ~148), the
	// middle third a smooth gradient (sum of all coordinates mod 4096), the
	// last third zeros. The bands run along y so every frame, every epoch
	// and every batch has the same mix: the ratio does not drift over a run,
	// and most chunks hold one kind of data, like an image with background.
	// A rank-1 array has no such axis: its bands repeat every 3×4096
	// elements along dim 0.
	FillThirds
	// FillCamera is a camera's frames: shot (Poisson) noise on a smooth
	// scene of drifting blurred blobs, plus a dark offset, in 12-bit
	// counts; it compresses like a real sensor's data (about 2x with zstd
	// level 1). camera.go defines it and how it scales to each dtype.
	FillCamera
)

// fillFile marks chunks read from an input file (newFileFiller) rather
// than made by a fill; it is never parsed or listed.
const fillFile Fill = -1

// Fills lists every fill, for tests and help texts.
var Fills = []Fill{FillXor, FillZeros, FillRand, FillThirds, FillCamera}

func (f Fill) String() string {
	switch f {
	case FillXor:
		return "xor"
	case FillZeros:
		return "zeros"
	case FillRand:
		return "rand"
	case FillThirds:
		return "thirds"
	case FillCamera:
		return "camera"
	case fillFile:
		return "file"
	}
	return fmt.Sprintf("fill(%d)", int(f))
}

// ParseFill accepts xor, zeros, rand (also noise), thirds and camera,
// case-insensitively.
func ParseFill(s string) (Fill, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "xor":
		return FillXor, nil
	case "zeros", "zero":
		return FillZeros, nil
	case "rand", "noise", "random":
		return FillRand, nil
	case "thirds":
		return FillThirds, nil
	case "camera", "cam":
		return FillCamera, nil
	}
	return 0, fmt.Errorf("unknown fill %q (want xor, zeros, rand, thirds or camera)", s)
}

// Seeds of the counter-based generators; changing them changes every
// benchmark's data, so they are fixed (and mirrored in the peer script).
const (
	seedRand   uint64 = 0x5eed_0001_2a3b_4c5d
	seedThirds uint64 = 0x5eed_0002_6e7f_8091
)

// mix is the splitmix64 finalizer: a fast, well-mixed hash of a counter.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// randValue is the rand fill of the element with global index i: one hash
// yields four 16-bit lanes, masked to 12 bits.
func randValue(i uint64) uint64 {
	return (mix((i>>2)^seedRand) >> (16 * (i & 3))) & 0xfff
}

// noiseValue is the thirds fill's noise band at global index i: one hash
// yields two 32-bit lanes, each the sum of four bytes.
func noiseValue(i uint64) uint64 {
	b := mix((i>>1)^seedThirds) >> (32 * (i & 1))
	return 1538 + (b & 0xff) + (b >> 8 & 0xff) + (b >> 16 & 0xff) + (b >> 24 & 0xff)
}

// parallelMin is the fill size above which FillFrames splits the work over
// all cores: below it, goroutine start-up costs more than it saves.
const parallelMin = 1 << 20

// rowSeg is the number of values generated at a time into a worker's
// scratch before conversion to the dtype: small enough to stay in L1.
const rowSeg = 2048

// FillFrames writes whole frames of kind into dst, starting at global frame
// firstFrame. len(dst) must be a multiple of spec.FrameBytes().
func FillFrames(kind Fill, spec *zarr.Spec, firstFrame int64, dst []byte) error {
	fb := spec.FrameBytes()
	if fb <= 0 || int64(len(dst))%fb != 0 {
		return fmt.Errorf("fill %s: buffer of %d bytes is not a whole number of %d-byte frames", kind, len(dst), fb)
	}
	return FillElems(kind, spec, firstFrame*(fb/int64(spec.DType.Size())), dst)
}

// FillElems writes the elements starting at global C-order element index
// firstElem into dst, so a stream can be filled in writes of any size that
// is a multiple of the element size.
func FillElems(kind Fill, spec *zarr.Spec, firstElem int64, dst []byte) error {
	return fillElems(kind, spec, firstElem, dst, nil)
}

// fillElems is FillElems; with busy set it adds the time each worker spent
// filling (summed over workers, the bench's per-core accounting).
func fillElems(kind Fill, spec *zarr.Spec, firstElem int64, dst []byte, busy *atomic.Int64) error {
	es := spec.DType.Size()
	if es == 0 {
		return fmt.Errorf("fill %s: dtype is not set", kind)
	}
	if len(dst)%es != 0 {
		return fmt.Errorf("fill %s: buffer of %d bytes is not a whole number of %d-byte elements", kind, len(dst), es)
	}
	if firstElem < 0 {
		return fmt.Errorf("fill %s: negative start element %d", kind, firstElem)
	}
	switch kind {
	case FillXor, FillRand, FillThirds, FillCamera:
	case FillZeros:
		start := time.Now()
		clear(dst)
		if busy != nil {
			busy.Add(int64(time.Since(start)))
		}
		return nil
	default:
		return fmt.Errorf("unknown fill %d", int(kind))
	}
	n := int64(len(dst) / es)
	workers := 1
	if len(dst) >= parallelMin {
		workers = runtime.GOMAXPROCS(0)
	}
	if int64(workers) > n {
		workers = int(max(n, 1))
	}
	if workers == 1 {
		start := time.Now()
		f := newFiller(kind, spec)
		f.fill(firstElem, dst)
		f.release()
		if busy != nil {
			busy.Add(int64(time.Since(start)))
		}
		return nil
	}
	var wg sync.WaitGroup
	per := (n + int64(workers) - 1) / int64(workers)
	for w := int64(0); w < n; w += per {
		cnt := min(per, n-w)
		part := dst[w*int64(es) : (w+cnt)*int64(es)]
		start := firstElem + w
		wg.Go(func() {
			t0 := time.Now()
			f := newFiller(kind, spec)
			f.fill(start, part)
			f.release()
			if busy != nil {
				busy.Add(int64(time.Since(t0)))
			}
		})
	}
	wg.Wait()
	return nil
}

// filler generates one worker's share. It walks the array row by row (a
// row is the run of elements along the last axis), keeping the row's
// coordinates so that nothing is divided per element.
type filler struct {
	kind  Fill
	dt    zarr.DType
	shape []int64 // shape with dim 0 unbounded; rank 1 is treated as 1×N
	coord []int64
	band  int // the thirds axis, an index into shape
	vals  *[rowSeg]uint64
	cam   *camState // the camera fill's state; nil for the others
	span  []byte    // fillChunk's scratch for rows it gathers
	// src, when set, is where the elements come from instead of a
	// pattern: the input file of an --input run (element i at byte i×size).
	// The first read error stays in srcErr.
	src    io.ReaderAt
	srcErr error
}

// newFileFiller makes a filler whose elements are read from src, so the
// codec ceiling of an --input run compresses the file's own chunks.
func newFileFiller(spec *zarr.Spec, src io.ReaderAt) *filler {
	f := newFiller(FillXor, spec)
	f.src = src
	return f
}

// scratchPool recycles the generators' value buffers, so that many small
// fills (a synth pipe, a tiler filling chunk rows) do not allocate 16 KiB
// each. Plain heap memory, so a pool is fine here.
var scratchPool = sync.Pool{New: func() any { return new([rowSeg]uint64) }}

// release returns the filler's scratch to the pool; the filler must not
// be used afterwards.
func (f *filler) release() {
	scratchPool.Put(f.vals)
	f.vals = nil
	if f.cam != nil {
		f.cam.release()
	}
}

func newFiller(kind Fill, spec *zarr.Spec) *filler {
	f := &filler{kind: kind, dt: spec.DType, vals: scratchPool.Get().(*[rowSeg]uint64)}
	if spec.Rank() == 1 {
		// One long row along dim 0: coordinates (0, t).
		f.shape = []int64{1, math.MaxInt64}
		f.band = 1
	} else {
		f.shape = append([]int64(nil), spec.Shape...)
		f.shape[0] = math.MaxInt64
		f.band = max(spec.Rank()-2, 1)
	}
	f.coord = make([]int64, len(f.shape))
	if kind == FillCamera {
		f.cam = newCamState(spec)
	}
	return f
}

// bandOf is the thirds band (0 noise, 1 gradient, 2 zeros) of coordinate c
// along the band axis. For a rank-1 array (band axis = dim 0, unbounded)
// the bands repeat every 3×4096 elements.
func (f *filler) bandOf(c int64) int {
	n := f.shape[f.band]
	if n == math.MaxInt64 {
		return int(c / 4096 % 3)
	}
	return int(c * 3 / n)
}

func (f *filler) fill(first int64, dst []byte) {
	if f.src != nil {
		n, err := f.src.ReadAt(dst, first*int64(f.dt.Size()))
		if errors.Is(err, io.EOF) {
			// Past the file's last frame: the writer pads with zeros.
			clear(dst[n:])
			err = nil
		}
		if err != nil && f.srcErr == nil {
			f.srcErr = err
		}
		return
	}
	if f.cam != nil {
		f.fillCamera(first, dst)
		return
	}
	rank := len(f.shape)
	rowLen := f.shape[rank-1]
	// Coordinates of the first element.
	rem := first
	if rank == 2 && f.shape[0] == 1 { // rank-1 array seen as 1×N
		f.coord[0], f.coord[1] = 0, rem
	} else {
		for d := rank - 1; d >= 1; d-- {
			f.coord[d] = rem % f.shape[d]
			rem /= f.shape[d]
		}
		f.coord[0] = rem
	}
	es := f.dt.Size()
	idx := uint64(first)
	for len(dst) > 0 {
		// base: xor and sum of the coordinates of dims 0..rank-2.
		var xr, sum uint64
		for d := 0; d < rank-1; d++ {
			xr ^= uint64(f.coord[d])
			sum += uint64(f.coord[d])
		}
		x := f.coord[rank-1]
		cnt := rowLen - x
		if rowLen == math.MaxInt64 || cnt > int64(len(dst)/es) {
			cnt = int64(len(dst) / es)
		}
		for cnt > 0 {
			seg := min(cnt, rowSeg)
			v := f.vals[:seg]
			f.gen(v, xr, sum, x, idx)
			f.put(dst, v)
			dst = dst[int(seg)*es:]
			x += seg
			idx += uint64(seg)
			cnt -= seg
		}
		// Next row.
		if x < rowLen {
			break // dst ended mid-row
		}
		f.coord[rank-1] = 0
		for d := rank - 2; d >= 0; d-- {
			f.coord[d]++
			if f.coord[d] < f.shape[d] {
				break
			}
			f.coord[d] = 0
		}
	}
}

// gen computes the values of elements x.. of the current row. xr and sum
// fold the coordinates of the outer dims, idx is the global index of x.
func (f *filler) gen(v []uint64, xr, sum uint64, x int64, idx uint64) {
	switch f.kind {
	case FillXor:
		for i := range v {
			v[i] = xr ^ uint64(x+int64(i))
		}
	case FillRand:
		for i := range v {
			v[i] = randValue(idx + uint64(i))
		}
	case FillThirds:
		rank := len(f.shape)
		if f.band != rank-1 {
			switch f.bandOf(f.coord[f.band]) {
			case 0:
				for i := range v {
					v[i] = noiseValue(idx + uint64(i))
				}
			case 1:
				for i := range v {
					v[i] = (sum + uint64(x+int64(i))) & 0xfff
				}
			default:
				clear(v)
			}
			return
		}
		// The band axis is the row itself (rank 2, or rank 1).
		for i := range v {
			c := x + int64(i)
			switch f.bandOf(c) {
			case 0:
				v[i] = noiseValue(idx + uint64(i))
			case 1:
				v[i] = (sum + uint64(c)) & 0xfff
			default:
				v[i] = 0
			}
		}
	}
}

// put stores v into dst in the dtype, little endian: integers truncated to
// their width (so signed types get the same bit pattern), floats by value.
func (f *filler) put(dst []byte, v []uint64) {
	switch f.dt {
	case zarr.Uint8, zarr.Int8:
		dst = dst[:len(v)]
		for i, x := range v {
			dst[i] = byte(x)
		}
	case zarr.Uint16, zarr.Int16:
		dst = dst[:2*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(x))
		}
	case zarr.Uint32, zarr.Int32:
		dst = dst[:4*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(x))
		}
	case zarr.Uint64, zarr.Int64:
		dst = dst[:8*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint64(dst[8*i:], x)
		}
	case zarr.Float32:
		dst = dst[:4*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(x)))
		}
	case zarr.Float64:
		dst = dst[:8*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(x)))
		}
	}
}
