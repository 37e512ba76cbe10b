package gpu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestLZ4ConstantsMatchSource keeps lz4.go's copies of the kernel's
// launch constants in step with kernels/lz4.cu. It needs no GPU.
func TestLZ4ConstantsMatchSource(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("kernels", "lz4.cu"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("#define LZ4_WPB %d\n", lz4WarpsPerCTA),
		fmt.Sprintf("#define LZ4_ASM_CTA %d\n", lz4AsmCTA),
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("kernels/lz4.cu lacks %q: update lz4.go's constants", strings.TrimSpace(want))
		}
	}
}

// lz4Spec is a spec for the lz4 codec with a dtype, level and shuffle.
func lz4Spec(dt zarr.DType, level int, sh zarr.Shuffle) zarr.Spec {
	return zarr.Spec{Shape: []int64{0, 8}, Chunk: []int64{1, 8}, Shard: []int64{1, 8}, DType: dt, Codec: zarr.CodecLZ4, Level: level, Shuffle: sh}
}

// newLZ4Rig holds the lz4 codec for one dtype, level and shuffle on the
// first GPU; it skips the test without one (see newCodecRig).
func newLZ4Rig(t testing.TB, dt zarr.DType, level int, sh zarr.Shuffle) *codecRig {
	t.Helper()
	return newCodecRig(t, "lz4", func(m *Module) (CodecKernels, error) { return newLZ4(m, lz4Spec(dt, level, sh)) })
}

// newLZ4EmuRig is newLZ4Rig on the CPU kernel emulator.
func newLZ4EmuRig(t testing.TB, dt zarr.DType, level int, sh zarr.Shuffle) *codecRig {
	t.Helper()
	return newEmuRig(t, "lz4", func(m *Module) (CodecKernels, error) { return newLZ4(m, lz4Spec(dt, level, sh)) })
}

// checkBlosc decodes every buffer with internal/blosc and with the strict
// reader of lz4check_test.go, compares with its chunk and checks the
// header's promises (compressor, shuffle, typesize); it returns the total
// encoded size.
func checkBlosc(t *testing.T, bufs [][]byte, data []byte, chunkBytes int64, typesize, compressor int, sh zarr.Shuffle) int64 {
	t.Helper()
	var total int64
	wantShuf := map[zarr.Shuffle]int{zarr.NoShuffle: shufNone, zarr.ByteShuffle: shufByte, zarr.BitShuffle: shufBit}[sh]
	for i, b := range bufs {
		want := data[int64(i)*chunkBytes : int64(i+1)*chunkBytes]
		got, h, err := decodeBloscStrict(b)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("chunk %d of %d bytes: strict reader: %v (equal %v)", i, chunkBytes, err, bytes.Equal(got, want))
		}
		if h.typesize != typesize || h.compressor != compressor || h.shuffle != wantShuf {
			t.Fatalf("chunk %d: header %+v; want typesize %d, compressor %d, shuffle %v", i, h, typesize, compressor, sh)
		}
		// internal/blosc, the CPU backend's decoder, must read every buffer
		// too; until it decodes zstd blocks it says ErrNotSupported for
		// them (and then this check starts on its own).
		got, err = blosc.Decode(nil, b)
		if compressor == bloscFormatZstd && errors.Is(err, blosc.ErrNotSupported) {
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("chunk %d of %d bytes: internal/blosc: %v (equal %v)", i, chunkBytes, err, bytes.Equal(got, want))
		}
	}
	for _, b := range bufs {
		total += int64(len(b))
	}
	return total
}

// checkLZ4 is checkBlosc for byte-shuffled blosc-lz4.
func checkLZ4(t *testing.T, bufs [][]byte, data []byte, chunkBytes int64, typesize int) int64 {
	t.Helper()
	return checkBlosc(t, bufs, data, chunkBytes, typesize, bloscFormatLZ4, zarr.ByteShuffle)
}

