package gpu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// bzstdSpec is a spec for the blosc-zstd codec.
func bzstdSpec(dt zarr.DType, level int, sh zarr.Shuffle) zarr.Spec {
	return zarr.Spec{Shape: []int64{0, 8}, Chunk: []int64{1, 8}, Shard: []int64{1, 8}, DType: dt, Codec: zarr.CodecBloscZstd, Level: level, Shuffle: sh}
}

// newBloscZstdRig holds the blosc-zstd codec on the first GPU; it skips
// the test without one.
func newBloscZstdRig(t testing.TB, dt zarr.DType, level int, sh zarr.Shuffle) *codecRig {
	t.Helper()
	return newCodecRig(t, "zstd", func(m *Module) (CodecKernels, error) { return newBloscZstd(m, bzstdSpec(dt, level, sh)) })
}

// newBloscZstdEmuRig is newBloscZstdRig on the CPU kernel emulator.
func newBloscZstdEmuRig(t testing.TB, dt zarr.DType, level int, sh zarr.Shuffle) *codecRig {
	t.Helper()
	return newEmuRig(t, "zstd", func(m *Module) (CodecKernels, error) { return newBloscZstd(m, bzstdSpec(dt, level, sh)) })
}

// bzstdFill is n chunks of cb bytes of a fill, for element size ts.
func bzstdFill(kind string, seed uint64, ts int, cb int64, n int) []byte {
	if kind == "camera" {
		return cameraFill(int64(seed), int(cb)*n)
	}
	return lz4Fill(kind, seed, ts, cb, n)
}

// checkBloscZstdCases encodes each case with the rig and checks every
// buffer with the strict reader (klauspost/compress for each stream), the
// header (versions 2/1, compressor code 4, DONT_SPLIT, the shuffle and
// typesize asked for) and, where memcpyed, c-blosc's reasons.
func checkBloscZstdCases(t *testing.T, newRig lz4RigFunc, cases []lz4Case) {
	rigs := map[[3]int]*codecRig{}
	key := func(c lz4Case) [3]int { return [3]int{int(c.dt), c.level, int(c.sh)} }
	for _, c := range cases {
		if rigs[key(c)] == nil {
			rigs[key(c)] = newRig(t, c.dt, c.level, c.sh)
		}
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			ts := c.dt.Size()
			data := bzstdFill(c.kind, uint64(c.chunkBytes), ts, c.chunkBytes, c.n)
			bufs := rigs[key(c)].encode(t, data, c.chunkBytes)
			checkBlosc(t, bufs, data, c.chunkBytes, ts, bloscFormatZstd, c.sh)
			for i, b := range bufs {
				if b[2]&0x10 == 0 {
					t.Fatalf("chunk %d: flags %#x lack DONT_SPLIT", i, b[2])
				}
				if memcpyed := b[2]&0x02 != 0; memcpyed != (c.level == 0 || c.chunkBytes < 128) && !nearNoise(c, i) {
					t.Fatalf("chunk %d: memcpyed %v at clevel %d, %d bytes of %s", i, memcpyed, c.level, c.chunkBytes, c.kind)
				}
			}
		})
	}
}

// nearNoise: chunk i of case c may be stored memcpyed at any level
// because its bytes are (almost) incompressible: noise, and the first
// chunk of 8-bit thirds (the thirds run over the whole buffer, so with
// three chunks chunk 0 is all noise, 1000+N(0,50) truncated to a byte:
// about 7.7 bits per byte, whether it beats blosc's margin is chance).
func nearNoise(c lz4Case, i int) bool {
	return c.kind == "noise" || c.kind == "thirds" && c.dt.Size() == 1 && i == 0
}

// TestBloscZstdEmulator runs the blosc-zstd codec's Go launch code and
// kernels on the CPU emulator: every shuffle, element sizes 1..8, both
// parses and clevel 0, tiny (memcpyed), one-block, multi-block with a short
// last block, and incompressible chunks.
func TestBloscZstdEmulator(t *testing.T) {
	var cases []lz4Case
	for _, sh := range blosc.Shuffles {
		for _, level := range []int{0, 1, 2} { // memcpy, fast, lazy
			for _, k := range []string{"zeros", "noise", "thirds", "camera"} {
				cases = append(cases, lz4Case{zarr.Uint16, sh, level, k, 2*65536 + 3000, 1})
			}
		}
		cases = append(cases,
			lz4Case{zarr.Uint8, sh, 1, "ramp", 5000, 2},
			lz4Case{zarr.Uint32, sh, 5, "xor", 70000, 1},
			lz4Case{zarr.Float64, sh, 9, "thirds", 16384, 1},
			lz4Case{zarr.Uint16, sh, 1, "xor", 100, 2}, // memcpyed: < 128 bytes
			lz4Case{zarr.Uint64, sh, 1, "xor", 1000, 1},
			lz4Case{zarr.Uint16, sh, 1, "runs", 65536, 2},
		)
	}
	checkBloscZstdCases(t, newBloscZstdEmuRig, cases)
}

