package downsample

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

func elems(shape []int64) int64 {
	n := int64(1)
	for _, x := range shape {
		n *= x
	}
	return n
}

// fillRandom fills b with values of dt spread over the type's whole range
// (extremes included, so 64-bit sums overflow without 128 bits), with some
// NaNs and infinities for floats when special is set.
func fillRandom(b []byte, dt zarr.DType, r *rand.Rand, special bool) {
	size := dt.Size()
	for i := 0; i+size <= len(b); i += size {
		switch dt {
		case zarr.Float32:
			v := float32(r.NormFloat64() * 1e3)
			if special && r.IntN(50) == 0 {
				v = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32}[r.IntN(4)]
			}
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
		case zarr.Float64:
			v := r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
			if special && r.IntN(50) == 0 {
				v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64}[r.IntN(4)]
			}
			binary.LittleEndian.PutUint64(b[i:], math.Float64bits(v))
		default:
			u := r.Uint64()
			if r.IntN(4) == 0 { // extremes: all ones, or the top bit alone
				u = []uint64{math.MaxUint64, 1 << 63, 0, math.MaxUint64 >> 1}[r.IntN(4)]
			}
			for k := 0; k < size; k++ {
				b[i+k] = byte(u >> (8 * k))
			}
		}
	}
}

// sameValues compares integer outputs exactly and float outputs within one
// ulp (the fast path sums in float64 and rounds twice for float32; the
// reference rounds an exact rational once), NaN equal to NaN.
func sameValues(t *testing.T, what string, dt zarr.DType, got, want []byte) {
	t.Helper()
	if !isFloat(dt) {
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%s: differs from the reference at byte %d (element %d)", what, i, i/dt.Size())
		}
		return
	}
	size := dt.Size()
	for i := 0; i < len(got); i += size {
		var g, w float64
		var gu, wu int64
		if dt == zarr.Float32 {
			g, w = float64(math.Float32frombits(binary.LittleEndian.Uint32(got[i:]))), float64(math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
			gu, wu = int64(int32(binary.LittleEndian.Uint32(got[i:]))), int64(int32(binary.LittleEndian.Uint32(want[i:])))
		} else {
			g, w = math.Float64frombits(binary.LittleEndian.Uint64(got[i:])), math.Float64frombits(binary.LittleEndian.Uint64(want[i:]))
			gu, wu = int64(binary.LittleEndian.Uint64(got[i:])), int64(binary.LittleEndian.Uint64(want[i:]))
		}
		if math.IsNaN(g) && math.IsNaN(w) || g == w {
			continue
		}
		if d := gu - wu; d > 1 || d < -1 || math.Signbit(g) != math.Signbit(w) {
			t.Fatalf("%s: element %d is %v, the reference %v", what, i/size, g, w)
		}
	}
}

type geom struct {
	shape  []int64
	reduce []bool
}

var geoms = []geom{
	{[]int64{7}, []bool{true}},
	{[]int64{5, 9}, []bool{false, true}},
	{[]int64{4, 7, 5}, []bool{false, true, true}},
	{[]int64{5, 7, 6}, []bool{true, true, true}},
	{[]int64{3, 2, 5, 7}, []bool{false, false, true, true}},
	{[]int64{6, 3, 4, 1}, []bool{true, false, true, true}},
	{[]int64{2, 1, 1}, []bool{false, true, true}},
	{[]int64{3, 4}, []bool{true, false}},
}

// TestFramesMatchReference: the fast path equals the exact reference for
// every dtype, method and geometry (ragged edges, reduced and kept dims,
// dim 0 reduced or not).
func TestFramesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dt := range zarr.DTypes {
		for _, m := range Methods {
			for gi, g := range geoms {
				t.Run(fmt.Sprintf("%v/%v/g%d", dt, m, gi), func(t *testing.T) {
					p, err := NewPlan(g.shape, g.reduce, dt, m)
					if err != nil {
						t.Fatal(err)
					}
					src := make([]byte, elems(g.shape)*int64(dt.Size()))
					fillRandom(src, dt, r, true)
					got := make([]byte, elems(p.Out)*int64(dt.Size()))
					want := make([]byte, len(got))
					for i := range got {
						got[i], want[i] = 0xA5, 0x5A // every element must be written
					}
					p.Frames(got, src, 0, p.Out[0])
					Reference(p, want, src, 0, p.Out[0])
					sameValues(t, "Frames", dt, got, want)
				})
			}
		}
	}
}

