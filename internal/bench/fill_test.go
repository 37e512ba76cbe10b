package bench

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// refValue is the fill's definition written the slow, obvious way: from
// the element's coordinates, one element at a time.
func refValue(kind Fill, spec *zarr.Spec, coord []int64, idx uint64) uint64 {
	rank := spec.Rank()
	switch kind {
	case FillCamera:
		return refCamera(spec, coord, idx)
	case FillZeros:
		return 0
	case FillXor:
		var x uint64
		for _, c := range coord {
			x ^= uint64(c)
		}
		return x
	case FillRand:
		h := mix((idx / 4) ^ seedRand)
		return (h >> (16 * (idx % 4))) & 0xfff
	case FillThirds:
		var band int
		var sum uint64
		for _, c := range coord {
			sum += uint64(c)
		}
		switch {
		case rank == 1:
			band = int(coord[0] / 4096 % 3)
		case rank == 2:
			band = int(coord[1] * 3 / spec.Shape[1])
		default:
			band = int(coord[rank-2] * 3 / spec.Shape[rank-2])
		}
		switch band {
		case 0:
			h := mix((idx / 2) ^ seedThirds)
			b := uint32(h >> (32 * (idx % 2)))
			return 1538 + uint64(b&0xff) + uint64(b>>8&0xff) + uint64(b>>16&0xff) + uint64(b>>24)
		case 1:
			return sum % 4096
		}
		return 0
	}
	panic("bad fill")
}

// refScene caches the reference's scene for the spec it was built for:
// building one per element would make the reference slower than the
// tests can afford.
var refScene struct {
	spec *zarr.Spec
	s    *camScene
}

// refCameraLambda is the camera scene's expected photons at coord (global
// coordinates, dim 0 first), 12-bit scale, before the dtype's scaling: every
// blob of the element's scene evaluated on every axis, wrap-around by the
// axis period, as camera.go's comment defines it.
func refCameraLambda(spec *zarr.Spec, coord []int64) (int64, *camScene) {
	var dims []int64
	if spec.Rank() > 1 {
		dims = spec.Shape[1:]
	}
	if refScene.spec != spec {
		refScene.spec, refScene.s = spec, newScene("ref", dims, spec.DType)
	}
	s := refScene.s
	t := coord[0]
	k := int64(0)
	for i, n := range dims {
		if n <= camChannelMax {
			k = k*n + coord[1+i]
		}
	}
	v := int(k % int64(s.nv))
	acc := s.bg[v] << 15
	for _, bl := range s.blobs[v] {
		u := int64(1 << 30)
		for a, i := range s.spatial {
			ax := bl.ax[a]
			period := int64(1)
			for period < dims[i] {
				period *= 2
			}
			period *= 16
			centre := (ax.c0 + ax.vel*t) % period
			if centre < 0 {
				centre += period
			}
			d := coord[1+i]*16 + 8 - centre
			for d >= period/2 {
				d -= period
			}
			for d < -period/2 {
				d += period
			}
			if d <= -ax.r || d >= ax.r {
				u = 0
				break
			}
			u -= d * d * ax.inv >> 26
		}
		if u > 0 {
			q := u >> 15
			acc += bl.amp * (q * q >> 15)
		}
	}
	return min((acc+1<<14)>>15, 4095-camOffset), s
}

// refCamera is the camera fill of one element: Poisson-like noise around
// the scene's λ (scaled to the dtype), plus the dark offset, clamped.
func refCamera(spec *zarr.Spec, coord []int64, idx uint64) uint64 {
	lam, s := refCameraLambda(spec, coord)
	lam >>= s.shift
	h := mix((idx / 2) ^ seedCamNoise)
	b := uint32(h >> (32 * (idx % 2)))
	d := int64(b&0xff+b>>8&0xff+b>>16&0xff+b>>24) - 510
	sq := int64(isqrt(uint64(lam) << 32 / 21845))
	x := camOffset>>s.shift + lam + (sq*d+(d*d-21845)/2+32768)>>16
	if (d*d-21845)%2 != 0 && d*d < 21845 {
		// >> 1 rounds towards -inf; / 2 towards zero.
		x = camOffset>>s.shift + lam + (sq*d+(d*d-21845-1)/2+32768)>>16
	}
	return uint64(min(max(x, 0), s.maxv))
}

func refElem(dt zarr.DType, v uint64) []byte {
	b := make([]byte, 8)
	switch dt {
	case zarr.Float32:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
	case zarr.Float64:
		binary.LittleEndian.PutUint64(b, math.Float64bits(float64(v)))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
	return b[:dt.Size()]
}

// refFill fills frames [first, first+n) element by element.
func refFill(kind Fill, spec *zarr.Spec, first, n int64) []byte {
	rank := spec.Rank()
	fe := spec.FrameBytes() / int64(spec.DType.Size())
	var out []byte
	coord := make([]int64, rank)
	for i := first * fe; i < (first+n)*fe; i++ {
		r := i
		for d := rank - 1; d >= 1; d-- {
			coord[d] = r % spec.Shape[d]
			r /= spec.Shape[d]
		}
		coord[0] = r
		out = append(out, refElem(spec.DType, refValue(kind, spec, coord, uint64(i)))...)
	}
	return out
}

func TestFillMatchesDefinition(t *testing.T) {
	shapes := [][]int64{
		{0},
		{5, 7},
		{4, 3, 10, 9},
		{3, 2, 3, 5, 4},
		{2, 1, 4, 3000},    // rows longer than the generator's segment
		{2, 6, 7, 3, 9, 3}, // camera: channels between and after spatial axes
		{3, 2, 40, 33},     // camera: two scenes, blobs across the wrap
	}
	for _, kind := range Fills {
		for _, dt := range zarr.DTypes {
			for _, shape := range shapes {
				spec := &zarr.Spec{Shape: shape, DType: dt}
				frames := int64(6)
				if len(shape) == 1 {
					frames = 20000 // several thirds bands of a rank-1 array
				}
				if kind == FillCamera {
					// The reference evaluates every blob at every element:
					// fewer frames keep it quick (the drift is checked in
					// TestCameraDrift).
					frames = max(frames/10, 2)
				}
				name := kind.String() + "/" + dt.String() + "/" + fmtShape(shape)
				t.Run(name, func(t *testing.T) {
					want := refFill(kind, spec, 3, frames)
					got := make([]byte, len(want))
					if err := FillFrames(kind, spec, 3, got); err != nil {
						t.Fatal(err)
					}
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("byte %d: got %d want %d", i, got[i], want[i])
					}
				})
			}
		}
	}
}

