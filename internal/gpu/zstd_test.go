package gpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestZstdConstantsMatchSource keeps zstd.go's copies of the kernel's
// layout constants in step with kernels/zstd.cu. It needs no GPU.
func TestZstdConstantsMatchSource(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("kernels", "zstd.cu"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("#define ZS_NT %d ", zstdThreads),
		fmt.Sprintf("#define ZS_BLOCK (%d * 1024) ", zstdBlock/1024),
		"#define ZS_SEGSEQ (ZS_SEG / 4 + 1) ",
		"#define ZS_LITCAP ZS_BLOCK\n",
		"#define ZS_SEQCAP (ZS_NT * ZS_SEGSEQ * 8)\n",
		fmt.Sprintf("#define ZS_OUTCAP (ZS_BLOCK + %d)\n", zstdBlkScratch-2*zstdBlock-zstdThreads*zstdSegSeq*8),
		"#define ZS_BLKSCR ((u64)ZS_LITCAP + ZS_SEQCAP + ZS_OUTCAP)\n",
		fmt.Sprintf("#define ZS_SMEM_BYTES %d\n", zstdSmemBytes),
		fmt.Sprintf("#define ZS_SEQ_NT %d\n", zstdSeqThreads),
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("kernels/zstd.cu lacks %q: update zstd.go's constants", strings.TrimSpace(want))
		}
	}
}

func TestZstdBound(t *testing.T) {
	c := &zstdCodec{}
	tests := []struct {
		chunk, bound, scratch int64
		n                     int
	}{
		{0, 6 + 3, 256 + zstdBlkScratch, 1},
		{1, 6 + 3 + 1, 256 + zstdBlkScratch, 1},
		{255, 6 + 3 + 255, 256 + 2*zstdBlkScratch, 2},
		{256, 7 + 3 + 256, 256 + zstdBlkScratch, 1},
		{65791, 7 + 3 + 65791, 256 + zstdBlkScratch, 1},
		{65792, 9 + 3 + 65792, 256 + zstdBlkScratch, 1},
		{128 << 10, 9 + 3 + 128<<10, 256 + 3*zstdBlkScratch, 3},
		{128<<10 + 1, 9 + 6 + 128<<10 + 1, 256 + 6*zstdBlkScratch, 3},
		{1 << 20, 9 + 24 + 1<<20, 3328 + 8*100*zstdBlkScratch, 100},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.chunk), func(t *testing.T) {
			if got := c.Bound(tc.chunk); got != tc.bound {
				t.Errorf("Bound(%d) = %d; want %d", tc.chunk, got, tc.bound)
			}
			if got := c.Scratch(tc.chunk, tc.n); got != tc.scratch {
				t.Errorf("Scratch(%d, %d) = %d; want %d", tc.chunk, tc.n, got, tc.scratch)
			}
		})
	}
}

// newZstdRig skips the test without a GPU (see newCodecRig).
func newZstdRig(t testing.TB) *codecRig {
	t.Helper()
	return newCodecRig(t, "zstd", func(m *Module) (CodecKernels, error) {
		return newZstd(m, zarr.Spec{Codec: zarr.CodecZstd, Level: 1})
	})
}

// checkFrames decodes every frame with klauspost/compress and compares it
// with its chunk; it also checks the header promises of the store metadata.
func checkFrames(t *testing.T, frames [][]byte, data []byte, chunkBytes int64) int64 {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var total int64
	for i, f := range frames {
		want := data[int64(i)*chunkBytes : int64(i+1)*chunkBytes]
		got, err := dec.DecodeAll(f, nil)
		if err != nil {
			t.Fatalf("chunk %d of %d bytes: decode: %v (frame %d bytes)", i, chunkBytes, err, len(f))
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d of %d bytes: decoded %d bytes differ from the input", i, chunkBytes, len(got))
		}
		var h zstd.Header
		if err := h.Decode(f); err != nil {
			t.Fatalf("chunk %d: header: %v", i, err)
		}
		if !h.SingleSegment || !h.HasFCS || h.FrameContentSize != uint64(chunkBytes) || h.HasCheckSum || h.DictionaryID != 0 {
			t.Fatalf("chunk %d: header %+v; want single segment, content size %d, no checksum, no dictionary", i, h, chunkBytes)
		}
		total += int64(len(f))
		dumpFrame(t, i, f, want)
	}
	return total
}

