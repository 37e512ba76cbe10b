package verify

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

func f32(v float32) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)) }
func b32(u uint32) []byte  { return binary.LittleEndian.AppendUint32(nil, u) }
func f64(v float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)) }

func TestWithinULP(t *testing.T) {
	one := float32(1)
	tests := []struct {
		name string
		dt   zarr.DType
		a, b []byte
		want bool
	}{
		{"equal", zarr.Float32, f32(1.5), f32(1.5), true},
		{"one ulp up", zarr.Float32, f32(one), f32(math.Nextafter32(one, 2)), true},
		{"one ulp down", zarr.Float32, f32(math.Nextafter32(one, 0)), f32(one), true},
		{"two ulps", zarr.Float32, f32(one), f32(math.Nextafter32(math.Nextafter32(one, 2), 2)), false},
		{"negative neighbours", zarr.Float32, f32(-one), f32(math.Nextafter32(-one, -2)), true},
		{"opposite signs", zarr.Float32, f32(one), f32(-one), false},
		{"zeros of both signs", zarr.Float32, f32(0), b32(0x80000000), true},
		{"tiny across zero", zarr.Float32, b32(1), b32(0x80000000), false},
		{"max and infinity", zarr.Float32, f32(math.MaxFloat32), f32(float32(math.Inf(1))), true},
		{"NaNs of any bits", zarr.Float32, b32(0x7fc00000), b32(0xffc00123), true},
		{"NaN and a number", zarr.Float32, b32(0x7fc00000), f32(1), false},
		{"number and NaN", zarr.Float32, f32(1), b32(0x7fc00000), false},
		{"float64 one ulp", zarr.Float64, f64(1), f64(math.Nextafter(1, 2)), true},
		{"float64 two ulps", zarr.Float64, f64(1), f64(math.Nextafter(math.Nextafter(1, 2), 2)), false},
		{"float64 opposite signs", zarr.Float64, f64(2), f64(-2), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := withinULP(tc.dt, tc.a, tc.b); got != tc.want {
				t.Errorf("withinULP(%x, %x) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestFirstMismatch(t *testing.T) {
	join := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	up := f32(math.Nextafter32(3, 4))
	tests := []struct {
		name      string
		dt        zarr.DType
		m         downsample.Method
		got, want []byte
		at        int
	}{
		{"equal ints", zarr.Uint16, downsample.Mean, []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4}, -1},
		{"int off by one", zarr.Uint16, downsample.Mean, []byte{1, 2, 4, 4}, []byte{1, 2, 3, 4}, 1},
		{"int high byte", zarr.Int32, downsample.Max, []byte{0, 0, 0, 0, 1, 0, 0, 0x80}, []byte{0, 0, 0, 0, 1, 0, 0, 0}, 1},
		{"float mean one ulp", zarr.Float32, downsample.Mean, join(f32(1), up), join(f32(1), f32(3)), -1},
		{"float min one ulp", zarr.Float32, downsample.Min, join(f32(1), up), join(f32(1), f32(3)), 1},
		{"float decimate one ulp", zarr.Float32, downsample.Decimate, join(up, f32(1)), join(f32(3), f32(1)), 0},
		{"float mean NaN bits", zarr.Float32, downsample.Mean, join(f32(1), b32(0x7fc00001)), join(f32(1), b32(0x7fc00000)), -1},
		{"float max NaN bits", zarr.Float32, downsample.Max, join(f32(1), b32(0x7fc00001)), join(f32(1), b32(0x7fc00000)), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstMismatch(tc.dt, tc.m, tc.got, tc.want); got != tc.at {
				t.Errorf("firstMismatch = %d, want %d", got, tc.at)
			}
		})
	}
}

func TestFormatElem(t *testing.T) {
	tests := []struct {
		dt   zarr.DType
		b    []byte
		want string
	}{
		{zarr.Uint8, []byte{200}, "200"},
		{zarr.Int8, []byte{200}, "-56"},
		{zarr.Int16, []byte{0xfe, 0xff}, "-2"},
		{zarr.Uint64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "18446744073709551615"},
		{zarr.Int64, []byte{0, 0, 0, 0, 0, 0, 0, 0x80}, "-9223372036854775808"},
		{zarr.Float32, f32(0.5), "0.5"},
		{zarr.Float32, b32(0x7fc00000), "NaN (bits 0x7fc00000)"},
		{zarr.Float64, f64(-1e300), "-1e+300"},
	}
	for _, tc := range tests {
		if got := formatElem(tc.dt, tc.b); got != tc.want {
			t.Errorf("formatElem(%v, %x) = %q, want %q", tc.dt, tc.b, got, tc.want)
		}
	}
}
