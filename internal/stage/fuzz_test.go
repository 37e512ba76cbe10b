package stage_test

import (
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// FuzzTile checks tiling (single and grouped, in plan order) against the
// element-by-element reference for geometries drawn from the input: ranks
// 1..8, every dtype, ragged shapes, chunks equal to the shape or not, and
// partial epochs.
func FuzzTile(f *testing.F) {
	f.Add([]byte{3, 1, 7, 3, 9, 4, 5, 2, 4})
	f.Add([]byte{8, 0, 3, 2, 2, 1, 2, 2, 2, 1, 3, 3, 2, 1, 2, 2, 2, 2, 1})
	f.Add([]byte{6, 9, 5, 5, 3, 1, 2, 2, 4, 4, 1, 1, 2, 2})
	f.Add([]byte{1, 4, 9, 4})
	f.Add([]byte{2, 1, 33, 1, 16, 16, 7})
	f.Add([]byte{2, 1, 3, 1, 0, 6, 4, 0, 1, 0, 1, 4}) // uint16 zyx, x = 2 channels: deinterleaveRuns
	f.Fuzz(func(t *testing.T, in []byte) {
		next := func(lo, hi int) int64 { // a value in [lo, hi], cycling over in
			if len(in) == 0 {
				return int64(lo)
			}
			v := int(in[0])
			in = in[1:]
			return int64(lo + v%(hi-lo+1))
		}
		rank := int(next(1, zarr.MaxRank))
		spec := zarr.Spec{DType: zarr.DTypes[next(0, len(zarr.DTypes)-1)], Codec: zarr.CodecNone}
		elems := int64(1)
		for d := 0; d < rank; d++ {
			shape := next(1, 9)
			if rank > 4 {
				shape = next(1, 4) // keep the frame small at high ranks
			}
			chunk := next(1, int(shape))
			spec.Shape = append(spec.Shape, shape)
			spec.Chunk = append(spec.Chunk, chunk)
			spec.Shard = append(spec.Shard, chunk*next(1, 2))
			elems *= shape
		}
		spec.Shape[0] = 0 // growing: the batch decides how many frames
		l, err := stage.NewLayout(&spec)
		if err != nil {
			t.Skip(err)
		}
		frames := next(1, 3*int(spec.Chunk[0]))
		staging := make([]byte, frames*l.FrameBytes())
		for i := range staging {
			staging[i] = byte(i*7 + i/5)
		}
		plan := l.NewPlan(frames)
		if err := l.Plan(stage.Batch{FirstEpoch: next(0, 3), Frames: frames}, plan); err != nil {
			t.Fatal(err)
		}
		checkGrouped(t, l, &spec, plan, staging, frames)
	})
}
