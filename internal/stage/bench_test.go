package stage_test

import (
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

func BenchmarkTile(b *testing.B) {
	for _, tc := range []struct {
		name      string
		spec      zarr.Spec
		maxChunks int64 // tile only the first maxChunks of the plan (0: all)
	}{
		{"yx64", zarr.Spec{Shape: []int64{0, 1000, 1100}, Chunk: []int64{16, 64, 64}, Shard: []int64{32, 512, 512}, DType: zarr.Uint16}, 0},
		{"x1", zarr.Spec{Shape: []int64{0, 64, 4096}, Chunk: []int64{16, 64, 1}, Shard: []int64{16, 64, 64}, DType: zarr.Uint16}, 0},
		{"smallepoch", zarr.Spec{Shape: []int64{0, 16, 16}, Chunk: []int64{32768, 1, 1}, Shard: []int64{32768, 16, 16}, DType: zarr.Uint16}, 0},
		{"fullframe", zarr.Spec{Shape: []int64{0, 512, 512}, Chunk: []int64{4, 512, 512}, Shard: []int64{8, 512, 512}, DType: zarr.Uint16}, 0},
		// The bench scenario (tzyxc, chunks one channel wide): an epoch is
		// 384 MiB, so only its first 192 chunks (48 MiB) are tiled per op.
		{"256cube", zarr.Spec{Shape: []int64{0, 256, 256, 256, 3}, Chunk: []int64{4, 32, 32, 32, 1}, Shard: []int64{64, 128, 128, 128, 3}, DType: zarr.Uint16}, 192},
	} {
		b.Run(tc.name, func(b *testing.B) {
			spec := tc.spec
			spec.Codec = zarr.CodecNone
			l, err := stage.NewLayout(&spec)
			if err != nil {
				b.Fatal(err)
			}
			frames := spec.Chunk[0]
			staging := make([]byte, frames*l.FrameBytes())
			stagetest.Camera(staging)
			plan := l.NewPlan(frames)
			if err := l.Plan(stage.Batch{Frames: frames}, plan); err != nil {
				b.Fatal(err)
			}
			dsts := make([][]byte, l.MaxGroup())
			for i := range dsts {
				dsts[i] = make([]byte, l.ChunkBytes())
			}
			n := int64(len(plan.Chunks))
			b.SetBytes(int64(len(staging)))
			if tc.maxChunks > 0 && tc.maxChunks < n {
				n = tc.maxChunks
				b.SetBytes(n * l.ChunkBytes()) // no padding in this spec
			}
			b.ReportAllocs()
			// As the stage tiles: in plan order, grouping neighbours.
			for b.Loop() {
				for k := int64(0); k < n; {
					g := l.GroupLen(plan, k, n)
					l.TileGroup(dsts[:g], staging, frames, 0, plan.Pos[k])
					k += g
				}
			}
		})
	}
}
