package gpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
		fmt.Sprintf("#define ZS_SMEM_FAST %d\n", zstdSmemFast),
		fmt.Sprintf("#define ZS_SMEM_LAZY %d\n", zstdSmemLazy),
		fmt.Sprintf("#define ZS_PARSE_FAST %d\n", zstdParseFast),
		fmt.Sprintf("#define ZS_PARSE_LAZY %d\n", zstdParseLazy),
		fmt.Sprintf("#define BZS_SIZES_CTA %d\n", bzstdSizesCTA),
		fmt.Sprintf("#define BZS_ASM_CTA %d\n", bzstdAsmCTA),
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

// newZstdRig holds the zstd codec at a level on the first GPU; it skips
// the test without one (see newCodecRig).
func newZstdRig(t testing.TB, level int) *codecRig {
	t.Helper()
	return newCodecRig(t, "zstd", func(m *Module) (CodecKernels, error) {
		return newZstd(m, zarr.Spec{Codec: zarr.CodecZstd, Level: level})
	})
}

// newZstdEmuRig is newZstdRig on the CPU kernel emulator.
func newZstdEmuRig(t testing.TB, level int) *codecRig {
	t.Helper()
	return newEmuRig(t, "zstd", func(m *Module) (CodecKernels, error) {
		return newZstd(m, zarr.Spec{Codec: zarr.CodecZstd, Level: level})
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
	case "camera":
		copy(b, cameraFill(seed, len(b)))
	case "sparse": // zeros with one random byte in 300: short literal runs
		for i := range b {
			if r.Intn(300) == 0 {
				b[i] = byte(r.Intn(256))
			}
		}
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

// cameraFill makes n bytes of uint16 frames (512 x 512, row by row) that
// look like a scientific camera's: a smooth scene of 36 blurred Gaussian
// blobs on a dim background, photon shot noise on it (Poisson, by its
// normal approximation above 30 photons), a little read noise and a dark
// offset of 100, clipped to 12 bits.
func cameraFill(seed int64, n int) []byte {
	const w, h = 512, 512
	r := rand.New(rand.NewSource(seed))
	scene := cameraScene(seed % 4)
	out := make([]byte, n)
	for i := 0; i+1 < n; i += 2 {
		s := scene[(i/2)%(w*h)]
		var photons float64
		if s > 30 {
			photons = math.Round(s + math.Sqrt(s)*r.NormFloat64())
		} else { // Knuth's Poisson sampler
			l, k, p := math.Exp(-s), 0.0, 1.0
			for p *= r.Float64(); p > l; p *= r.Float64() {
				k++
			}
			photons = k
		}
		v := 100 + photons + math.Round(1.5*r.NormFloat64())
		binary.LittleEndian.PutUint16(out[i:], uint16(math.Max(0, math.Min(4095, v))))
	}
	return out
}

// cameraScenes caches cameraScene: the blobs cost seconds under -race.
var cameraScenes sync.Map

// cameraScene is the photons per pixel of scene k (512 x 512).
func cameraScene(k int64) []float64 {
	if v, ok := cameraScenes.Load(k); ok {
		return v.([]float64)
	}
	const w, h = 512, 512
	r := rand.New(rand.NewSource(k))
	type blob struct{ x, y, a, s float64 }
	blobs := make([]blob, 36)
	for i := range blobs {
		blobs[i] = blob{r.Float64() * w, r.Float64() * h, 50 + r.Float64()*1500, 8 + r.Float64()*52}
	}
	scene := make([]float64, w*h)
	for i := range scene {
		scene[i] = 20 // background photons
	}
	for _, b := range blobs {
		x0, x1 := max(0, int(b.x-3*b.s)), min(w, int(b.x+3*b.s)+1)
		y0, y1 := max(0, int(b.y-3*b.s)), min(h, int(b.y+3*b.s)+1)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				dx, dy := float64(x)-b.x, float64(y)-b.y
				scene[y*w+x] += b.a * math.Exp(-(dx*dx+dy*dy)/(2*b.s*b.s))
			}
		}
	}
	v, _ := cameraScenes.LoadOrStore(k, scene)
	return v.([]float64)
}

// TestZstdGPUDecodes: every dtype-like pattern, ragged and multi-block
// chunk sizes, both parses; each frame must decode to its chunk.
func TestZstdGPUDecodes(t *testing.T) {
	needGPU(t)
	kinds := []string{"zeros", "noise", "rand12", "xor", "thirds", "camera", "u8", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "text", "skew"}
	sizes := []int64{1, 7, 255, 256, 4097, 65536, 65791, 65792, 131071, 131072, 131073, 262144, 300001, 1 << 20}
	for _, level := range zstdLevelClasses {
		r := newZstdRig(t, level)
		for _, kind := range kinds {
			for _, cb := range sizes {
				t.Run(fmt.Sprintf("l%d/%s/%d", level, kind, cb), func(t *testing.T) {
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
}

// TestZstdGPUDeterministic: 20 runs give the same bytes, for both parses,
// and the GPU's frames are the emulator's (same kernels, same bytes) when
// g++ is there to build it.
func TestZstdGPUDeterministic(t *testing.T) {
	for _, level := range zstdLevelClasses {
		r := newZstdRig(t, level)
		const cb = 262144
		var data []byte
		for _, k := range []string{"xor", "thirds", "rand12", "text", "zeros", "skew", "camera"} {
			data = append(data, zstdFill(k, 1, cb, 2)...)
		}
		first := r.encode(t, data, cb)
		for run := 1; run < 20; run++ {
			got := r.encode(t, data, cb)
			for i := range got {
				if !bytes.Equal(got[i], first[i]) {
					t.Fatalf("level %d run %d chunk %d: %d bytes, differs from run 0 (%d bytes)", level, run, i, len(got[i]), len(first[i]))
				}
			}
		}
		if _, err := exec.LookPath("g++"); err != nil {
			t.Logf("no g++: GPU frames not compared with the emulator's")
			continue
		}
		emu := newZstdEmuRig(t, level).encode(t, data, cb)
		for i := range emu {
			if !bytes.Equal(emu[i], first[i]) {
				t.Fatalf("level %d chunk %d: the GPU frame (%d bytes) differs from the emulator's (%d bytes)", level, i, len(first[i]), len(emu[i]))
			}
		}
	}
}

// TestZstdGPURandom is a fuzz-style loop: random patterns, chunk sizes and
// counts, every frame decoded by the CPU reference decoder.
func TestZstdGPURandom(t *testing.T) {
	rigs := map[int]*codecRig{}
	for _, level := range zstdLevelClasses {
		rigs[level] = newZstdRig(t, level)
	}
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
		checkFrames(t, rigs[zstdLevelClasses[i%len(zstdLevelClasses)]].encode(t, data, cb), data, cb)
	}
}

// TestZstdGPUThroughput prints the compress stage alone on
// device-resident data (GB/s of input) and the ratio, per parse and fill.
// It checks the frames too.
func TestZstdGPUThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("timing run")
	}
	needGPU(t)
	for _, level := range zstdLevelClasses {
		r := newZstdRig(t, level)
		_, parse, _ := zstdParse(level)
		for _, kind := range []string{"xor", "zeros", "rand12", "thirds", "camera", "noise"} {
			t.Run(fmt.Sprintf("l%d/%s", level, kind), func(t *testing.T) {
				const cb = 262144
				const n = 4096 // 1 GiB
				data := zstdFill(kind, 5, cb, 64)
				best, tot := timeEncode(t, r, bytes.Repeat(data, n/64), cb, n)
				checkFrames(t, r.encode(t, data, cb), data, cb)
				fmt.Printf("zstd level=%d parse=%s %-7s %d chunks of %d B: %6.1f GB/s  ratio %.3f\n", level, parse, kind, n, cb,
					float64(cb*n)/best.Seconds()/1e9, float64(cb*n)/float64(tot))
			})
		}
	}
}