// lz4Fill makes n chunks of chunkBytes of elements of size ts (uint16
// camera: cameraFill).
func lz4Fill(kind string, seed uint64, ts int, chunkBytes int64, n int) []byte {
	if kind == "camera" && ts == 2 {
		return cameraFill(int64(seed), int(chunkBytes)*n)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, chunkBytes*int64(n))
	ne := len(b) / ts
	var tmp [8]byte
	var run uint64
	for e := 0; e < ne; e++ {
		x, y := uint64(e%256), uint64(e/256)
		var v uint64
		switch kind {
		case "zeros":
		case "noise":
			v = r.Uint64()
		case "xor": // image-like: t^y^x over 64x64 tiles
			v = x%64 ^ y%64 ^ y/64
		case "thirds": // noise, gradient, zeros
			switch e * 3 / ne {
			case 0:
				v = uint64(1000 + r.NormFloat64()*50)
			case 1:
				v = uint64(e / 16)
			}
		case "camera": // other sizes than uint16: offset plus a few bits of noise
			v = 100 + uint64(r.IntN(23))
		case "ramp":
			v = uint64(e / 7)
		case "runs": // runs of 1..600 equal elements: every LZ4 length form
			if e == 0 || r.IntN(1+int(r.Uint32()%600)) == 0 {
				run = r.Uint64() & 0x0F0F
			}
			v = run
		case "nearly": // noise with a short run per 1024 elements: streams
			// that shrink by a few bytes, so the chunk ends near the
			// memcpy limit and c-blosc's shrinking maxout decides
			if e%1024 < 6 {
				v = 7
			} else {
				v = r.Uint64()
			}
		}
		binary.LittleEndian.PutUint64(tmp[:], v)
		copy(b[e*ts:], tmp[:ts])
	}
	return b
}

// lz4BenchFill makes n uint16 chunks of 32x64x64 elements as the GPU
// stage sees them for zwrite bench's orca2 scenario (t,y,x; c = 0), filled
// like internal/bench's fills: "xor" is t^y^x of the global coordinates,
// "thirds" is 12-bit noise, a gradient and zeros in bands of y.
func lz4BenchFill(kind string, n int) []byte {
	const T, Y, X = 32, 64, 64
	b := make([]byte, n*T*Y*X*2)
	r := rand.New(rand.NewPCG(11, 13))
	i := 0
	for k := 0; k < n; k++ {
		y0, x0 := (k/36)%32*Y, k%36*X
		for t := 0; t < T; t++ {
			for y := y0; y < y0+Y; y++ {
				for x := x0; x < x0+X; x++ {
					var v int
					switch kind {
					case "xor":
						v = t ^ y ^ x
					case "thirds":
						switch y * 3 / 2048 {
						case 0:
							u := r.Uint32()
							v = 1538 + int(u&255+u>>8&255+u>>16&255+u>>24)
						case 1:
							v = (t + y + x) % 4096
						}
					}
					binary.LittleEndian.PutUint16(b[i:], uint16(v))
					i += 2
				}
			}
		}
	}
	return b
}

// TestLZ4GPUDecodes: every dtype and shuffle, ragged and tiny shapes,
// noise and zeros decode to exactly the input with both readers.
func TestLZ4GPUDecodes(t *testing.T) {
	needGPU(t)
	for _, dt := range zarr.DTypes {
		ts := dt.Size()
		for _, sh := range blosc.Shuffles {
			r := newLZ4Rig(t, dt, 1, sh)
			for _, kind := range []string{"zeros", "noise", "xor", "thirds", "camera", "ramp", "runs", "nearly"} {
				for _, elems := range []int64{1, 50, 64, 1000, 32768, 65536/int64(ts) + 3, 3*65536/int64(ts) + 999} {
					cb := elems * int64(ts)
					t.Run(fmt.Sprintf("%v/%s/%s/%d", dt, zarr.ShuffleName(sh), kind, cb), func(t *testing.T) {
						data := lz4Fill(kind, uint64(cb), ts, cb, 3)
						checkBlosc(t, r.encode(t, data, cb), data, cb, ts, bloscFormatLZ4, sh)
					})
				}
			}
		}
	}
}

