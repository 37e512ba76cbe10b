//go:build linux

package codec_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// measureShape is the array the measurements cut into chunks: 32 frames of
// 512×512 uint16, chunk 32×64×64 (256 KiB, the size of the orca2, medfmt
// and 256cube scenario chunks).
var (
	measureShape = []int{32, 512, 512}
	measureChunk = []int{32, 64, 64}
)

// measureData is every fill of the measurements as its chunks.
func measureData(t testing.TB) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	spec := zarr.Spec{Shape: []int64{32, 512, 512}, Chunk: []int64{32, 64, 64}, Shard: []int64{32, 64, 64}, DType: zarr.Uint16, Codec: zarr.CodecNone}
	n := 2 * 32 * 512 * 512
	for _, f := range []bench.Fill{bench.FillThirds, bench.FillRand, bench.FillXor, bench.FillZeros} {
		arr := make([]byte, n)
		if err := bench.FillFrames(f, &spec, 0, arr); err != nil {
			t.Fatal(err)
		}
		out[f.String()] = codectest.Chunks(arr, measureShape, measureChunk, 2)
	}
	out["camera"] = codectest.Chunks(codectest.Camera(32, 512, 512, 1), measureShape, measureChunk, 2)
	return out
}

var measureFills = []string{"thirds", "rand", "xor", "zeros", "camera"}

// TestMeasureCodecs prints ratio and single-core speed of the zstd
// candidates on every fill, and writes each fill's chunks to
// $ZWRITE_MEASURE/FILL.raw for `zstd -b1 -B262144` (libzstd on the same
// chunks). It runs only when ZWRITE_MEASURE names a directory: a
// measurement, not a test.
func TestMeasureCodecs(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := os.Getenv("ZWRITE_MEASURE")
	if dir == "" {
		t.Skip("set ZWRITE_MEASURE=DIR to measure")
	}
	data := measureData(t)
	for _, name := range measureFills {
		var all []byte
		for _, c := range data[name] {
			all = append(all, c...)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".raw"), all, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type cand struct {
		name string
		enc  func(dst, src []byte) []byte
	}
	// kz is klauspost EncodeAll with the options in order; the order
	// matters: WithEncoderLevel(SpeedFastest) sets 64 KiB zstd blocks
	// unless a window was set before it (then blocks are min(128 KiB,
	// window)).
	kz := func(opts ...zstd.EOption) func(dst, src []byte) []byte {
		opts = append([]zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
			zstd.WithSingleSegment(true)}, opts...)
		e, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return func(dst, src []byte) []byte { return e.EncodeAll(src, dst) }
	}
	w256 := zstd.WithWindowSize(256 << 10)
	fastest, def := zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderLevel(zstd.SpeedDefault)
	alllit := zstd.WithAllLitEntropyCompression(true)
	bz := func(o blosc.Options) func(dst, src []byte) []byte {
		var e blosc.Encoder
		return func(dst, src []byte) []byte { return e.Encode(dst, src, o) }
	}
	cands := []cand{
		{"kz-fastest-b64", kz(fastest, w256)},
		{"kz-fastest-alllit-b64", kz(fastest, w256, alllit)},
		{"kz-fastest-alllit-b128", kz(w256, fastest, alllit)},
		{"kz-default-alllit-b128", kz(def, w256, alllit)},
		{"kz-fastest-alllit-b32", kz(fastest, zstd.WithWindowSize(32<<10), alllit)},
		{"blosc-lz4-shuffle", bz(blosc.Options{TypeSize: 2, CLevel: 1})},
	}
	for _, bs := range []int{64 << 10, 128 << 10, 256 << 10} {
		for _, sh := range []blosc.Shuffle{blosc.ByteShuffle, blosc.BitShuffle} {
			o := blosc.Options{TypeSize: 2, CLevel: 1, Shuffle: sh, BlockSize: bs, Compressor: blosc.Zstd}
			cands = append(cands, cand{fmt.Sprintf("blosc-zstd-%v-bs%dk", sh, bs>>10), bz(o)})
		}
	}
	for _, c := range cands {
		line := fmt.Sprintf("%-30s", c.name)
		for _, name := range measureFills {
			chunks := data[name]
			dst := make([]byte, 0, 2*len(chunks[0]))
			var in, out int64
			for _, ch := range chunks {
				dst = c.enc(dst[:0], ch)
				in += int64(len(ch))
				out += int64(len(dst))
			}
			mbps := float64(in) / threadCPU(func() {
				for _, ch := range chunks {
					dst = c.enc(dst[:0], ch)
				}
			}) / 1e6
			line += fmt.Sprintf("  %s %5.2f %5.0f", name, float64(in)/float64(out), mbps)
		}
		t.Log(line)
	}
}

// threadCPU is the least thread CPU time (seconds) of seven runs of f: on
// a machine shared with other work, CPU time is steadier than wall time,
// and it is what the libzstd reference (the same loop in C, timed with
// CLOCK_THREAD_CPUTIME_ID) measures too. The caller locks its OS thread.
func threadCPU(f func()) float64 {
	best := math.Inf(1)
	for range 7 {
		t0 := threadClock()
		f()
		best = min(best, threadClock()-t0)
	}
	return best
}

// threadClock reads CLOCK_THREAD_CPUTIME_ID (Linux clock id 3), which
// counts in nanoseconds where getrusage counts in scheduler ticks.
func threadClock() float64 {
	var ts syscall.Timespec
	// unsafe: the kernel writes one Timespec through the pointer, and ts
	// stays live (on this stack) for the call.
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}
