package stage

import (
	"context"
	"fmt"
	"testing"

	"github.com/zwrite/zwrite/internal/codec"
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

// fillCamera writes a smooth gradient with 4 bits of noise, like a camera
// looking at a dim, even scene (zstd ratio about 2 without shuffle).
func fillCamera(buf []byte) {
	x := uint32(1)
	for i := 0; i+1 < len(buf); i += 2 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v := uint16(1000+(i/2)%1100) + uint16(x&15)
		buf[i], buf[i+1] = byte(v), byte(v>>8)
	}
}

func BenchmarkTile(b *testing.B) {
	for _, tc := range []struct {
		name      string
		spec      zarr.Spec
		maxChunks int64 // tile only the first maxChunks of the plan (0: all)
	}{
		{"yx64", benchSpec, 0},
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
			l, err := NewLayout(&spec)
			if err != nil {
				b.Fatal(err)
			}
			frames := spec.Chunk[0]
			staging := make([]byte, frames*l.FrameBytes())
			fillCamera(staging)
			plan := l.NewPlan(frames)
			if err := l.Plan(Batch{Frames: frames}, plan); err != nil {
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
					g := l.groupLen(plan, k, n)
					l.tileGroup(dsts[:g], staging, frames, 0, plan.Pos[k])
					k += g
				}
			}
		})
	}
}

func BenchmarkStage(b *testing.B) {
	for _, codec := range zarr.Codecs {
		b.Run(codec.String(), func(b *testing.B) {
			spec := benchSpec.Clone()
			spec.Codec, spec.Level = codec, codec.DefaultLevel()
			st, err := NewCPU(Config{Spec: spec})
			if err != nil {
				b.Skip(err) // a codec the CPU stage does not have yet
			}
			defer st.Close()
			sl, err := st.NewSlot(benchFrames)
			if err != nil {
				b.Fatal(err)
			}
			defer sl.Free()
			fillCamera(sl.Staging())
			batch := Batch{Frames: benchFrames}
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
				if n := int64(len(out.Chunks)); n != 2*st.(*CPU).layout.ChunksPerEpoch() || len(out.Data) < len(sl.Staging())/8 {
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
			l, err := NewLayout(&spec)
			if err != nil {
				b.Fatal(err)
			}
			staging := make([]byte, benchFrames*l.FrameBytes())
			fillCamera(staging)
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