// TestLZ4GPUMatchesCPU: for every dtype, shuffle and level class the GPU
// writes exactly the CPU encoder's buffers (internal/blosc: c-blosc's
// rules with LZ4_compress_fast), so a store does not depend on the
// backend. 1 MiB chunks and the orca2-like bench chunks.
func TestLZ4GPUMatchesCPU(t *testing.T) {
	needGPU(t)
	var cases []lz4Case
	for _, dt := range zarr.DTypes {
		for _, sh := range blosc.Shuffles {
			for _, level := range []int{0, 1, 5, 9} {
				for _, kind := range []string{"xor", "noise", "thirds", "zeros", "camera", "ramp", "runs", "nearly"} {
					cases = append(cases, lz4Case{dt, sh, level, kind, 1 << 20, 2})
				}
				cases = append(cases, lz4Case{dt, sh, level, "thirds", 3*65536 + 8*333, 3})
			}
		}
	}
	checkLZ4MatchesCPU(t, newLZ4Rig, cases)
	t.Run("bench", func(t *testing.T) {
		var e blosc.Encoder
		for _, sh := range blosc.Shuffles {
			r := newLZ4Rig(t, zarr.Uint16, 1, sh)
			for _, kind := range []string{"xor", "thirds"} {
				const cb = 256 << 10
				data := lz4BenchFill(kind, 72)
				got := r.encode(t, data, cb)
				checkBlosc(t, got, data, cb, 2, bloscFormatLZ4, sh)
				var tot int
				for i, g := range got {
					want := e.Encode(nil, data[i*cb:(i+1)*cb], blosc.Options{TypeSize: 2, CLevel: 1, Shuffle: sh})
					if !bytes.Equal(g, want) {
						t.Fatalf("%s/%s chunk %d differs from the CPU encoder's at byte %d", zarr.ShuffleName(sh), kind, i, firstDiff(g, want))
					}
					tot += len(g)
				}
				t.Logf("bench-%s %s shuffle: ratio %.3f, identical to the CPU", kind, zarr.ShuffleName(sh), float64(len(data))/float64(tot))
			}
		}
	})
}

// TestLZ4GPULevels: clevel 0 stores memcpyed, every other level decodes.
func TestLZ4GPULevels(t *testing.T) {
	needGPU(t)
	const cb = 200000
	data := lz4Fill("thirds", 1, 2, cb, 2)
	for _, sh := range blosc.Shuffles {
		for level := 0; level <= 9; level++ {
			t.Run(fmt.Sprintf("%s/%d", zarr.ShuffleName(sh), level), func(t *testing.T) {
				r := newLZ4Rig(t, zarr.Uint16, level, sh)
				bufs := r.encode(t, data, cb)
				checkBlosc(t, bufs, data, cb, 2, bloscFormatLZ4, sh)
				if memcpyed := bufs[0][2]&0x02 != 0; memcpyed != (level == 0) {
					t.Fatalf("level %d: memcpyed %v", level, memcpyed)
				}
			})
		}
	}
}

// TestLZ4GPUDeterministic: 20 runs give the same bytes, and a chunk's
// bytes do not depend on the batch it is in.
func TestLZ4GPUDeterministic(t *testing.T) {
	needGPU(t)
	for _, sh := range blosc.Shuffles {
		t.Run(zarr.ShuffleName(sh), func(t *testing.T) {
			r := newLZ4Rig(t, zarr.Uint16, 1, sh)
			const cb = 1 << 20
			data := append(lz4Fill("thirds", 3, 2, cb, 4), lz4Fill("xor", 4, 2, cb, 4)...)
			first := r.encode(t, data, cb)
			for run := 1; run < 20; run++ {
				got := r.encode(t, data, cb)
				for i := range got {
					if !bytes.Equal(got[i], first[i]) {
						t.Fatalf("run %d: chunk %d differs", run, i)
					}
				}
			}
			for i := range first {
				alone := r.encode(t, data[int64(i)*cb:int64(i+1)*cb], cb)
				if !bytes.Equal(alone[0], first[i]) {
					t.Fatalf("chunk %d encoded alone differs from the batch", i)
				}
			}
		})
	}
}

