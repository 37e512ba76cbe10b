package gpu

import (
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestLayoutOrder checks layout.build's chunk order against the sorted
// reference in refOutput for every test geometry and batch (no GPU needed).
func TestLayoutOrder(t *testing.T) {
	for _, tc := range tileCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec(zarr.Uint8, zarr.CodecNone)
			l := newLayout(&s)
			bf := tc.batchEpochs * s.Chunk[0]
			maxChunks := l.epochs(bf) * l.perEpoch
			table := make([]uint32, 2*maxChunks)
			segs := make([]stage.Segment, 0, l.maxSegments(l.epochs(bf)))
			chunks := make([]stage.Chunk, 0, maxChunks)
			for f0 := int64(0); f0 < s.Shape[0]; f0 += bf {
				b := stage.Batch{FirstEpoch: f0 / s.Chunk[0], Frames: min(bf, s.Shape[0]-f0)}
				frames := make([]byte, b.Frames*s.FrameBytes())
				_, wsegs, wchunks := refOutput(&s, b, frames)
				n, gsegs, gchunks, err := l.build(b, table, segs, chunks)
				if err != nil {
					t.Fatal(err)
				}
				if n != len(wchunks) || len(gsegs) != len(wsegs) {
					t.Fatalf("batch %+v: %d chunks, %d segments; want %d, %d", b, n, len(gsegs), len(wchunks), len(wsegs))
				}
				for i := range wsegs {
					g, w := gsegs[i], wsegs[i]
					if g.Row != w.Row || g.Col != w.Col || g.First != w.First || g.N != w.N {
						t.Fatalf("batch %+v: segment %d = %+v; want %+v", b, i, g, w)
					}
				}
				for i := range wchunks {
					if gchunks[i].Inner != wchunks[i].Inner {
						t.Fatalf("batch %+v: chunk %d inner %d; want %d", b, i, gchunks[i].Inner, wchunks[i].Inner)
					}
				}
				if cap(gsegs) != cap(segs) || cap(gchunks) != cap(chunks) {
					t.Fatalf("build grew its buffers (segments %d→%d, chunks %d→%d)", cap(segs), cap(gsegs), cap(chunks), cap(gchunks))
				}
			}
		})
	}
}
