package cpu

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// splitEverything makes WriteFrames split every write it can (parts of one
// line, from writes of one byte up) until the test ends, so that the
// helpers' path runs on the suite's small geometries.
func splitEverything(t *testing.T) {
	oldMin, oldPart := scatterMin, scatterPart
	scatterMin, scatterPart = 1, 1
	t.Cleanup(func() { scatterMin, scatterPart = oldMin, oldPart })
}

// TestConformanceSplit is the conformance suite with every write split
// over the workers.
func TestConformanceSplit(t *testing.T) {
	splitEverything(t)
	stagetest.Run(t, New)
}

// scatterSpecs have lines whose segments the non-temporal kernel takes
// (whole multiples of 16 bytes, 64 and up), with and without a ragged last
// segment, lines that are the whole frame, and a line dim above the last.
var scatterSpecs = []zarr.Spec{
	{Shape: []int64{0, 2, 20, 100}, Chunk: []int64{3, 1, 8, 32}, Shard: []int64{3, 1, 8, 32}, DType: zarr.Uint16}, // 64 B segments, ragged
	{Shape: []int64{0, 9, 256}, Chunk: []int64{2, 4, 64}, Shard: []int64{2, 4, 64}, DType: zarr.Uint8},            // 64 B, even
	{Shape: []int64{0, 7, 150}, Chunk: []int64{4, 3, 40}, Shard: []int64{4, 3, 40}, DType: zarr.Uint32},           // 160 B (2.5 blocks)
	{Shape: []int64{0, 300}, Chunk: []int64{5, 48}, Shard: []int64{5, 48}, DType: zarr.Uint16},                    // rank 2: one line a frame
	{Shape: []int64{0, 3, 5, 64}, Chunk: []int64{2, 1, 2, 64}, Shard: []int64{2, 1, 2, 64}, DType: zarr.Float64},  // lines along dim 2 (x whole)
	{Shape: []int64{0, 6, 10}, Chunk: []int64{2, 4, 5}, Shard: []int64{2, 4, 5}, DType: zarr.Uint16},              // 10 B segments: no kernel
}

// TestScatterMatchesTile: the chunk-major input WriteFrames builds holds,
// chunk by chunk, what the reference tiler makes of the frame-order bytes,
// with and without the non-temporal kernel, into aligned and unaligned
// buffers, for writes cut at random points.
func TestScatterMatchesTile(t *testing.T) {
	for _, spec := range scatterSpecs {
		for _, nt := range []bool{true, false} {
			for _, shift := range []int{0, 8} {
				t.Run(fmt.Sprintf("%v/%v/nt %v/shift %d", spec.Shape, spec.DType, nt, shift), func(t *testing.T) {
					testScatter(t, spec, nt, shift)
				})
			}
		}
	}
}

func testScatter(t *testing.T, spec zarr.Spec, nt bool, shift int) {
	old := noNT
	noNT = !nt
	t.Cleanup(func() { noNT = old })
	spec.Codec, spec.Level = zarr.CodecNone, 0
	cm := newChunkMajor(&spec)
	if haveNT && len(spec.Shape) >= 2 && cm.segBytes%16 == 0 && cm.segBytes >= 64 && !cm.nt {
		t.Fatalf("segments of %d bytes do not take the kernel", cm.segBytes)
	}
	frames := 2*spec.Chunk[0] + 1 // a partial last epoch
	in := make([]byte, frames*spec.FrameBytes())
	stagetest.Fill(in, 7)
	buf := make([]byte, cm.size(frames)+int64(shift))[shift:]
	rng := rand.New(rand.NewPCG(uint64(shift), uint64(len(in))))
	for off := 0; off < len(in); {
		k := min(len(in)-off, 1+rng.IntN(3*int(cm.lineBytes)+7))
		cm.write(buf, in[off:off+k], int64(off))
		off += k
	}
	e, perEpoch := spec.Chunk[0], spec.ChunksPerEpoch()
	for ep := int64(0); ep*e < frames; ep++ {
		nf := min(e, frames-ep*e)
		for pos := int64(0); pos < perEpoch; pos++ {
			o := cm.at(ep, pos)
			want := stagetest.NaiveTile(&spec, in, frames, ep, pos)
			// Frames past a partial epoch are Kick's to clear.
			n := nf * cm.dstStride[0]
			if got := buf[o : o+n]; !bytes.Equal(got, want[:n]) {
				t.Fatalf("epoch %d position %d differs", ep, pos)
			}
		}
	}
}