// timeEncode runs the rig's codec on n device-resident chunks of cb bytes
// (full: their contents) 5 times and returns the best time and the total
// encoded size.
func timeEncode(t *testing.T, r *codecRig, full []byte, cb int64, n int) (time.Duration, int64) {
	t.Helper()
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
		best = min(best, ms)
	}
	sizes := make([]byte, 4*n)
	r.st.CopyDtoH(sizes, b.sizes)
	r.st.Synchronize()
	var tot int64
	for i := 0; i < n; i++ {
		tot += int64(binary.LittleEndian.Uint32(sizes[4*i:]))
	}
	return time.Duration(float64(best) * float64(time.Millisecond)), tot
}

// TestLZ4GPUThroughput times the codec's kernels alone on device-resident
// data (1 GiB of 1 MiB uint16 chunks per fill) for every shuffle and the
// level classes, and prints GB/s of input and the ratio next to the
// pinned H2D bandwidth that bounds the pipeline.
func TestLZ4GPUThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("timing run")
	}
	needGPU(t)
	bw, err := MeasureCopyBandwidth(256 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: pinned H2D %.1f GB/s", bw.Device, bw.H2DGBs)
	for _, sh := range blosc.Shuffles {
		for _, level := range []int{1, 5, 9} {
			r := newLZ4Rig(t, zarr.Uint16, level, sh)
			for _, kind := range []string{"xor", "noise", "thirds", "zeros", "camera", "bench-xor", "bench-thirds"} {
				t.Run(fmt.Sprintf("%s/%d/%s", zarr.ShuffleName(sh), level, kind), func(t *testing.T) {
					cb, n := int64(1<<20), 1024
					var full []byte
					if bk, ok := strings.CutPrefix(kind, "bench-"); ok {
						// orca2-like 256 KiB chunks, 1152 distinct ones (a shard row's
						// worth of x/y positions), 4 times over: 1.125 GiB
						cb, n = 256<<10, 4608
						full = bytes.Repeat(lz4BenchFill(bk, 1152), 4)
					} else {
						full = bytes.Repeat(lz4Fill(kind, 5, 2, cb, 16), n/16)
					}
					best, tot := timeEncode(t, r, full, cb, n)
					gbs := float64(cb*int64(n)) / best.Seconds() / 1e9
					fmt.Printf("lz4 shuffle=%s clevel=%d %-12s %6.1f GB/s  ratio %7.3f  (pinned H2D %.1f GB/s)\n", zarr.ShuffleName(sh), level, kind, gbs, float64(cb*int64(n))/float64(tot), bw.H2DGBs)
				})
			}
		}
	}
}

// TestLZ4GPUSweep is for tuning on the GPU machine: with ZWRITE_LZ4_SWEEP
// set to a list of shared-memory carveouts ("-1,25,50"; -1 = driver's
// choice) it times the kernels per carveout on the slow fills, and with
// ZWRITE_LZ4_FILLS a list of fills replaces them.
func TestLZ4GPUSweep(t *testing.T) {
	sweep := os.Getenv("ZWRITE_LZ4_SWEEP")
	if sweep == "" {
		t.Skip("ZWRITE_LZ4_SWEEP not set")
	}
	fills := []string{"xor", "thirds", "camera"}
	if f := os.Getenv("ZWRITE_LZ4_FILLS"); f != "" {
		fills = strings.Split(f, ",")
	}
	const cb = 1 << 20
	const n = 512
	for _, cs := range strings.Split(sweep, ",") {
		var carve int
		fmt.Sscan(cs, &carve)
		r := newLZ4Rig(t, zarr.Uint16, 1, zarr.ByteShuffle)
		if carve >= 0 {
			if err := setCarveout(r.c.(*lz4Codec).compress, carve); err != nil {
				t.Fatal(err)
			}
		}
		for _, kind := range fills {
			full := bytes.Repeat(lz4Fill(kind, 5, 2, cb, 16), n/16)
			b := r.alloc(t, cb, n)
			if err := r.st.CopyHtoD(b.in, full); err != nil {
				t.Fatal(err)
			}
			ev0, _ := r.d.NewEvent()
			ev1, _ := r.d.NewEvent()
			best := float32(math.MaxFloat32)
			for rep := 0; rep < 3; rep++ {
				ev0.Record(r.st)
				if err := r.c.Encode(r.st, b.in, cb, n, b.out, b.stride, b.sizes, b.scratch); err != nil {
					t.Fatal(err)
				}
				ev1.Record(r.st)
				if err := ev1.Synchronize(); err != nil {
					t.Fatal(err)
				}
				ms, _ := Elapsed(ev0, ev1)
				best = min(best, ms)
			}
			ev0.Destroy()
			ev1.Destroy()
			b.free()
			t.Logf("carveout %3d %-7s %.1f GB/s", carve, kind, float64(cb*n)/(float64(best)/1e3)/1e9)
		}
	}
}

