package zarr_test

import (
	"fmt"
	"testing"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestImageMethodsMatchDownsample: every method internal/downsample has is
// one BuildImage records, under the same name, and BuildImage's limit on
// the level count follows downsample.OutShape (levels stop where a level
// would equal the one above).
func TestImageMethodsMatchDownsample(t *testing.T) {
	axes := zarr.DefaultAxes([]string{"t", "y", "x"})
	for _, m := range downsample.Methods {
		img, err := zarr.BuildImage(zarr.ImageOptions{Axes: axes, Levels: 2, Method: m.String()})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		ms := img.Multiscales[0]
		if ms.Type != m.String() || ms.Downsampling.Method != m.String() {
			t.Errorf("%s recorded as type %q, method %q", m, ms.Type, ms.Downsampling.Method)
		}
		if back, err := downsample.ParseMethod(ms.Type); err != nil || back != m {
			t.Errorf("type %q parses back as %v, %v", ms.Type, back, err)
		}
	}
	if _, err := zarr.BuildImage(zarr.ImageOptions{Axes: axes, Levels: 2, Method: "median"}); err == nil {
		t.Error("a method downsample does not have was accepted")
	}

	for _, tc := range []struct {
		shape  []int64
		reduce []bool
	}{
		{[]int64{9, 1000, 3}, []bool{false, true, true}},
		{[]int64{9, 1000, 3}, []bool{true, false, true}},
		{[]int64{1, 2, 2}, []bool{true, true, true}},
		{[]int64{4, 17, 1}, []bool{false, false, true}},
	} {
		t.Run(fmt.Sprint(tc.shape, tc.reduce), func(t *testing.T) {
			// distinct level shapes, by downsample's own rule
			want := 1
			for cur := tc.shape; ; want++ {
				next := downsample.OutShape(cur, tc.reduce)
				if fmt.Sprint(next) == fmt.Sprint(cur) {
					break
				}
				cur = next
			}
			for levels := 1; levels <= want+1; levels++ {
				_, err := zarr.BuildImage(zarr.ImageOptions{Axes: axes, Shape: tc.shape, Levels: levels, Reduce: tc.reduce})
				if (err == nil) != (levels <= want) {
					t.Fatalf("%d levels: err = %v; downsample gives %d distinct levels", levels, err, want)
				}
			}
		})
	}
}