// TestSplitNoAllocs: a split write allocates nothing (the jobs come from
// the stage's pool), nor does the batch it fills.
func TestSplitNoAllocs(t *testing.T) {
	splitEverything(t)
	spec := zarr.Spec{Shape: []int64{0, 50, 160}, Chunk: []int64{4, 32, 64}, Shard: []int64{8, 64, 128}, DType: zarr.Uint16, Codec: zarr.CodecLZ4, Level: 1}
	testNoAllocs(t, spec, true)
}

// TestSplitConcurrentWriters: more concurrent writes than the job pool
// holds (the rest scatter alone) still build the same batch as one
// serial write.
func TestSplitConcurrentWriters(t *testing.T) {
	splitEverything(t)
	spec := zarr.Spec{Shape: []int64{0, 40, 96}, Chunk: []int64{4, 16, 32}, Shard: []int64{8, 32, 96}, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1}
	st := stagetest.Open(t, New, stage.Config{Spec: spec, Workers: 3})
	const frames = 24
	in := make([]byte, frames*spec.FrameBytes())
	stagetest.Fill(in, 3)
	run := func(write func(fw stage.FrameWriter)) []byte {
		sl := stagetest.NewSlot(t, st, frames)
		write(sl.(stage.FrameWriter))
		if err := sl.Kick(stage.Batch{Frames: frames}); err != nil {
			t.Fatal(err)
		}
		out, err := sl.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		stagetest.CheckOutput(t, &spec, stage.Batch{Frames: frames}, out, in)
		return bytes.Clone(out.Data)
	}
	want := run(func(fw stage.FrameWriter) { fw.WriteFrames(in, 0) })
	got := run(func(fw stage.FrameWriter) {
		done := make(chan struct{})
		const writers = 3 * maxJobs
		per := (len(in) + writers - 1) / writers
		n := 0
		for off := 0; off < len(in); off += per {
			n++
			go func() {
				defer func() { done <- struct{}{} }()
				fw.WriteFrames(in[off:min(off+per, len(in))], int64(off))
			}()
		}
		for ; n > 0; n-- {
			<-done
		}
	})
	if !bytes.Equal(got, want) {
		t.Fatal("concurrent split writes compress to other bytes than one write")
	}
}

// TestCommitParallel: with many chunks of very different sizes (noise,
// zeros, ramps; incompressible ones grow past their input) and several
// workers moving runs at once, the output decodes to the input and is the
// same bytes as one worker's.
func TestCommitParallel(t *testing.T) {
	for _, tc := range []struct {
		codec zarr.Codec
		slow  bool // moves slowed down, so that several run at once
	}{{zarr.CodecLZ4, false}, {zarr.CodecZstd, false}, {zarr.CodecLZ4, true}, {zarr.CodecZstd, true}} {
		codec := tc.codec
		t.Run(fmt.Sprintf("%v/slow %v", codec, tc.slow), func(t *testing.T) {
			if tc.slow {
				moveHook = func() { time.Sleep(300 * time.Microsecond) }
				t.Cleanup(func() { moveHook = nil })
			}
			// Chunks of 256 KiB: the workers claim one at a time.
			spec := zarr.Spec{Shape: []int64{0, 256, 512}, Chunk: []int64{4, 64, 512}, Shard: []int64{8, 128, 512}, DType: zarr.Uint16, Codec: codec, Level: 1}
			const frames = 64
			in := make([]byte, frames*spec.FrameBytes())
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < len(in); i += 2 {
				e := i / 2
				y, f := e/512%256, e/(256*512)
				switch (y/64*7 + f/4*3) % 4 {
				case 0: // noise: incompressible
					in[i], in[i+1] = byte(rng.Uint32()), byte(rng.Uint32())
				case 1: // zeros
				default: // ramp
					in[i], in[i+1] = byte(i/2), byte(i/2>>8)
				}
			}
			sameAcrossWorkers(t, spec, in, frames, []int{1, 4, 3}, 3, 16)
		})
	}
}

