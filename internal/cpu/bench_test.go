package cpu

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/zwrite/zwrite/internal/codec"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// benchSpec is a camera-like stream (orca-ish frames cut down so that a
// batch fits a small machine): tyx uint16, 2 epochs of 16 frames per batch,
// chunks 16x64x64 (128 KiB), ragged in y and x.
var benchSpec = zarr.Spec{
	Shape: []int64{0, 1000, 1100},
	Chunk: []int64{16, 64, 64},
	Shard: []int64{32, 512, 512},
	DType: zarr.Uint16,
}

const benchFrames = 32

func BenchmarkStage(b *testing.B) {
	for _, codec := range zarr.Codecs {
		b.Run(codec.String(), func(b *testing.B) {
			spec := benchSpec.Clone()
			spec.Codec, spec.Level = codec, codec.DefaultLevel()
			st, err := New(stage.Config{Spec: spec})
			if err != nil {
				b.Skip(err) // a codec the CPU stage does not have yet
			}
			defer st.Close()
			sl, err := st.NewSlot(benchFrames)
			if err != nil {
				b.Fatal(err)
			}
			defer sl.Free()
			stagetest.Camera(sl.Staging())
			batch := stage.Batch{Frames: benchFrames}
			// One batch first: the encoders allocate their history on
			// first use, which is not what a running stream pays.
			if err := sl.Kick(batch); err != nil {
				b.Fatal(err)
			}
			if _, err := sl.Wait(context.Background()); err != nil {
				b.Fatal(err)
			}
			var ratio float64
			b.SetBytes(int64(len(sl.Staging())))
			b.ReportAllocs()
			for b.Loop() {
				if err := sl.Kick(batch); err != nil {
					b.Fatal(err)
				}
				out, err := sl.Wait(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				// A broken fast path must not post a number: the output
				// has every chunk, and noise does not vanish.
				if n := int64(len(out.Chunks)); n != 2*st.(*Stage).layout.ChunksPerEpoch() || len(out.Data) < len(sl.Staging())/8 {
					b.Fatalf("output: %d chunks, %d bytes from %d", n, len(out.Data), len(sl.Staging()))
				}
				ratio = float64(len(sl.Staging())) / float64(len(out.Data))
				batch.FirstEpoch += 2
			}
			b.ReportMetric(ratio, "ratio")
		})
	}
}

// BenchmarkChunkEncoder is the codec alone, on one core, on the same
// chunks as BenchmarkStage (tiled beforehand): the per-core ceiling the
// stage's workers can reach.
func BenchmarkChunkEncoder(b *testing.B) {
	for _, c := range zarr.Codecs {
		b.Run(c.String(), func(b *testing.B) {
			spec := benchSpec.Clone()
			spec.Codec, spec.Level = c, c.DefaultLevel()
			enc, err := codec.NewChunkEncoder(&spec)
			if err != nil {
				b.Skip(err)
			}
			defer enc.Close()
			l, err := stage.NewLayout(&spec)
			if err != nil {
				b.Fatal(err)
			}
			staging := make([]byte, benchFrames*l.FrameBytes())
			stagetest.Camera(staging)
			cb := l.ChunkBytes()
			n := l.Epochs(benchFrames) * l.ChunksPerEpoch()
			chunks := make([]byte, n*cb)
			for k := int64(0); k < n; k++ {
				l.Tile(chunks[k*cb:(k+1)*cb], staging, benchFrames, k/l.ChunksPerEpoch(), k%l.ChunksPerEpoch())
			}
			dst := make([]byte, 0, enc.Bound(int(cb)))
			b.SetBytes(int64(len(staging)))
			b.ReportAllocs()
			var total int
			for b.Loop() {
				total = 0
				for k := int64(0); k < n; k++ {
					out, err := enc.Encode(dst, chunks[k*cb:(k+1)*cb])
					if err != nil || len(out) == 0 {
						b.Fatal(fmt.Sprint("encode: ", err, len(out)))
					}
					total += len(out)
				}
				if total < len(staging)/8 {
					b.Fatalf("%d chunks encoded to %d bytes", n, total)
				}
			}
			b.ReportMetric(float64(len(staging))/float64(total), "ratio")
		})
	}
}

// BenchmarkScatter is WriteFrames' copy alone, on one goroutine and on
// GOMAXPROCS at once (lanes1, lanesN: one core, and a loaded socket; the
// scatter's per-core rate under load bounds the stage's end to end over
// the codec ceiling), each with its own input and staging, far beyond
// any cache: orca2's lines (2 x 2048 x 2304 uint16 frames, 64-element
// segments, 8-frame epochs, 151 MB) and medfmt's (15360-element lines,
// 256-element segments, 4-frame epochs cut to 2048 lines, 252 MB). Modes:
// plain memmove of the same bytes, the chunk-major scatter with
// non-temporal stores and the one that also byte-shuffles blosc blocks of
// 64 KiB, each at every kernel step this CPU has (sse2, avx2),
// and the scatter with plain stores.
func BenchmarkScatter(b *testing.B) {
	type lane struct{ in, buf []byte }
	for _, sc := range []struct {
		name string
		spec zarr.Spec
	}{
		{"orca2", zarr.Spec{Shape: []int64{0, 2, 2048, 2304}, Chunk: []int64{8, 1, 64, 64}, Shard: []int64{8, 2, 512, 576}, DType: zarr.Uint16}},
		{"medfmt", zarr.Spec{Shape: []int64{0, 1, 2048, 15360}, Chunk: []int64{4, 1, 128, 256}, Shard: []int64{4, 1, 2048, 3840}, DType: zarr.Uint16}},
	} {
		spec := sc.spec
		frames := spec.Chunk[0]
		var lanes []lane // made on first use, shared by the modes
		setup := func() {
			if lanes != nil {
				return
			}
			lanes = make([]lane, runtime.GOMAXPROCS(0))
			cm := newChunkMajor(&spec)
			size := cm.size(frames)
			var wg sync.WaitGroup
			for i := range lanes {
				wg.Go(func() { // 16 lanes are GBs to fill
					l := &lanes[i]
					l.in = make([]byte, frames*spec.FrameBytes())
					stagetest.Fill(l.in, 3)
					l.buf = make([]byte, size)
				})
			}
			wg.Wait()
		}
		type mode struct {
			name        string
			shuffle, nt bool
			avx2, cpy   bool
		}
		modes := []mode{{name: "memmove", cpy: true}, {name: "plain"}}
		for _, st := range kernelSteps() {
			modes = append(modes,
				mode{name: "scatter-" + st.name, nt: true, avx2: st.avx2},
				mode{name: "shuffle-" + st.name, nt: true, shuffle: true, avx2: st.avx2})
		}
		for _, m := range modes {
			for _, n := range []int{1, runtime.GOMAXPROCS(0)} {
				b.Run(fmt.Sprintf("%s/%s/lanes%d", sc.name, m.name, n), func(b *testing.B) {
					if !haveNT && m.nt {
						b.Skip("no non-temporal kernel here")
					}
					setup()
					old, old2 := noNT, useAVX2
					noNT, useAVX2 = !m.nt && !m.cpy, m.avx2
					b.Cleanup(func() { noNT, useAVX2 = old, old2 })
					cms := make([]chunkMajor, n)
					for i := range cms {
						cms[i] = newChunkMajor(&spec)
						if m.shuffle && !cms[i].preShuffle(2, 64<<10) {
							b.Skip("no shuffling kernel here")
						}
					}
					const part = 64 << 20 // the bench's writes
					write := func(i int) {
						l := &lanes[i]
						for off := 0; off < len(l.in); off += part {
							p := l.in[off:min(off+part, len(l.in))]
							if m.cpy {
								copy(l.buf[off:], p)
							} else {
								cms[i].write(l.buf, p, int64(off))
							}
						}
					}
					all := func() {
						var wg sync.WaitGroup
						for i := range n {
							wg.Go(func() { write(i) })
						}
						wg.Wait()
					}
					all() // fault the destinations in
					b.SetBytes(int64(n * len(lanes[0].in)))
					for b.Loop() {
						all()
					}
				})
			}
		}
	}
}