// dumpFrame writes frame and chunk under $ZWRITE_ZSTD_DUMP when set, so a
// second decoder (libzstd, scripts run on the GPU machine) can check them.
func dumpFrame(t *testing.T, i int, frame, chunk []byte) {
	dir := os.Getenv("ZWRITE_ZSTD_DUMP")
	if dir == "" {
		return
	}
	base := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+fmt.Sprintf("_%d", i))
	if err := os.WriteFile(base+".zst", frame, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".raw", chunk, 0o644); err != nil {
		t.Fatal(err)
	}
}

// zstdFill makes n chunks of chunkBytes with a named pattern.
func zstdFill(kind string, seed int64, chunkBytes int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, chunkBytes*int64(n))
	put16 := func(i int, v uint16) { binary.LittleEndian.PutUint16(b[i:], v) }
	switch kind {
	case "zeros":
	case "noise":
		r.Read(b)
	case "rand12":
		for i := 0; i+1 < len(b); i += 2 {
			put16(i, uint16(r.Intn(4096)))
		}
	case "xor": // uint16 chunks of 32x64x64 elements: t^y^x
		for i := 0; i+1 < len(b); i += 2 {
			e := i / 2
			put16(i, uint16(e%64^(e/64)%64^e/4096))
		}
	case "thirds": // a third each: gaussian noise, gradient, zeros
		third := len(b) / 3
		for i := 0; i+1 < len(b); i += 2 {
			var v float64
			switch {
			case i < third:
				v = math.Max(0, math.Min(4095, 2048+r.NormFloat64()*148))
			case i < 2*third:
				v = float64((i / 2) % 4096)
			}
			put16(i, uint16(v))
		}
	case "u8":
		for i := range b {
			b[i] = byte(i/7) + byte(r.Intn(2))
		}
	case "i16":
		for i := 0; i+1 < len(b); i += 2 {
			put16(i, uint16(int16(math.Sin(float64(i)/300)*1000)))
		}
	case "u32", "i32":
		for i := 0; i+3 < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], uint32(i/4)*7+uint32(r.Intn(16)))
		}
	case "u64", "i64":
		for i := 0; i+7 < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], uint64(i/8)*1000003)
		}
	case "f32":
		for i := 0; i+3 < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(math.Sin(float64(i)/400)*100)))
		}
	case "f64":
		for i := 0; i+7 < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], math.Float64bits(float64(i/8%1000)*0.25))
		}
	case "text":
		words := []string{"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ", "zarr ", "\n"}
		var w bytes.Buffer
		for w.Len() < len(b) {
			w.WriteString(words[r.Intn(len(words))])
		}
		copy(b, w.Bytes())
	case "skew": // one symbol dominates, 200 others: FSE-compressed weights
		for i := range b {
			if r.Intn(10) < 7 {
				b[i] = 0
			} else {
				b[i] = byte(56 + r.Intn(200))
			}
		}
	default:
		panic("unknown fill " + kind)
	}
	return b
}

// TestZstdGPUDecodes: every dtype-like pattern, ragged and multi-block
// chunk sizes; each frame must decode to its chunk.
func TestZstdGPUDecodes(t *testing.T) {
	r := newZstdRig(t)
	kinds := []string{"zeros", "noise", "rand12", "xor", "thirds", "u8", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "text", "skew"}
	sizes := []int64{1, 7, 255, 256, 4097, 65536, 65791, 65792, 131071, 131072, 131073, 262144, 300001, 1 << 20}
	for _, kind := range kinds {
		for _, cb := range sizes {
			t.Run(fmt.Sprintf("%s/%d", kind, cb), func(t *testing.T) {
				n := 3
				if cb >= 1<<20 {
					n = 2
				}
				data := zstdFill(kind, cb, cb, n)
				checkFrames(t, r.encode(t, data, cb), data, cb)
			})
		}
	}
}

