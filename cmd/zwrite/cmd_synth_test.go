package main

import (
	"context"
	"testing"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestSynthFills: synth writes exactly the bench's fill for every fill and
// dtype, in whole frames (the peer benchmark takes the camera fill from a
// synth file, so these must be the bytes zwrite bench writes).
func TestSynthFills(t *testing.T) {
	for _, f := range bench.Fills {
		for _, dt := range []zarr.DType{zarr.Uint8, zarr.Int16, zarr.Uint16, zarr.Float32} {
			t.Run(f.String()+"/"+dt.String(), func(t *testing.T) {
				spec := zarr.Spec{Shape: []int64{7, 2, 33, 40}, DType: dt}
				code, out, stderr := zw(t, context.Background(), nil, "synth", "--shape", "7,2,33,40", "--dtype", dt.String(), "--fill", f.String())
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				want := make([]byte, 7*spec.FrameBytes())
				if err := bench.FillFrames(f, &spec, 0, want); err != nil {
					t.Fatal(err)
				}
				if out != string(want) {
					t.Fatalf("synth wrote %d bytes that differ from the %d bytes of bench.FillFrames", len(out), len(want))
				}
			})
		}
	}
}