// TestCommitManySmallChunks: batches of hundreds of 256-byte chunks that
// are noise, zeros or ramps in runs (sizes from a few bytes to past the
// input), moves slowed at random so that many runs are in flight and the
// ring of runs fills: the output decodes and is the same bytes whatever
// the worker count, batch after batch in one slot.
func TestCommitManySmallChunks(t *testing.T) {
	for _, codec := range []zarr.Codec{zarr.CodecLZ4, zarr.CodecZstd, zarr.CodecBloscZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			var cnt atomic.Int64
			moveHook = func() {
				if n := cnt.Add(1); n%3 == 0 {
					time.Sleep(time.Duration(n*37%200) * time.Microsecond)
				}
			}
			t.Cleanup(func() { moveHook = nil })
			spec := zarr.Spec{Shape: []int64{0, 64, 96}, Chunk: []int64{1, 8, 16}, Shard: []int64{2, 64, 96}, DType: zarr.Uint16, Codec: codec, Level: 1}
			const frames = 24
			in := make([]byte, frames*spec.FrameBytes())
			rng := rand.New(rand.NewPCG(1, 9))
			for i := 0; i < len(in); i += 256 {
				k := rng.IntN(4)
				for j := i; j < min(i+256, len(in)); j++ {
					switch k {
					case 0:
						in[j] = byte(rng.Uint32())
					case 1:
						in[j] = 0
					default:
						in[j] = byte(j / 7)
					}
				}
			}
			sameAcrossWorkers(t, spec, in, frames, []int{1, 3, 8}, 2, frames)
		})
	}
}

// sameAcrossWorkers writes in (frames frames) through one slot of a CPU
// stage per worker count, rounds batches each, epochStep epochs apart;
// every output must decode to in and be the first run's bytes.
func sameAcrossWorkers(t *testing.T, spec zarr.Spec, in []byte, frames int64, workerCounts []int, rounds int, epochStep int64) {
	t.Helper()
	var ref []byte
	for _, workers := range workerCounts {
		st := stagetest.Open(t, New, stage.Config{Spec: spec, Workers: workers})
		sl := stagetest.NewSlot(t, st, frames)
		for round := range rounds {
			sl.(stage.FrameWriter).WriteFrames(in, 0)
			b := stage.Batch{FirstEpoch: int64(round) * epochStep, Frames: frames}
			if err := sl.Kick(b); err != nil {
				t.Fatal(err)
			}
			out, err := sl.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			stagetest.CheckOutput(t, &spec, b, out, in)
			if ref == nil {
				ref = bytes.Clone(out.Data)
			} else if !bytes.Equal(out.Data, ref) {
				t.Fatalf("%d workers, round %d: other bytes than one worker's", workers, round)
			}
		}
	}
}

