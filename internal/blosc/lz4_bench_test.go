package blosc_test

import (
	"fmt"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/codec/lz4enc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// lz4Geometries are the 256 KiB uint16 chunks of the orca2 and medfmt
// scenarios, cut from a few frames of each fill.
var lz4Geometries = []struct {
	name         string
	shape, chunk []int
}{
	{"orca2", []int{32, 1, 512, 512}, []int{32, 1, 64, 64}},
	{"medfmt", []int{4, 1, 768, 1024}, []int{4, 1, 128, 256}},
}

var lz4Fills = []bench.Fill{bench.FillThirds, bench.FillCamera, bench.FillRand, bench.FillZeros}

// lz4Chunks is the fill's chunks for one geometry.
func lz4Chunks(b testing.TB, f bench.Fill, shape, chunk []int) [][]byte {
	b.Helper()
	spec := zarr.Spec{DType: zarr.Uint16, Codec: zarr.CodecNone}
	for i := range shape {
		spec.Shape = append(spec.Shape, int64(shape[i]))
		spec.Chunk = append(spec.Chunk, int64(chunk[i]))
	}
	spec.Shard = spec.Chunk
	n := 2
	for _, s := range shape {
		n *= s
	}
	arr := make([]byte, n)
	if err := bench.FillFrames(f, &spec, 0, arr); err != nil {
		b.Fatal(err)
	}
	return codectest.Chunks(arr, shape, chunk, 2)
}

// BenchmarkLZ4Parts splits the CPU's blosc-lz4 chunk cost (clevel 1, byte
// shuffle, uint16, 64 KiB blocks in two 32 KiB streams) into the shuffle
// and the LZ4 streams, against the whole Encode: MB/s are of chunk input.
// lz4 variants: "ours" is internal/codec/lz4enc (what Encode runs),
// "ccompat" pierrec's LZ4_compress_fast port reused (what Encode ran
// before; the same bytes), "ccompat-new" the same with a new compressor
// per stream, "fast" pierrec's own Compressor reused (another parse,
// other bytes), "fast-new" its CompressBlock (pierrec's default).
func BenchmarkLZ4Parts(b *testing.B) {
	for _, g := range lz4Geometries {
		for _, f := range lz4Fills {
			chunks := lz4Chunks(b, f, g.shape, g.chunk)
			size := int64(len(chunks[0]))
			o := blosc.Options{TypeSize: 2, CLevel: 1}
			bs, _ := blosc.Geometry(o, len(chunks[0]))
			// The shuffled streams of every chunk, for the lz4-only runs.
			var streams [][]byte
			for _, c := range chunks {
				for off := 0; off < len(c); off += bs {
					sh := make([]byte, bs)
					blosc.ShuffleBlock(sh, c[off:off+bs], 2)
					streams = append(streams, sh[:bs/2], sh[bs/2:])
				}
			}
			perChunk := len(streams) / len(chunks)
			pre := fmt.Sprintf("%s/%v/", g.name, f)
			b.Run(pre+"encode", func(b *testing.B) {
				var e blosc.Encoder
				dst := make([]byte, 0, blosc.MaxEncodedSize(int(size)))
				var in, out int64
				b.SetBytes(size)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					dst = e.Encode(dst[:0], chunks[i%len(chunks)], o)
					if len(dst) < blosc.HeaderSize {
						b.Fatal("short")
					}
					in += size
					out += int64(len(dst))
					i++
				}
				b.ReportMetric(float64(in)/float64(out), "ratio")
			})
			b.Run(pre+"shuffle", func(b *testing.B) {
				tmp := make([]byte, bs)
				b.SetBytes(size)
				i := 0
				for b.Loop() {
					c := chunks[i%len(chunks)]
					for off := 0; off < len(c); off += bs {
						blosc.ShuffleBlock(tmp, c[off:off+bs], 2)
					}
					i++
				}
			})
			var ours lz4enc.Compressor
			var cc lz4.CompressorCCompat
			cc.Acceleration = 9
			var fc lz4.Compressor
			lzs := []struct {
				name string
				f    func(src, dst []byte) (int, error)
			}{
				{"ours", func(src, dst []byte) (int, error) { return ours.CompressBlock(src, dst, 9), nil }},
				{"ccompat", cc.CompressBlock},
				{"ccompat-new", func(src, dst []byte) (int, error) {
					c := lz4.CompressorCCompat{Acceleration: 9}
					return c.CompressBlock(src, dst)
				}},
				{"fast", fc.CompressBlock},
				{"fast-new", func(src, dst []byte) (int, error) { return lz4.CompressBlock(src, dst, nil) }},
			}
			for _, lc := range lzs {
				b.Run(pre+"lz4-"+lc.name, func(b *testing.B) {
					dst := make([]byte, lz4.CompressBlockBound(bs))
					var in, out int64
					b.SetBytes(size)
					i := 0
					for b.Loop() {
						for _, s := range streams[(i%len(chunks))*perChunk : (i%len(chunks)+1)*perChunk] {
							n, err := lc.f(s, dst)
							if err != nil || n == 0 {
								b.Fatal(n, err)
							}
							in += int64(len(s))
							out += int64(min(n, len(s)))
						}
						i++
					}
					b.ReportMetric(float64(in)/float64(out), "ratio")
				})
			}
		}
	}
}
