package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// firstMismatch returns the index of the first element of got (a level as
// stored) that differs from want (the reference reduction) by more than
// the method allows, or -1 when none does:
//   - integers, and floats reduced by min, max or decimate, exactly: each
//     output is one of the block's elements, or for min and max of a block
//     holding a NaN the canonical NaN, which the fast path and the
//     reference both write with the same bits (decimate keeps a NaN's
//     payload, min and max do not);
//   - float means within one ulp, NaN equal to any NaN: the fast path
//     sums in float64 and rounds twice for float32 where the reference
//     rounds an exact rational once, and a NaN's payload is whatever the
//     hardware's arithmetic propagates.
func firstMismatch(dt zarr.DType, m downsample.Method, got, want []byte) int {
	if bytes.Equal(got, want) {
		return -1
	}
	size := dt.Size()
	if !isFloat(dt) || m != downsample.Mean {
		for i := 0; i < len(got); i += size {
			if !bytes.Equal(got[i:i+size], want[i:i+size]) {
				return i / size
			}
		}
		return -1
	}
	for i := 0; i < len(got); i += size {
		if !withinULP(dt, got[i:i+size], want[i:i+size]) {
			return i / size
		}
	}
	return -1
}

func isFloat(dt zarr.DType) bool { return dt == zarr.Float32 || dt == zarr.Float64 }

// withinULP reports whether two float elements are equal, both NaN, or
// neighbours: the same sign and bit patterns one apart (finite values and
// infinities are ordered like their bits within one sign).
func withinULP(dt zarr.DType, a, b []byte) bool {
	var x, y float64
	var xb, yb int64
	if dt == zarr.Float32 {
		u, v := binary.LittleEndian.Uint32(a), binary.LittleEndian.Uint32(b)
		x, y = float64(math.Float32frombits(u)), float64(math.Float32frombits(v))
		xb, yb = int64(u&0x7fffffff), int64(v&0x7fffffff)
	} else {
		u, v := binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint64(b)
		x, y = math.Float64frombits(u), math.Float64frombits(v)
		xb, yb = int64(u&(1<<63-1)), int64(v&(1<<63-1))
	}
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.IsNaN(x) && math.IsNaN(y)
	case x == y: // +0 == -0 too
		return true
	case math.Signbit(x) != math.Signbit(y):
		return false
	}
	d := xb - yb
	return d == 1 || d == -1
}

// formatElem shows one element for people: the number, and a NaN's bits
// (which tell a canonical NaN from another).
func formatElem(dt zarr.DType, b []byte) string {
	switch dt {
	case zarr.Float32:
		u := binary.LittleEndian.Uint32(b)
		f := math.Float32frombits(u)
		if f != f {
			return fmt.Sprintf("NaN (bits %#08x)", u)
		}
		return strconv.FormatFloat(float64(f), 'g', -1, 32)
	case zarr.Float64:
		u := binary.LittleEndian.Uint64(b)
		f := math.Float64frombits(u)
		if f != f {
			return fmt.Sprintf("NaN (bits %#016x)", u)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	switch dt {
	case zarr.Int8, zarr.Int16, zarr.Int32, zarr.Int64:
		shift := 64 - 8*uint(len(b))
		return strconv.FormatInt(int64(u<<shift)>>shift, 10)
	}
	return strconv.FormatUint(u, 10)
}