// TestLZ4GPUStore writes stores through the whole GPU stage and pipeline
// with codec lz4 (every dtype size, every shuffle, ragged edges, partial
// epochs, depths 1 and 3), reads them back with internal/zarr's reader and
// requires the CPU stage's store byte for byte (the GPU's blosc-lz4 is the
// CPU encoder's).
func TestLZ4GPUStore(t *testing.T) {
	needGPU(t)
	cases := []struct {
		name   string
		spec   zarr.Spec
		frames int64
	}{
		{"u16 ragged", zarr.Spec{Shape: []int64{0, 3, 129, 67}, DType: zarr.Uint16, Chunk: []int64{4, 2, 32, 32}, Shard: []int64{8, 2, 64, 64}, Codec: zarr.CodecLZ4, Level: 1}, 37},
		{"f32 big chunks", zarr.Spec{Shape: []int64{45, 300, 290}, DType: zarr.Float32, Chunk: []int64{4, 128, 128}, Shard: []int64{16, 256, 384}, Codec: zarr.CodecLZ4, Level: 5}, 45},
		{"u8 rank5", zarr.Spec{Shape: []int64{0, 5, 17, 19, 3}, DType: zarr.Uint8, Chunk: []int64{2, 2, 8, 8, 1}, Shard: []int64{4, 4, 16, 16, 3}, Codec: zarr.CodecLZ4, Level: 1}, 23},
		{"i64 memcpy level", zarr.Spec{Shape: []int64{0, 40, 40}, DType: zarr.Int64, Chunk: []int64{3, 16, 16}, Shard: []int64{6, 32, 48}, Codec: zarr.CodecLZ4, Level: 0}, 10},
		{"u16 bitshuffle", zarr.Spec{Shape: []int64{0, 3, 129, 67}, DType: zarr.Uint16, Chunk: []int64{4, 2, 32, 32}, Shard: []int64{8, 2, 64, 64}, Codec: zarr.CodecLZ4, Level: 5, Shuffle: zarr.BitShuffle}, 37},
		{"f32 noshuffle", zarr.Spec{Shape: []int64{45, 300, 290}, DType: zarr.Float32, Chunk: []int64{4, 128, 128}, Shard: []int64{16, 256, 384}, Codec: zarr.CodecLZ4, Level: 1, Shuffle: zarr.NoShuffle}, 45},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := make([]byte, tc.frames*tc.spec.FrameBytes())
			ts := tc.spec.DType.Size()
			copy(input, lz4Fill("thirds", 1, ts, int64(len(input)/ts*ts), 1))
			ref, err := cpu.New(stage.Config{Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			want := writeStore(t, tc.spec, ref, 1, input)
			ref.Close()
			for depth := 1; depth <= 3; depth += 2 {
				st, err := NewStageOptions(stage.Config{Spec: tc.spec}, Options{})
				if err != nil {
					t.Fatal(err)
				}
				files := writeStore(t, tc.spec, st, depth, input)
				st.Close()
				sameFiles(t, files, want)
				a, err := zarr.Open(memFS(files))
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if err := a.ReadAll(&got); err != nil {
					t.Fatalf("depth %d: %v", depth, err)
				}
				a.Close()
				if !bytes.Equal(got.Bytes(), input) {
					t.Fatalf("depth %d: store reads back %d bytes that differ from the %d input bytes", depth, got.Len(), len(input))
				}
			}
		})
	}
}