// TestFillSplitInvariant: filling a stream in pieces of any size, in
// parallel or not, gives the same bytes as one fill.
func TestFillSplitInvariant(t *testing.T) {
	spec := &zarr.Spec{Shape: []int64{0, 3, 67, 129}, DType: zarr.Uint16}
	fb := spec.FrameBytes()
	for _, kind := range Fills {
		whole := make([]byte, 40*fb) // > parallelMin: runs on all cores
		if err := FillFrames(kind, spec, 0, whole); err != nil {
			t.Fatal(err)
		}
		for _, piece := range []int{2, 6, 998, 1 << 16, int(fb) + 2} {
			t.Run(kind.String()+"/"+itoa(piece), func(t *testing.T) {
				// Tiny pieces on a prefix only: a call per 2 bytes over
				// megabytes would dominate the package's test time.
				n := len(whole)
				if piece < 1024 {
					n = 64 << 10
				}
				got := make([]byte, n)
				for off := 0; off < len(got); off += piece {
					end := min(off+piece, len(got))
					if err := FillElems(kind, spec, int64(off/2), got[off:end]); err != nil {
						t.Fatal(err)
					}
				}
				if i := firstDiff(got, whole[:n]); i >= 0 {
					t.Fatalf("piece %d: byte %d differs", piece, i)
				}
			})
		}
	}
}

func TestFillErrors(t *testing.T) {
	spec := &zarr.Spec{Shape: []int64{0, 4}, DType: zarr.Uint16}
	tests := []struct {
		name string
		err  error
	}{
		{"partial frame", FillFrames(FillXor, spec, 0, make([]byte, 7))},
		{"odd bytes", FillElems(FillXor, spec, 0, make([]byte, 3))},
		{"negative start", FillElems(FillXor, spec, -1, make([]byte, 2))},
		{"bad kind", FillElems(Fill(99), spec, 0, make([]byte, 2))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestParseFill(t *testing.T) {
	for _, f := range Fills {
		t.Run(f.String(), func(t *testing.T) {
			got, err := ParseFill(" " + bytes.NewBufferString(f.String()).String() + " ")
			if err != nil || got != f {
				t.Fatalf("ParseFill(%q) = %v, %v", f.String(), got, err)
			}
		})
	}
	if _, err := ParseFill("stripes"); err == nil {
		t.Fatal("ParseFill(stripes): no error")
	}
	if f, _ := ParseFill("NOISE"); f != FillRand {
		t.Fatalf("ParseFill(NOISE) = %v", f)
	}
}

// TestFillStatistics checks the properties the fills promise users:
// 12-bit range and a plausible noise spread.
func TestFillStatistics(t *testing.T) {
	spec := &zarr.Spec{Shape: []int64{0, 300, 256}, DType: zarr.Uint16}
	buf := make([]byte, 4*spec.FrameBytes())
	for _, kind := range []Fill{FillRand, FillThirds} {
		t.Run(kind.String(), func(t *testing.T) {
			if err := FillFrames(kind, spec, 0, buf); err != nil {
				t.Fatal(err)
			}
			var hi uint16
			var sum, sum2 float64
			var n float64
			for i := 0; i < len(buf); i += 2 {
				v := binary.LittleEndian.Uint16(buf[i:])
				hi = max(hi, v)
				y := (i / 2 / 256) % 300
				if kind == FillRand || y < 100 {
					sum += float64(v)
					sum2 += float64(v) * float64(v)
					n++
				}
			}
			if hi > 4095 {
				t.Fatalf("value %d exceeds 12 bits", hi)
			}
			mean := sum / n
			sd := math.Sqrt(sum2/n - mean*mean)
			wantMean, wantSD := 2047.5, 4096/math.Sqrt(12)
			if kind == FillThirds {
				wantMean, wantSD = 2048, 147.8
			}
			if math.Abs(mean-wantMean) > 10 || math.Abs(sd-wantSD) > 0.05*wantSD {
				t.Fatalf("mean %.1f sd %.1f, want %.1f and %.1f", mean, sd, wantMean, wantSD)
			}
		})
	}
}

func BenchmarkFill(b *testing.B) {
	spec := &zarr.Spec{Shape: []int64{0, 2, 2048, 2304}, DType: zarr.Uint16}
	buf := make([]byte, 4*spec.FrameBytes())
	for _, kind := range Fills {
		b.Run(kind.String(), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := FillFrames(kind, spec, int64(4*i), buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
