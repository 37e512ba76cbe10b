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

// TestFastDivisor checks the tile kernel's division by multiplication on
// the host, for every divisor up to 4096, edge values and random n < 2^31.
func TestFastDivisor(t *testing.T) {
	div := func(n, mul, shr uint32) uint32 {
		if mul == 0 {
			return n
		}
		return uint32((uint64(n)*uint64(mul))>>32) >> shr
	}
	ns := []uint32{0, 1, 2, 3, 63, 64, 65, 1<<31 - 1, 1<<31 - 2, 1 << 30, 123456789}
	for i := uint32(0); i < 2000; i++ {
		ns = append(ns, (i*2654435761)&(1<<31-1))
	}
	divisors := []uint32{1<<31 - 1, 1 << 30, 1<<30 + 1, 3 << 20, 1000003}
	for d := uint32(1); d <= 4096; d++ {
		divisors = append(divisors, d)
	}
	for _, d := range divisors {
		mul, shr := fastDivisor(d)
		for _, n := range append(ns, d-1, d, d+1, 2*d-1, (1<<31-1)/d*d, (1<<31-1)/d*d-1) {
			if n >= 1<<31 {
				continue
			}
			if got := div(n, mul, shr); got != n/d {
				t.Fatalf("fastDivisor(%d) = %d, %d: %d/%d gives %d; want %d", d, mul, shr, n, d, got, n/d)
			}
		}
	}
}