// TestBloscZstdEmulatorEdges: one 64 KiB block of noise with a zero run
// of 0..47 bytes, for 1- and 2-byte elements, so that zstd frames come
// out a few bytes shorter than, as long as and longer than the block:
// a frame as long as its block must be stored raw (blosc reads a stream
// of the block's length as raw), and the chunk memcpyed once a raw block
// no longer fits.
func TestBloscZstdEmulatorEdges(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	const cb, runs = 32768, 48 // one blosc block (c-blosc's 32 KiB for zstd at clevel 1)
	data := make([]byte, cb*runs)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	for i := 0; i < runs; i++ {
		// Runs of 0..141 zeros: a byte shuffle halves them (a plane each),
		// and each plane is a zstd block of its own.
		for j := 0; j < 3*i; j++ {
			data[i*cb+1000+j] = 0
		}
	}
	for _, dt := range []zarr.DType{zarr.Uint8, zarr.Uint16} {
		for _, sh := range []zarr.Shuffle{zarr.NoShuffle, zarr.ByteShuffle} {
			t.Run(fmt.Sprintf("%v/%s", dt, zarr.ShuffleName(sh)), func(t *testing.T) {
				r := newBloscZstdEmuRig(t, dt, 1, sh)
				bufs := r.encode(t, data, cb)
				checkBlosc(t, bufs, data, cb, dt.Size(), bloscFormatZstd, sh)
				kinds := map[string]int{}
				for _, b := range bufs {
					switch cs := binary.LittleEndian.Uint32(b[20:]); {
					case b[2]&0x02 != 0:
						kinds["memcpyed"]++
					case cs == cb:
						kinds["raw"]++
					default:
						kinds["zstd"]++
					}
				}
				if kinds["memcpyed"] == 0 || kinds["zstd"] == 0 {
					t.Fatalf("blocks stored %v: the runs no longer straddle the limits", kinds)
				}
			})
		}
	}
	// A compressible block, then a noise block that is stored raw: the
	// raw block must be the shuffled one.
	mixed := append(lz4Fill("xor", 1, 2, cb, 1), data[:cb]...)
	for _, sh := range blosc.Shuffles {
		t.Run("mixed/"+zarr.ShuffleName(sh), func(t *testing.T) {
			r := newBloscZstdEmuRig(t, zarr.Uint16, 1, sh)
			b := r.encode(t, mixed, 2*cb)[0]
			checkBlosc(t, [][]byte{b}, mixed, 2*cb, 2, bloscFormatZstd, sh)
			if b[2]&0x02 != 0 {
				t.Fatal("memcpyed; the test needs a raw block in a compressed chunk")
			}
			if cs := binary.LittleEndian.Uint32(b[binary.LittleEndian.Uint32(b[20:]):]); cs != cb {
				t.Fatalf("block 1 stored in %d bytes, want raw (%d)", cs, cb)
			}
		})
	}
}

// TestBloscZstdEmulatorRandom: random mixes of noise, runs and copies in
// random chunk and element sizes, shuffles and clevels.
func TestBloscZstdEmulatorRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(2, 9))
	dts := []zarr.DType{zarr.Uint8, zarr.Uint16, zarr.Int32, zarr.Float64}
	iters := 12
	if testing.Short() {
		iters = 4
	}
	for i := 0; i < iters; i++ {
		dt := dts[rnd.IntN(len(dts))]
		sh := blosc.Shuffles[rnd.IntN(len(blosc.Shuffles))]
		level := rnd.IntN(10)
		ts := int64(dt.Size())
		cb := max((int64(rnd.IntN(200000))+1)/ts*ts, ts)
		data := make([]byte, cb)
		for off := 0; off < len(data); {
			l := min(len(data)-off, 1+rnd.IntN(3000))
			switch rnd.IntN(3) {
			case 0:
				for j := range l {
					data[off+j] = byte(rnd.Uint32())
				}
			case 1:
				v := byte(rnd.IntN(3))
				for j := range l {
					data[off+j] = v
				}
			default:
				if off > 0 {
					src := rnd.IntN(off)
					for j := range l {
						data[off+j] = data[src+j%(off-src)]
					}
				}
			}
			off += l
		}
		t.Run(fmt.Sprintf("%d/%v/%s/l%d/%d", i, dt, zarr.ShuffleName(sh), level, cb), func(t *testing.T) {
			r := newBloscZstdEmuRig(t, dt, level, sh)
			checkBlosc(t, r.encode(t, data, cb), data, cb, int(ts), bloscFormatZstd, sh)
		})
	}
}

