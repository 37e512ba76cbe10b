//go:build linux

package blosc_test

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/codec/lz4enc"
)

// TestMeasureLZ4 prints single-core speed (MB/s of chunk input per second
// of thread CPU time, the best of nine passes, candidates taking turns so
// that other load hits them alike) and ratio of the blosc-lz4 parts for
// the orca2 and medfmt chunks of every fill: the shuffle (AVX2 and SSE2
// kernels), each LZ4 compressor over the shuffled streams (acceleration
// 9, clevel 1), and the whole Encode. It runs only when
// ZWRITE_MEASURE_LZ4 is set: a measurement, not a test.
func TestMeasureLZ4(t *testing.T) {
	if os.Getenv("ZWRITE_MEASURE_LZ4") == "" {
		t.Skip("set ZWRITE_MEASURE_LZ4=1 to measure")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const accel = 9
	for _, g := range lz4Geometries {
		for _, f := range lz4Fills {
			chunks := lz4Chunks(t, f, g.shape, g.chunk)
			o := blosc.Options{TypeSize: 2, CLevel: 1}
			bs, _ := blosc.Geometry(o, len(chunks[0]))
			var streams [][]byte
			in := 0
			for _, c := range chunks {
				in += len(c)
				for off := 0; off < len(c); off += bs {
					sh := make([]byte, bs)
					blosc.ShuffleBlock(sh, c[off:off+bs], 2)
					streams = append(streams, sh[:bs/2], sh[bs/2:])
				}
			}
			tmp := make([]byte, bs)
			dst := make([]byte, blosc.MaxEncodedSize(len(chunks[0])))
			var ours lz4enc.Compressor
			cc := lz4.CompressorCCompat{Acceleration: accel}
			var enc blosc.Encoder
			shuffle := func(noAVX2 bool) func() int {
				return func() int {
					old := *blosc.NoAVX2
					*blosc.NoAVX2 = noAVX2 || old
					defer func() { *blosc.NoAVX2 = old }()
					for _, c := range chunks {
						for off := 0; off < len(c); off += bs {
							blosc.ShuffleBlock(tmp, c[off:off+bs], 2)
						}
					}
					return in
				}
			}
			// streamsOut compresses every stream with lz and returns the
			// bytes blosc would store (a stream that does not shrink is
			// stored raw).
			streamsOut := func(lz func(s, d []byte) int) func() int {
				return func() int {
					out := 0
					for _, s := range streams {
						n := lz(s, dst[:len(s)])
						if n == 0 || n >= len(s) {
							n = len(s)
						}
						out += n + 4
					}
					return out
				}
			}
			cands := []struct {
				name string
				run  func() int // returns the output bytes
			}{
				{"shuffle-avx2", shuffle(false)},
				{"shuffle-sse2", shuffle(true)},
				{"lz4-pierrec-default", streamsOut(func(s, d []byte) int { n, _ := lz4.CompressBlock(s, d, nil); return n })},
				{"lz4-pierrec-ccompat-new", streamsOut(func(s, d []byte) int {
					c := lz4.CompressorCCompat{Acceleration: accel}
					n, _ := c.CompressBlock(s, d)
					return n
				})},
				{"lz4-pierrec-ccompat-reused", streamsOut(func(s, d []byte) int { n, _ := cc.CompressBlock(s, d); return n })},
				{"lz4-ours", streamsOut(func(s, d []byte) int { return ours.CompressBlock(s, d, accel) })},
				{"encode", func() int {
					out := 0
					for _, c := range chunks {
						out += len(enc.Encode(dst[:0], c, o))
					}
					return out
				}},
			}
			best := make([]float64, len(cands))
			outs := make([]int, len(cands))
			for i := range best {
				best[i] = math.Inf(1)
			}
			for range 9 {
				for i, c := range cands {
					t0 := codectest.ThreadClock()
					outs[i] = c.run()
					best[i] = min(best[i], codectest.ThreadClock()-t0)
				}
			}
			for i, c := range cands {
				ratio := ""
				if outs[i] != in {
					ratio = fmt.Sprintf("ratio %.3f", float64(in)/float64(outs[i]))
				}
				t.Logf("%-6s %-6v %-27s %6.0f MB/s %s", g.name, f, c.name, float64(in)/best[i]/1e6, ratio)
			}
		}
	}
}
