package gpu

import (
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestLayoutOrder cross-checks the chunk order the GPU stage takes from
// stage.Layout against the sorted reference in refOutput, for every test
// geometry and batch (no GPU needed).
func TestLayoutOrder(t *testing.T) {
	for _, tc := range tileCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec(zarr.Uint8, zarr.CodecNone)
			l, err := stage.NewLayout(&s)
			if err != nil {
				t.Fatal(err)
			}
			bf := tc.batchEpochs * s.Chunk[0]
			p := l.NewPlan(bf)
			for f0 := int64(0); f0 < s.Shape[0]; f0 += bf {
				b := stage.Batch{FirstEpoch: f0 / s.Chunk[0], Frames: min(bf, s.Shape[0]-f0)}
				frames := make([]byte, b.Frames*s.FrameBytes())
				_, wsegs, wchunks := refOutput(&s, b, frames)
				if err := l.Plan(b, p); err != nil {
					t.Fatal(err)
				}
				if len(p.Chunks) != len(wchunks) || len(p.Segs) != len(wsegs) {
					t.Fatalf("batch %+v: %d chunks, %d segments; want %d, %d", b, len(p.Chunks), len(p.Segs), len(wchunks), len(wsegs))
				}
				for i := range wsegs {
					g, w := p.Segs[i], wsegs[i]
					if g.Row != w.Row || g.Col != w.Col || g.First != w.First || g.N != w.N {
						t.Fatalf("batch %+v: segment %d = %+v; want %+v", b, i, g, w)
					}
				}
				for i := range wchunks {
					if p.Chunks[i].Inner != wchunks[i].Inner {
						t.Fatalf("batch %+v: chunk %d inner %d; want %d", b, i, p.Chunks[i].Inner, wchunks[i].Inner)
					}
				}
			}
		})
	}
}