// TestBloscZstdEmulatorRatio: on camera-like uint16 data the shuffle in
// front of zstd is what pays: blosc-zstd with byte or bit shuffle must beat
// plain zstd at the same parse, and the lazy parse (clevel 2) must beat
// the fast one (clevel 1). Logs every ratio.
func TestBloscZstdEmulatorRatio(t *testing.T) {
	const cb, n = 256 << 10, 2
	data := cameraFill(3, cb*n)
	ratios := map[string]float64{}
	for _, level := range []int{1, 2} {
		z := newZstdEmuRig(t, bloscZstdLevel(level))
		zs := checkFrames(t, z.encode(t, data, cb), data, cb)
		ratios[fmt.Sprintf("zstd/l%d", bloscZstdLevel(level))] = float64(len(data)) / float64(zs)
		for _, sh := range blosc.Shuffles {
			r := newBloscZstdEmuRig(t, zarr.Uint16, level, sh)
			tot := checkBlosc(t, r.encode(t, data, cb), data, cb, 2, bloscFormatZstd, sh)
			ratios[fmt.Sprintf("blosc-zstd/%s/l%d", zarr.ShuffleName(sh), level)] = float64(len(data)) / float64(tot)
		}
	}
	names := make([]string, 0, len(ratios))
	for k := range ratios {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n  %-22s %.3f", k, ratios[k])
	}
	t.Logf("camera ratios, %d chunks of %d KiB uint16:%s", n, cb>>10, b.String())
	for _, level := range []int{1, 2} {
		z := ratios[fmt.Sprintf("zstd/l%d", bloscZstdLevel(level))]
		for _, sh := range []string{"byte", "bit"} {
			if b := ratios[fmt.Sprintf("blosc-zstd/%s/l%d", sh, level)]; b <= z {
				t.Errorf("clevel %d: blosc-zstd with %s shuffle %.3f does not beat zstd's %.3f", level, sh, b, z)
			}
		}
	}
	for _, sh := range []string{"byte", "bit", "none"} {
		if f, l := ratios["blosc-zstd/"+sh+"/l1"], ratios["blosc-zstd/"+sh+"/l2"]; l <= f {
			t.Errorf("%s shuffle: lazy parse (clevel 2) %.4f does not beat the fast one (clevel 1) %.4f", sh, l, f)
		}
	}
}

// TestBloscZstdGPUDecodes: every dtype, shuffle and level class on the
// GPU, ragged and tiny shapes; each buffer decodes (strict reader,
// klauspost for each zstd stream) to its chunk.
func TestBloscZstdGPUDecodes(t *testing.T) {
	needGPU(t)
	var cases []lz4Case
	for _, dt := range zarr.DTypes {
		for _, sh := range blosc.Shuffles {
			for _, level := range []int{0, 1, 2, 9} {
				for _, kind := range []string{"zeros", "noise", "xor", "thirds", "camera", "ramp", "runs"} {
					for _, elems := range []int64{50, 1000, 65536/int64(dt.Size()) + 3, 3*65536/int64(dt.Size()) + 999} {
						cases = append(cases, lz4Case{dt, sh, level, kind, elems * int64(dt.Size()), 3})
					}
				}
			}
		}
	}
	checkBloscZstdCases(t, newBloscZstdRig, cases)
}

// TestBloscZstdGPUDeterministic: 10 runs give the same bytes, and a
// chunk's bytes do not depend on its batch.
func TestBloscZstdGPUDeterministic(t *testing.T) {
	needGPU(t)
	for _, sh := range blosc.Shuffles {
		for _, level := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d", zarr.ShuffleName(sh), level), func(t *testing.T) {
				r := newBloscZstdRig(t, zarr.Uint16, level, sh)
				const cb = 1 << 20
				data := append(cameraFill(3, 2*cb), lz4Fill("thirds", 4, 2, cb, 2)...)
				first := r.encode(t, data, cb)
				for run := 1; run < 10; run++ {
					for i, g := range r.encode(t, data, cb) {
						if !bytes.Equal(g, first[i]) {
							t.Fatalf("run %d: chunk %d differs", run, i)
						}
					}
				}
				for i := range first {
					if alone := r.encode(t, data[int64(i)*cb:int64(i+1)*cb], cb); !bytes.Equal(alone[0], first[i]) {
						t.Fatalf("chunk %d encoded alone differs from the batch", i)
					}
				}
				// Same kernels on the CPU emulator, same bytes.
				if _, err := exec.LookPath("g++"); err != nil {
					t.Skip("no g++: GPU buffers not compared with the emulator's")
				}
				for i, e := range newBloscZstdEmuRig(t, zarr.Uint16, level, sh).encode(t, data, cb) {
					if !bytes.Equal(e, first[i]) {
						t.Fatalf("chunk %d: the GPU buffer (%d bytes) differs from the emulator's (%d bytes)", i, len(first[i]), len(e))
					}
				}
			})
		}
	}
}