// TestScatterShuffled: in the byte-shuffled layout (blosc blocks of bs
// bytes, typesize 2) the scatter leaves every chunk as blosc's shuffle of
// the reference tile, block by block, with and without the kernel, for
// writes cut at random points (odd bytes included); clearTail zeroes the
// frames past a partial epoch and carry moves a partial epoch, both in
// that layout.
func TestScatterShuffled(t *testing.T) {
	if !haveNT {
		t.Skip("no kernel: the layout stays plain")
	}
	specs := []zarr.Spec{
		{Shape: []int64{0, 2, 20, 100}, Chunk: []int64{3, 1, 8, 32}, Shard: []int64{3, 1, 8, 32}, DType: zarr.Uint16}, // 64 B segments, ragged last
		{Shape: []int64{0, 40, 256}, Chunk: []int64{2, 16, 128}, Shard: []int64{2, 16, 128}, DType: zarr.Uint16},      // 256 B segments, even
		{Shape: []int64{0, 3, 5, 64}, Chunk: []int64{2, 1, 2, 64}, Shard: []int64{2, 1, 2, 64}, DType: zarr.Uint16},   // lines along dim 2
	}
	for _, spec := range specs {
		spec.Codec, spec.Level = zarr.CodecNone, 0
		cb := spec.ChunkBytes()
		probe := newChunkMajor(&spec)
		for _, bs := range []int64{probe.segBytes, 2 * probe.segBytes, cb, 4 * cb} {
			for _, mode := range []struct{ nt, avx2 bool }{{true, true}, {true, false}, {false, false}} {
				nt := mode.nt
				t.Run(fmt.Sprintf("%v/bs %d/nt %v/avx2 %v", spec.Shape, bs, nt, mode.avx2), func(t *testing.T) {
					old, oldAVX2 := noNT, useAVX2
					noNT, useAVX2 = !nt, mode.avx2 && useAVX2
					t.Cleanup(func() { noNT, useAVX2 = old, oldAVX2 })
					cm := newChunkMajor(&spec)
					if !cm.preShuffle(2, bs) {
						t.Fatal("layout refused")
					}
					bsEff := min(bs, cb) // blosc clamps the block to the buffer
					cm.shufBS = bsEff
					testScatterShuffled(t, &spec, &cm, bsEff)
				})
			}
		}
	}
	// Where the kernel cannot do it, the layout stays plain.
	for _, tc := range []struct {
		spec zarr.Spec
		ts   int64
		bs   int64
	}{
		{zarr.Spec{Shape: []int64{0, 6, 10}, Chunk: []int64{2, 4, 5}, Shard: []int64{2, 4, 5}, DType: zarr.Uint16}, 2, 1024},         // 10 B segments
		{zarr.Spec{Shape: []int64{0, 7, 150}, Chunk: []int64{4, 3, 40}, Shard: []int64{4, 3, 40}, DType: zarr.Uint32}, 4, 1920},      // typesize 4
		{zarr.Spec{Shape: []int64{0, 40, 256}, Chunk: []int64{2, 16, 128}, Shard: []int64{2, 16, 128}, DType: zarr.Uint16}, 2, 1000}, // blocks not whole segments
	} {
		cm := newChunkMajor(&tc.spec)
		if cm.preShuffle(tc.ts, tc.bs) || cm.shuffle {
			t.Errorf("%v %v bs %d: shuffled layout taken", tc.spec.Shape, tc.spec.DType, tc.bs)
		}
	}
}

func testScatterShuffled(t *testing.T, spec *zarr.Spec, cm *chunkMajor, bs int64) {
	cb := spec.ChunkBytes()
	shuffled := func(tile []byte) []byte {
		out := make([]byte, len(tile))
		for x := range tile {
			out[blosc.ShuffledOffset(x, len(tile), int(bs), 2)] = tile[x]
		}
		return out
	}
	frames := 2*spec.Chunk[0] + 1 // a partial last epoch
	in := make([]byte, frames*spec.FrameBytes())
	stagetest.Fill(in, 5)
	buf := make([]byte, cm.size(frames))
	rng := rand.New(rand.NewPCG(uint64(bs), uint64(len(in))))
	scatter := func(in []byte) {
		for off := 0; off < len(in); {
			k := min(len(in)-off, 1+rng.IntN(3*int(cm.lineBytes)+7))
			cm.write(buf, in[off:off+k], int64(off))
			off += k
		}
	}
	// An older batch of whole epochs leaves its bytes in the frames the
	// partial epoch lacks: clearTail must clear them.
	old := make([]byte, (frames/spec.Chunk[0]+1)*spec.Chunk[0]*spec.FrameBytes())
	for i := range old {
		old[i] = 0xEE
	}
	scatter(old)
	scatter(in)
	e0, nf := frames/spec.Chunk[0], frames%spec.Chunk[0]
	cm.clearTail(buf, e0, nf)
	check := func(buf []byte, first, epochs int64, what string) {
		t.Helper()
		for ep := int64(0); ep < epochs; ep++ {
			for pos := int64(0); pos < spec.ChunksPerEpoch(); pos++ {
				o := cm.at(ep, pos)
				tile := stagetest.NaiveTile(spec, in, frames, first+ep, pos)
				if got, want := buf[o:o+cb], shuffled(tile); !bytes.Equal(got, want) {
					t.Fatalf("%s: epoch %d position %d differs at %d", what, first+ep, pos, firstDiffBytes(got, want))
				}
			}
		}
	}
	check(buf, 0, e0+1, "scatter")
	// Carry the partial epoch to the start of another buffer.
	dst := make([]byte, cm.size(frames))
	cm.carry(dst, buf, e0, nf*spec.FrameBytes())
	check(dst, e0, 1, "carry")
}