// TestZstdGPUDeterministic: 20 runs give the same bytes.
func TestZstdGPUDeterministic(t *testing.T) {
	r := newZstdRig(t)
	const cb = 262144
	var data []byte
	for _, k := range []string{"xor", "thirds", "rand12", "text", "zeros", "skew"} {
		data = append(data, zstdFill(k, 1, cb, 2)...)
	}
	first := r.encode(t, data, cb)
	for run := 1; run < 20; run++ {
		got := r.encode(t, data, cb)
		for i := range got {
			if !bytes.Equal(got[i], first[i]) {
				t.Fatalf("run %d chunk %d: %d bytes, differs from run 0 (%d bytes)", run, i, len(got[i]), len(first[i]))
			}
		}
	}
}

// TestZstdGPURandom is a fuzz-style loop: random patterns, chunk sizes and
// counts, every frame decoded by the CPU reference decoder.
func TestZstdGPURandom(t *testing.T) {
	r := newZstdRig(t)
	kinds := []string{"zeros", "noise", "rand12", "xor", "thirds", "u8", "u32", "f32", "f64", "text", "skew"}
	rnd := rand.New(rand.NewSource(8878))
	iters := 60
	if testing.Short() {
		iters = 10
	}
	for i := 0; i < iters; i++ {
		kind := kinds[rnd.Intn(len(kinds))]
		var cb int64
		switch rnd.Intn(3) {
		case 0:
			cb = int64(rnd.Intn(2000) + 1)
		case 1:
			cb = int64(rnd.Intn(140000) + 1)
		default:
			cb = int64(rnd.Intn(1<<20) + 1)
		}
		n := rnd.Intn(4) + 1
		data := zstdFill(kind, int64(i), cb, n)
		// Splice random runs into the pattern so matches and literals mix.
		for k := rnd.Intn(20); k > 0 && len(data) > 16; k-- {
			a := rnd.Intn(len(data))
			l := rnd.Intn(len(data)-a) % 5000
			if rnd.Intn(2) == 0 {
				rnd.Read(data[a : a+l])
			} else {
				src := rnd.Intn(len(data) - l + 1)
				copy(data[a:a+l], data[src:src+l])
			}
		}
		checkFrames(t, r.encode(t, data, cb), data, cb)
	}
}

// TestZstdGPUThroughput logs the compress stage alone on device-resident
// data (GB/s of input) and the ratio, per fill. It checks the frames too.
func TestZstdGPUThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("timing run")
	}
	r := newZstdRig(t)
	const cb = 262144
	const n = 4096 // 1 GiB
	for _, kind := range []string{"xor", "zeros", "rand12", "thirds", "noise"} {
		t.Run(kind, func(t *testing.T) {
			data := zstdFill(kind, 5, cb, 64)
			full := bytes.Repeat(data, n/64)
			b := r.alloc(t, cb, n)
			defer b.free()
			if err := r.st.CopyHtoD(b.in, full); err != nil {
				t.Fatal(err)
			}
			ev0, _ := r.d.NewEvent()
			ev1, _ := r.d.NewEvent()
			defer ev0.Destroy()
			defer ev1.Destroy()
			best := float32(math.MaxFloat32)
			for rep := 0; rep < 5; rep++ {
				ev0.Record(r.st)
				if err := r.c.Encode(r.st, b.in, cb, n, b.out, b.stride, b.sizes, b.scratch); err != nil {
					t.Fatal(err)
				}
				ev1.Record(r.st)
				if err := ev1.Synchronize(); err != nil {
					t.Fatal(err)
				}
				ms, err := Elapsed(ev0, ev1)
				if err != nil {
					t.Fatal(err)
				}
				if ms < best {
					best = ms
				}
			}
			sizes := make([]byte, 4*n)
			r.st.CopyDtoH(sizes, b.sizes)
			r.st.Synchronize()
			var tot int64
			for i := 0; i < n; i++ {
				tot += int64(binary.LittleEndian.Uint32(sizes[4*i:]))
			}
			frames := r.encode(t, data, cb)
			checkFrames(t, frames, data, cb)
			gbs := float64(cb*n) / (float64(best) / 1e3) / 1e9
			t.Logf("%s: %d chunks of %d B: %.2f ms, %.1f GB/s, ratio %.3f (%s)", kind, n, cb, best, gbs, float64(cb*n)/float64(tot), time.Duration(float64(best)*1e6))
		})
	}
}
