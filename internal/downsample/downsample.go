package downsample

import (
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Method is how a block of elements becomes one.
type Method int

const (
	Mean Method = iota
	Min
	Max
	Decimate
)

// Methods lists every method, for tests and help texts.
var Methods = []Method{Mean, Min, Max, Decimate}

func (m Method) String() string {
	switch m {
	case Mean:
		return "mean"
	case Min:
		return "min"
	case Max:
		return "max"
	case Decimate:
		return "decimate"
	}
	return fmt.Sprintf("method(%d)", int(m))
}

// ParseMethod accepts mean, min, max and decimate, case-insensitively.
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods {
		if strings.EqualFold(strings.TrimSpace(s), m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown downsampling method %q (want mean, min, max or decimate)", s)
}

// OutShape is the shape after one reduction: ceil(n/2) along every reduced
// dimension.
func OutShape(in []int64, reduce []bool) []int64 {
	out := make([]int64, len(in))
	for d, n := range in {
		out[d] = n
		if reduce[d] {
			out[d] = (n + 1) / 2
		}
	}
	return out
}

// Plan is one reduction: frames of shape In (dim 0 = frames) to frames of
// shape Out. It is read-only after NewPlan and safe for concurrent use.
type Plan struct {
	In, Out []int64
	Reduce  []bool
	DType   zarr.DType
	Method  Method

	inStride []int64 // elements
	nd       int
}

// NewPlan checks the geometry. Dims of size 0 are allowed (nothing to do).
func NewPlan(in []int64, reduce []bool, dt zarr.DType, m Method) (*Plan, error) {
	if len(reduce) != len(in) || len(in) == 0 || len(in) > zarr.MaxRank {
		return nil, fmt.Errorf("downsample: %d reduce flags for a shape of %d dimensions", len(reduce), len(in))
	}
	if dt.Size() == 0 {
		return nil, fmt.Errorf("downsample: dtype not set")
	}
	if m < Mean || m > Decimate {
		return nil, fmt.Errorf("downsample: method %d unknown", int(m))
	}
	p := &Plan{In: append([]int64(nil), in...), Out: OutShape(in, reduce), Reduce: append([]bool(nil), reduce...), DType: dt, Method: m, nd: len(in)}
	p.inStride = make([]int64, p.nd)
	s := int64(1)
	for d := p.nd - 1; d >= 0; d-- {
		p.inStride[d] = s
		s *= in[d]
	}
	return p, nil
}

// FrameBytes is the size of one output frame.
func (p *Plan) FrameBytes() int64 {
	n := int64(p.DType.Size())
	for _, x := range p.Out[1:] {
		n *= x
	}
	return n
}

// InFrames is how many input frames output frames [lo, hi) read: the
// input frames [InFirst(lo), InFirst(hi)), clipped to In[0].
func (p *Plan) InFirst(out int64) int64 {
	if p.Reduce[0] {
		return min(2*out, p.In[0])
	}
	return min(out, p.In[0])
}

// Frames computes output frames [lo, hi) into dst, which holds all Out[0]
// output frames, from src, which holds all In[0] input frames (C order,
// little endian). Calls for disjoint ranges may run concurrently.
func (p *Plan) Frames(dst, src []byte, lo, hi int64) {
	switch p.DType {
	case zarr.Uint8:
		framesInt[uint8, uint64](p, dst, src, lo, hi)
	case zarr.Uint16:
		framesInt[uint16, uint64](p, dst, src, lo, hi)
	case zarr.Uint32:
		framesInt[uint32, uint64](p, dst, src, lo, hi)
	case zarr.Int8:
		framesInt[int8, int64](p, dst, src, lo, hi)
	case zarr.Int16:
		framesInt[int16, int64](p, dst, src, lo, hi)
	case zarr.Int32:
		framesInt[int32, int64](p, dst, src, lo, hi)
	case zarr.Uint64:
		frames128[uint64](p, dst, src, lo, hi, false)
	case zarr.Int64:
		frames128[int64](p, dst, src, lo, hi, true)
	case zarr.Float32:
		framesFloat[float32](p, dst, src, lo, hi)
	case zarr.Float64:
		framesFloat[float64](p, dst, src, lo, hi)
	}
}

// view reinterprets b as a []T. Sound because the buffers hold whole
// little-endian elements of T (callers size them from the plan; the
// project builds for little-endian targets only, see zarr's bytes codec),
// and Go's allocator and pinned host memory align them to at least 8.
func view[T any](b []byte) []T {
	var z T
	n := len(b) / int(unsafe.Sizeof(z))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// lines calls fn for every output line (all dims but the last fixed) of
// output frames [lo, hi), with the input line offsets (in elements) that
// contribute to it and the output line offset.
func (p *Plan) lines(lo, hi int64, fn func(out int64, ins []int64)) {
	nd := p.nd
	last := p.In[nd-1]
	outLine := p.Out[nd-1]
	var idx [zarr.MaxRank]int64 // output index over dims 0..nd-2
	idx[0] = lo
	ins := make([]int64, 0, 1<<uint(nd))
	outStrideLine := int64(1)
	for d := 1; d < nd-1; d++ {
		outStrideLine *= p.Out[d]
	}
	if nd == 1 {
		// One dimension: each output "line" is one element of dim 0.
		_ = last
		for o := lo; o < hi; o++ {
			ins = ins[:0]
			for k := int64(0); k < 2 && (k == 0 || p.Reduce[0]); k++ {
				i := o*pick(p.Reduce[0], 2, 1) + k
				if i < p.In[0] {
					ins = append(ins, i)
				}
			}
			fn(o, ins)
		}
		return
	}
	for idx[0] < hi {
		// Output line offset (elements) and its input lines.
		outOff := int64(0)
		for d := 0; d < nd-1; d++ {
			outOff = outOff*p.Out[d] + idx[d]
		}
		outOff *= outLine
		ins = ins[:0]
		ins = append(ins, 0)
		for d := 0; d < nd-1; d++ {
			base := idx[d]
			if p.Reduce[d] {
				base *= 2
			}
			n := len(ins)
			if p.Reduce[d] && base+1 < p.In[d] {
				for j := 0; j < n; j++ {
					ins = append(ins, ins[j]+(base+1)*p.inStride[d])
				}
			}
			for j := 0; j < n; j++ {
				ins[j] += base * p.inStride[d]
			}
		}
		fn(outOff, ins)
		// next line
		d := nd - 2
		for ; d >= 0; d-- {
			idx[d]++
			if d == 0 || idx[d] < p.Out[d] {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			break
		}
	}
}

func pick(c bool, a, b int64) int64 {
	if c {
		return a
	}
	return b
}

type integer interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64 | ~int8 | ~int16 | ~int32 | ~int64
}

// framesInt handles the integer types whose block sums fit in A (64 bits:
// at most 2^8 elements of at most 32 bits).
func framesInt[T integer, A uint64 | int64](p *Plan, dstb, srcb []byte, lo, hi int64) {
	dst, src := view[T](dstb), view[T](srcb)
	nd := p.nd
	inLast, outLast := p.In[nd-1], p.Out[nd-1]
	redLast := p.Reduce[nd-1] && nd > 1
	if nd == 1 {
		inLast, outLast, redLast = 1, 1, false
	}
	acc := make([]A, inLast)
	p.lines(lo, hi, func(out int64, ins []int64) {
		switch p.Method {
		case Decimate:
			line := src[ins[0] : ins[0]+inLast]
			o := dst[out : out+outLast]
			if redLast {
				for x := range o {
					o[x] = line[2*x]
				}
			} else {
				copy(o, line)
			}
			return
		case Mean:
			clear(acc)
			for _, in := range ins {
				line := src[in : in+inLast]
				for x, v := range line {
					acc[x] += A(v)
				}
			}
			o := dst[out : out+outLast]
			n := A(len(ins))
			for x := range o {
				s, c := acc[x], n
				if redLast {
					s, c = acc[2*x], n
					if 2*x+1 < int(inLast) {
						s += acc[2*x+1]
						c = 2 * n
					}
				}
				o[x] = T(roundDiv(s, c))
			}
		default: // Min, Max
			o := dst[out : out+outLast]
			isMin := p.Method == Min
			for x := range o {
				var best T
				for k := 0; k < 2; k++ {
					xi := x
					if redLast {
						xi = 2*x + k
						if xi >= int(inLast) {
							break
						}
					} else if k > 0 {
						break
					}
					for j, in := range ins {
						v := src[in+int64(xi)]
						if j == 0 && k == 0 {
							best = v
						} else if (isMin && v < best) || (!isMin && v > best) {
							best = v
						}
					}
				}
				o[x] = best
			}
		}
	})
}

// roundDiv is s/c rounded half to even, for c a power of two (a block
// holds 1 or 2 elements per reduced dimension) and s of either sign: a
// shift, not a division, since it runs once per output element.
func roundDiv[A uint64 | int64](s, c A) A {
	neg := s < 0
	if neg {
		s = -s
	}
	k := uint(bits.TrailingZeros64(uint64(c)))
	q, r, half := s>>k, s&(c-1), c>>1
	if k > 0 && (r > half || (r == half && q&1 == 1)) {
		q++
	}
	if neg {
		return -q
	}
	return q
}

// frames128 handles uint64 and int64, whose sums need 128 bits.
func frames128[T uint64 | int64](p *Plan, dstb, srcb []byte, lo, hi int64, signed bool) {
	dst, src := view[T](dstb), view[T](srcb)
	nd := p.nd
	inLast, outLast := p.In[nd-1], p.Out[nd-1]
	redLast := p.Reduce[nd-1] && nd > 1
	if nd == 1 {
		inLast, outLast, redLast = 1, 1, false
	}
	type u128 struct{ hi, lo uint64 }
	acc := make([]u128, inLast)
	add := func(a *u128, v T) {
		var vh uint64
		if signed && int64(v) < 0 {
			vh = math.MaxUint64
		}
		var c uint64
		a.lo, c = bits.Add64(a.lo, uint64(v), 0)
		a.hi, _ = bits.Add64(a.hi, vh, c)
	}
	p.lines(lo, hi, func(out int64, ins []int64) {
		o := dst[out : out+outLast]
		switch p.Method {
		case Decimate:
			line := src[ins[0] : ins[0]+inLast]
			if redLast {
				for x := range o {
					o[x] = line[2*x]
				}
			} else {
				copy(o, line)
			}
		case Mean:
			clear(acc)
			for _, in := range ins {
				for x, v := range src[in : in+inLast] {
					add(&acc[x], v)
				}
			}
			n := uint64(len(ins))
			for x := range o {
				s, c := acc[x], n
				if redLast {
					s = acc[2*x]
					if 2*x+1 < int(inLast) {
						var cy uint64
						s.lo, cy = bits.Add64(s.lo, acc[2*x+1].lo, 0)
						s.hi, _ = bits.Add64(s.hi, acc[2*x+1].hi, cy)
						c = 2 * n
					}
				}
				neg := signed && int64(s.hi) < 0
				if neg { // two's complement negate
					s.lo = ^s.lo + 1
					s.hi = ^s.hi
					if s.lo == 0 {
						s.hi++
					}
				}
				qh, rh := s.hi/c, s.hi%c
				ql, r := bits.Div64(rh, s.lo, c)
				_ = qh // |sum| < 2^72: the quotient fits in 64 bits
				if 2*r > c || (2*r == c && ql%2 == 1) {
					ql++
				}
				if neg {
					ql = -ql
				}
				o[x] = T(ql)
			}
		default:
			isMin := p.Method == Min
			for x := range o {
				var best T
				first := true
				for k := 0; k < 2; k++ {
					xi := x
					if redLast {
						xi = 2*x + k
						if xi >= int(inLast) {
							break
						}
					} else if k > 0 {
						break
					}
					for _, in := range ins {
						v := src[in+int64(xi)]
						if first || (isMin && v < best) || (!isMin && v > best) {
							best, first = v, false
						}
					}
				}
				o[x] = best
			}
		}
	})
}

// framesFloat handles float32 and float64.
func framesFloat[T float32 | float64](p *Plan, dstb, srcb []byte, lo, hi int64) {
	dst, src := view[T](dstb), view[T](srcb)
	nd := p.nd
	inLast, outLast := p.In[nd-1], p.Out[nd-1]
	redLast := p.Reduce[nd-1] && nd > 1
	if nd == 1 {
		inLast, outLast, redLast = 1, 1, false
	}
	p.lines(lo, hi, func(out int64, ins []int64) {
		o := dst[out : out+outLast]
		switch p.Method {
		case Decimate:
			line := src[ins[0] : ins[0]+inLast]
			if redLast {
				for x := range o {
					o[x] = line[2*x]
				}
			} else {
				copy(o, line)
			}
		case Mean:
			// Per output element, in one fixed order (the block's lines for
			// the even x, then for the odd x: the order the GPU kernel
			// walks a block in), so both backends round the same way.
			for x := range o {
				xs := [2]int64{int64(x), -1}
				if redLast {
					xs = [2]int64{int64(2 * x), -1}
					if int64(2*x+1) < inLast {
						xs[1] = int64(2*x + 1)
					}
				}
				var s, cmp float64
				cnt := 0
				for _, xi := range xs {
					if xi < 0 {
						continue
					}
					for _, in := range ins {
						s, cmp = neumaier(s, cmp, float64(src[in+xi]))
						cnt++
					}
				}
				c := float64(cnt)
				if math.IsInf(s, 0) || math.IsNaN(s) {
					// An infinity or NaN in the block, or a sum past the
					// float64 range: sum the scaled values instead, where
					// only a real infinity or NaN survives.
					var s2 float64
					for _, xi := range xs {
						if xi < 0 {
							continue
						}
						for _, in := range ins {
							s2 += float64(src[in+xi]) / c
						}
					}
					o[x] = T(s2)
					continue
				}
				o[x] = T((s + cmp) / c)
			}
		default:
			isMin := p.Method == Min
			for x := range o {
				var best T
				first := true
				for k := 0; k < 2; k++ {
					xi := x
					if redLast {
						xi = 2*x + k
						if xi >= int(inLast) {
							break
						}
					} else if k > 0 {
						break
					}
					for _, in := range ins {
						v := src[in+int64(xi)]
						switch {
						case first || v != v:
							best, first = v, false
						case best != best:
						case (isMin && v < best) || (!isMin && v > best):
							best = v
						}
					}
				}
				if best != best {
					best = T(math.NaN()) // one NaN, whichever the block held
				}
				o[x] = best
			}
		}
	})
}

// neumaier adds v to the sum s with compensation c (Neumaier's variant of
// Kahan summation): returns the new sum and compensation.
func neumaier(s, c, v float64) (float64, float64) {
	t := s + v
	if math.Abs(s) >= math.Abs(v) {
		c += (s - t) + v
	} else {
		c += (v - t) + s
	}
	return t, c
}