func firstDiffBytes(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// kernelStep is the widest step the kernels may take in a test: SSE2 or
// AVX2, as far as this CPU has them.
type kernelStep struct {
	name string
	avx2 bool
}

func kernelSteps() []kernelStep {
	out := []kernelStep{{"sse2", false}}
	if useAVX2 {
		out = append(out, kernelStep{"avx2", true})
	}
	return out
}

// use sets the kernels' step for the test.
func (st kernelStep) use(t *testing.T) {
	old := useAVX2
	useAVX2 = st.avx2
	t.Cleanup(func() { useAVX2 = old })
}

// TestCopyNT: streamCopy (copyNT but in race builds, which copy in Go)
// copies every byte, at every destination alignment (the buffer starts
// 64-byte aligned), for lengths below, at and above the streaming
// threshold, both into a separate buffer and compacting within one (the
// destination below an overlapping source, as a commit's moves do), at
// every kernel step, and nothing around them; it streams exactly the
// copies it should, and refuses a destination above an overlapping
// source.
func TestCopyNT(t *testing.T) {
	for _, st := range kernelSteps() {
		for _, n := range []int{0, 1, 63, ntMin - 1, ntMin, ntMin + 1, 4096 + 17, 65536 + 100} {
			for _, shift := range []int{0, 1, 15, 16, 33, 63} {
				for _, gap := range []int{-1, 1, 64, 1000} { // -1: separate buffers
					t.Run(fmt.Sprintf("%s/%d/%d/%d", st.name, n, shift, gap), func(t *testing.T) {
						st.use(t)
						copyNTCase(t, n, shift, gap)
					})
				}
			}
		}
	}
	t.Run("dst above src", func(t *testing.T) {
		if !haveNT {
			t.Skip("no kernel: a plain copy, which handles any overlap")
		}
		buf := make([]byte, 2*ntMin)
		defer func() {
			if recover() == nil {
				t.Fatal("no panic for a destination above an overlapping source")
			}
		}()
		streamCopy(buf[1:ntMin+1], buf[:ntMin])
	})
}

func copyNTCase(t *testing.T, n, shift, gap int) {
	const guard = 128
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(i*13 + 5)
		}
	}
	size := 2*guard + n + max(gap, 0) + 64
	raw := make([]byte, size+64)
	// guard bytes in from a 64-byte boundary, then shift.
	a := int((64-uintptr(unsafe.Pointer(&raw[0]))&63)&63) + guard + shift
	var dst, src []byte
	var want []byte
	if gap < 0 {
		s := make([]byte, n)
		fill(s)
		for i := range raw {
			raw[i] = 0xEE
		}
		dst, src = raw[a:a+n], s
		want = bytes.Clone(raw)
		copy(want[a:], s)
	} else {
		fill(raw)
		dst, src = raw[a:a+n], raw[a+gap:a+gap+n]
		want = bytes.Clone(raw)
		copy(want[a:a+n], want[a+gap:a+gap+n])
	}
	streamed := streamCopy(dst, src)
	if streamed {
		storeFence()
	}
	if wantStream := n >= ntMin && haveNT && !noNT; streamed != wantStream {
		t.Fatalf("streamed %v, want %v", streamed, wantStream)
	}
	if !bytes.Equal(raw, want) {
		t.Fatalf("differs at %d", firstDiffBytes(raw, want))
	}
}
