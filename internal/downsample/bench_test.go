package downsample

import (
	"math/rand/v2"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// BenchmarkFrames: one core reducing camera-sized uint16 frames (2048x2048,
// y and x halved), the work of one pyramid level on the CPU backend.
func BenchmarkFrames(b *testing.B) {
	for _, m := range Methods {
		b.Run(m.String(), func(b *testing.B) {
			shape := []int64{4, 2048, 2048}
			p, _ := NewPlan(shape, []bool{false, true, true}, zarr.Uint16, m)
			src := make([]byte, elems(shape)*2)
			fillRandom(src, zarr.Uint16, rand.New(rand.NewPCG(1, 1)), false)
			dst := make([]byte, elems(p.Out)*2)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				p.Frames(dst, src, 0, p.Out[0])
			}
		})
	}
}