// TestConstantStaysConstant: a constant image stays that constant at
// every level, for every integer dtype and every constant up to the
// type's extremes (the drift other writers show: 1000 came out as 343 at
// level 2).
func TestConstantStaysConstant(t *testing.T) {
	for _, dt := range zarr.DTypes {
		if isFloat(dt) {
			continue
		}
		size := dt.Size()
		for _, c := range []uint64{0, 1, 1000, 1<<(8*uint(size)) - 1, 1 << (8*uint(size) - 1)} {
			t.Run(fmt.Sprintf("%v/%#x", dt, c), func(t *testing.T) {
				shape := []int64{9, 13, 11}
				reduce := []bool{true, true, true}
				buf := make([]byte, elems(shape)*int64(size))
				for i := 0; i < len(buf); i += size {
					for k := 0; k < size; k++ {
						buf[i+k] = byte(c >> (8 * k))
					}
				}
				want := append([]byte(nil), buf[:size]...)
				for level := 1; level <= 4; level++ {
					p, _ := NewPlan(shape, reduce, dt, Mean)
					out := make([]byte, elems(p.Out)*int64(size))
					p.Frames(out, buf, 0, p.Out[0])
					for i := 0; i < len(out); i += size {
						if !bytes.Equal(out[i:i+size], want) {
							t.Fatalf("level %d element %d: %x, want %x", level, i/size, out[i:i+size], want)
						}
					}
					buf, shape = out, p.Out
				}
			})
		}
	}
}

// TestRounding: the mean rounds half to even, symmetrically for negative
// sums.
func TestRounding(t *testing.T) {
	for _, tc := range []struct {
		vals []int16
		want int16
	}{
		{[]int16{1, 2}, 2},       // 1.5 -> 2
		{[]int16{2, 3}, 2},       // 2.5 -> 2
		{[]int16{-1, -2}, -2},    // -1.5 -> -2
		{[]int16{-2, -3}, -2},    // -2.5 -> -2
		{[]int16{1, 1, 1, 2}, 1}, // 1.25 -> 1
		{[]int16{1, 2, 2, 2}, 2}, // 1.75 -> 2
		{[]int16{32767, 32767}, 32767},
		{[]int16{-32768, -32768}, -32768},
	} {
		shape := []int64{1, int64(len(tc.vals))}
		p, _ := NewPlan(shape, []bool{false, true}, zarr.Int16, Mean)
		if len(tc.vals) == 4 {
			p, _ = NewPlan([]int64{1, 2, 2}, []bool{false, true, true}, zarr.Int16, Mean)
		}
		src := make([]byte, 2*len(tc.vals))
		for i, v := range tc.vals {
			binary.LittleEndian.PutUint16(src[2*i:], uint16(v))
		}
		dst := make([]byte, 2)
		p.Frames(dst, src, 0, 1)
		if got := int16(binary.LittleEndian.Uint16(dst)); got != tc.want {
			t.Errorf("mean of %v = %d, want %d", tc.vals, got, tc.want)
		}
	}
}

// TestFrameRanges: output frames computed in pieces on several goroutines
// equal the whole computed at once.
func TestFrameRanges(t *testing.T) {
	for _, reduce0 := range []bool{false, true} {
		shape := []int64{21, 17, 33}
		p, _ := NewPlan(shape, []bool{reduce0, true, true}, zarr.Uint16, Mean)
		src := make([]byte, elems(shape)*2)
		fillRandom(src, zarr.Uint16, rand.New(rand.NewPCG(3, 4)), false)
		whole := make([]byte, elems(p.Out)*2)
		p.Frames(whole, src, 0, p.Out[0])
		parts := make([]byte, len(whole))
		var wg sync.WaitGroup
		for lo := int64(0); lo < p.Out[0]; lo += 3 {
			wg.Add(1)
			go func() { defer wg.Done(); p.Frames(parts, src, lo, min(lo+3, p.Out[0])) }()
		}
		wg.Wait()
		if !bytes.Equal(whole, parts) {
			t.Errorf("reduce dim 0 %v: pieces differ from the whole", reduce0)
		}
	}
}

// FuzzFrames compares the fast path with the reference on arbitrary
// shapes, flags, dtypes, methods and bytes.
func FuzzFrames(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(7), uint8(0b111), uint8(1), uint8(0), []byte{1, 2, 3, 4, 5})
	f.Add(uint8(1), uint8(1), uint8(9), uint8(0b110), uint8(7), uint8(2), []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, a, b, c, mask, dti, mi uint8, data []byte) {
		shape := []int64{int64(a%6) + 1, int64(b%7) + 1, int64(c%9) + 1}
		reduce := []bool{mask&1 != 0, mask&2 != 0, mask&4 != 0}
		dt := zarr.DTypes[int(dti)%len(zarr.DTypes)]
		m := Methods[int(mi)%len(Methods)]
		p, err := NewPlan(shape, reduce, dt, m)
		if err != nil {
			t.Fatal(err)
		}
		src := make([]byte, elems(shape)*int64(dt.Size()))
		for i := range src {
			if len(data) > 0 {
				src[i] = data[i%len(data)] ^ byte(i*7)
			}
		}
		got := make([]byte, elems(p.Out)*int64(dt.Size()))
		want := make([]byte, len(got))
		p.Frames(got, src, 0, p.Out[0])
		Reference(p, want, src, 0, p.Out[0])
		sameValues(t, fmt.Sprintf("%v %v %v %v", shape, reduce, dt, m), dt, got, want)
	})
}
