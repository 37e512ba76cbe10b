//go:build linux

package codec_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/codec/zstdenc"
	"github.com/zwrite/zwrite/internal/codec/zstdref"
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
	if os.Getenv("ZWRITE_MEASURE_CHUNK") == "1MiB" {
		measureChunk = []int{32, 128, 128}
	}
	out := map[string][][]byte{}
	spec := zarr.Spec{Shape: []int64{32, 512, 512}, Chunk: []int64{32, 64, 64}, Shard: []int64{32, 64, 64}, DType: zarr.Uint16, Codec: zarr.CodecNone}
	n := 2 * 32 * 512 * 512
	for _, f := range []bench.Fill{bench.FillThirds, bench.FillRand, bench.FillXor, bench.FillZeros, bench.FillCamera} {
		arr := make([]byte, n)
		if err := bench.FillFrames(f, &spec, 0, arr); err != nil {
			t.Fatal(err)
		}
		out[f.String()] = codectest.Chunks(arr, measureShape, measureChunk, 2)
	}
	// bench's camera fill, and codectest's (from before bench had one).
	out["bcamera"] = out["camera"]
	out["camera"] = codectest.Chunks(codectest.Camera(32, 512, 512, 1), measureShape, measureChunk, 2)
	return out
}

var measureFills = []string{"thirds", "rand", "xor", "zeros", "camera", "bcamera"}

// cand is one encoder measured: it appends the encoding of src to dst.
type cand struct {
	name string
	enc  func(dst, src []byte) []byte
}

// TestMeasureCodecs prints ratio and single-core speed (MB/s of input per
// second of thread CPU time) of the zstd candidates on every fill, and
// writes each fill's chunks to $ZWRITE_MEASURE/FILL.raw for `zstd -b1
// -B262144` (libzstd on the same chunks). With -tags zstdref (cgo; libzstd
// 1.5.7 from DataDog/zstd's sources, see zstdref) libzstd level 1 runs
// in-process as a candidate too.
// ZWRITE_MEASURE_ONLY=name,name keeps only those candidates. It runs only
// when ZWRITE_MEASURE names a directory: a measurement, not a test.
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
	var ze zstdenc.Encoder
	var cands []cand
	if ref := zstdref.Level(1); ref != nil {
		cands = append(cands, cand{"libzstd-1", ref})
	}
	cands = append(cands, []cand{
		{"zstdenc", func(dst, src []byte) []byte { return ze.EncodeAll(dst, src) }},
		{"kz-fastest-b64", kz(fastest, w256)},
		{"kz-fastest-alllit-b64", kz(fastest, w256, alllit)},
		{"kz-fastest-alllit-b128", kz(w256, fastest, alllit)},
		{"kz-default-alllit-b128", kz(def, w256, alllit)},
		{"kz-fastest-alllit-b32", kz(fastest, zstd.WithWindowSize(32<<10), alllit)},
		{"blosc-lz4-shuffle", bz(blosc.Options{TypeSize: 2, CLevel: 1})},
	}...)
	for _, bs := range []int{32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20} {
		for _, sh := range []blosc.Shuffle{blosc.ByteShuffle, blosc.BitShuffle} {
			o := blosc.Options{TypeSize: 2, CLevel: 1, Shuffle: sh, BlockSize: bs, Compressor: blosc.Zstd}
			cands = append(cands, cand{fmt.Sprintf("blosc-zstd-%v-bs%dk", sh, bs>>10), bz(o)})
		}
	}
	if f := os.Getenv("ZWRITE_MEASURE_ONLY"); f != "" {
		var keep []cand
		for _, c := range cands {
			if strings.Contains(f, c.name) {
				keep = append(keep, c)
			}
		}
		cands = keep
	}
	// Ratio and speed per candidate and fill. Speed: the least thread CPU
	// time of seven passes over the fill's chunks, the candidates taking
	// turns pass by pass, so that a burst of other work on the shared
	// machine hits them all alike.
	lines := make([]string, len(cands))
	for i, c := range cands {
		lines[i] = fmt.Sprintf("%-26s", c.name)
	}
	for _, name := range measureFills {
		chunks := data[name]
		dst := make([]byte, 0, 2*len(chunks[0]))
		var in int64
		for _, ch := range chunks {
			in += int64(len(ch))
		}
		best := make([]float64, len(cands))
		outs := make([]int64, len(cands))
		for i, c := range cands {
			best[i] = math.Inf(1)
			for _, ch := range chunks {
				dst = c.enc(dst[:0], ch)
				outs[i] += int64(len(dst))
			}
		}
		for range 7 {
			for i, c := range cands {
				t0 := codectest.ThreadClock()
				for _, ch := range chunks {
					dst = c.enc(dst[:0], ch)
				}
				best[i] = min(best[i], codectest.ThreadClock()-t0)
			}
		}
		for i := range cands {
			lines[i] += fmt.Sprintf("  %s %7.4f %5.0f", name, float64(in)/float64(outs[i]), float64(in)/best[i]/1e6)
			if os.Getenv("ZWRITE_MEASURE_BYTES") != "" {
				lines[i] += fmt.Sprintf(" (%d B)", outs[i])
			}
		}
	}
	for _, l := range lines {
		t.Log(l)
	}
}