// TestBloscZstdGPUThroughput prints GB/s and ratio of the blosc-zstd
// kernels alone on device-resident data (1 GiB of 1 MiB uint16 chunks per
// fill), per shuffle and parse.
func TestBloscZstdGPUThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("timing run")
	}
	needGPU(t)
	for _, sh := range blosc.Shuffles {
		for _, level := range []int{1, 2} {
			r := newBloscZstdRig(t, zarr.Uint16, level, sh)
			for _, kind := range []string{"camera", "thirds", "xor", "zeros", "noise"} {
				t.Run(fmt.Sprintf("%s/%d/%s", zarr.ShuffleName(sh), level, kind), func(t *testing.T) {
					const cb, n = 1 << 20, 1024
					full := bytes.Repeat(bzstdFill(kind, 5, 2, cb, 16), n/16)
					best, tot := timeEncode(t, r, full, cb, n)
					fmt.Printf("blosc-zstd shuffle=%s clevel=%d %-8s %6.1f GB/s  ratio %7.3f\n", zarr.ShuffleName(sh), level, kind,
						float64(cb*n)/best.Seconds()/1e9, float64(cb*n)/float64(tot))
				})
			}
		}
	}
}

// TestBloscZstdGPUStore writes stores with codec blosc-zstd through the
// whole GPU stage and pipeline (every shuffle, ragged edges, partial
// epochs, depths 1 and 3), checks every chunk with the strict reader and
// reads the stores back with internal/zarr's reader, which decodes them
// with internal/blosc: that part waits (skips, saying so) until
// internal/blosc reads zstd blocks.
func TestBloscZstdGPUStore(t *testing.T) {
	needGPU(t)
	cases := []struct {
		name   string
		spec   zarr.Spec
		frames int64
	}{
		{"u16 ragged byte", zarr.Spec{Shape: []int64{0, 3, 129, 67}, DType: zarr.Uint16, Chunk: []int64{4, 2, 32, 32}, Shard: []int64{8, 2, 64, 64}, Codec: zarr.CodecBloscZstd, Level: 1}, 37},
		{"u16 bit lazy", zarr.Spec{Shape: []int64{0, 300, 290}, DType: zarr.Uint16, Chunk: []int64{4, 128, 128}, Shard: []int64{16, 256, 384}, Codec: zarr.CodecBloscZstd, Level: 5, Shuffle: zarr.BitShuffle}, 45},
		{"f32 none", zarr.Spec{Shape: []int64{45, 100, 90}, DType: zarr.Float32, Chunk: []int64{4, 32, 32}, Shard: []int64{16, 64, 96}, Codec: zarr.CodecBloscZstd, Level: 2, Shuffle: zarr.NoShuffle}, 45},
		{"u8 memcpy level", zarr.Spec{Shape: []int64{0, 5, 17, 19, 3}, DType: zarr.Uint8, Chunk: []int64{2, 2, 8, 8, 1}, Shard: []int64{4, 4, 16, 16, 3}, Codec: zarr.CodecBloscZstd, Level: 0}, 23},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := make([]byte, tc.frames*tc.spec.FrameBytes())
			ts := tc.spec.DType.Size()
			copy(input, bzstdFill("camera", 1, ts, int64(len(input)/ts*ts), 1))
			var first map[string][]byte
			for depth := 1; depth <= 3; depth += 2 {
				st, err := NewStageOptions(stage.Config{Spec: tc.spec}, Options{})
				if err != nil {
					t.Fatal(err)
				}
				files := writeStore(t, tc.spec, st, depth, input)
				st.Close()
				if first == nil {
					first = files
				} else {
					sameFiles(t, files, first)
				}
			}
			a, err := zarr.Open(memFS(first))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var got bytes.Buffer
			if err := a.ReadAll(&got); errors.Is(err, blosc.ErrNotSupported) {
				t.Skipf("internal/blosc cannot read blosc-zstd yet: %v", err)
			} else if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), input) {
				t.Fatalf("store reads back %d bytes that differ from the %d input bytes", got.Len(), len(input))
			}
		})
	}
}
