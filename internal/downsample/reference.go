package downsample

import (
	"encoding/binary"
	"math"
	"math/big"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Reference computes output frames [lo, hi) like Plan.Frames, one element
// at a time with exact arithmetic (math/big rationals for the mean), sharing
// no code with it: the independent check that verify and the tests use.
// It is slow (hundreds of ns per element) and allocates; use it on
// small pieces.
func Reference(p *Plan, dst, src []byte, lo, hi int64) {
	nd := len(p.In)
	size := int64(p.DType.Size())
	var o [zarr.MaxRank]int64
	o[0] = lo
	outFrame := int64(1)
	for _, x := range p.Out[1:] {
		outFrame *= x
	}
	if outFrame == 0 || lo >= hi {
		return
	}
	for {
		// The block: every input index that is 2*o[d] or 2*o[d]+1 along a
		// reduced dimension (if it exists), o[d] along the others.
		var vals []refValue
		var walk func(d int, off int64)
		walk = func(d int, off int64) {
			if d == nd {
				vals = append(vals, readValue(src[off*size:(off+1)*size], p.DType))
				return
			}
			if !p.Reduce[d] {
				walk(d+1, off*p.In[d]+o[d])
				return
			}
			for k := int64(0); k < 2; k++ {
				if i := 2*o[d] + k; i < p.In[d] {
					walk(d+1, off*p.In[d]+i)
				}
			}
		}
		walk(0, 0)
		var outOff int64
		for d := 0; d < nd; d++ {
			outOff = outOff*p.Out[d] + o[d]
		}
		writeValue(dst[outOff*size:(outOff+1)*size], p.DType, reduceValues(vals, p.Method, p.DType))
		d := nd - 1
		for ; d >= 0; d-- {
			o[d]++
			lim := p.Out[d]
			if d == 0 {
				lim = hi
			}
			if o[d] < lim {
				break
			}
			if d == 0 {
				return
			}
			o[d] = 0
		}
	}
}

// refValue is one element, exactly: an integer, or a float (with NaN).
type refValue struct {
	i     *big.Int
	f     float64
	float bool
	raw   []byte // the element's own bytes; min, max and decimate give them back unchanged (NaN payloads included)
}

func isFloat(dt zarr.DType) bool { return dt == zarr.Float32 || dt == zarr.Float64 }

func readValue(b []byte, dt zarr.DType) refValue {
	raw := append([]byte(nil), b...)
	switch dt {
	case zarr.Float32:
		return refValue{f: float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), float: true, raw: raw}
	case zarr.Float64:
		return refValue{f: math.Float64frombits(binary.LittleEndian.Uint64(b)), float: true, raw: raw}
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	v := new(big.Int).SetUint64(u)
	switch dt {
	case zarr.Int8, zarr.Int16, zarr.Int32, zarr.Int64:
		bitsN := uint(8 * len(b))
		if u>>(bitsN-1)&1 == 1 { // negative: subtract 2^bits
			v.Sub(v, new(big.Int).Lsh(big.NewInt(1), bitsN))
		}
	}
	return refValue{i: v, raw: raw}
}

func writeValue(b []byte, dt zarr.DType, v refValue) {
	if v.raw != nil {
		copy(b, v.raw)
		return
	}
	switch dt {
	case zarr.Float32:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v.f)))
		return
	case zarr.Float64:
		binary.LittleEndian.PutUint64(b, math.Float64bits(v.f))
		return
	}
	// Two's complement of the (in-range) integer, little endian.
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*len(b)))
	u := new(big.Int).Mod(v.i, m)
	for i := range b {
		b[i] = byte(new(big.Int).Rsh(u, uint(8*i)).Uint64())
	}
}

func reduceValues(vals []refValue, m Method, dt zarr.DType) refValue {
	switch m {
	case Decimate:
		return vals[0]
	case Min, Max:
		best := vals[0]
		for _, v := range vals {
			if isFloat(dt) {
				if math.IsNaN(v.f) {
					return refValue{f: math.NaN(), float: true} // canonical NaN
				}
				if (m == Min && v.f < best.f) || (m == Max && v.f > best.f) {
					best = v
				}
				continue
			}
			if c := v.i.Cmp(best.i); (m == Min && c < 0) || (m == Max && c > 0) {
				best = v
			}
		}
		return best
	}
	n := int64(len(vals))
	if isFloat(dt) {
		sum := new(big.Rat)
		for _, v := range vals {
			if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
				// NaN and infinities: plain float arithmetic says what
				// the mean is (NaN, or the infinity).
				var s float64
				for _, w := range vals {
					s += w.f
				}
				return refValue{f: s / float64(n), float: true}
			}
			sum.Add(sum, new(big.Rat).SetFloat64(v.f))
		}
		sum.Quo(sum, new(big.Rat).SetInt64(n))
		f, _ := sum.Float64()
		return refValue{f: f, float: true}
	}
	sum := new(big.Int)
	for _, v := range vals {
		sum.Add(sum, v.i)
	}
	// Round half to even: q = floor(|s|/n), r = |s| mod n.
	neg := sum.Sign() < 0
	abs := new(big.Int).Abs(sum)
	q, r := new(big.Int).QuoRem(abs, big.NewInt(n), new(big.Int))
	twice := new(big.Int).Lsh(r, 1)
	if c := twice.Cmp(big.NewInt(n)); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return refValue{i: q}
}
