package gpu

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// lz4Case is one encode of n chunks through the lz4 codec.
type lz4Case struct {
	dt         zarr.DType
	sh         zarr.Shuffle
	level      int
	kind       string
	chunkBytes int64
	n          int
}

func (c lz4Case) String() string {
	return fmt.Sprintf("%v/%s/l%d/%s/%d", c.dt, zarr.ShuffleName(c.sh), c.level, c.kind, c.chunkBytes)
}

// lz4RigFunc builds an lz4 rig (GPU or emulator) for a dtype, level and
// shuffle.
type lz4RigFunc func(t testing.TB, dt zarr.DType, level int, sh zarr.Shuffle) *codecRig

// checkLZ4MatchesCPU encodes every case with the rig and requires the
// CPU encoder's buffers (internal/blosc, what the CPU backend writes) byte
// for byte, after the strict reader and internal/blosc decode them. Rigs
// are made once per (dtype, level, shuffle).
func checkLZ4MatchesCPU(t *testing.T, newRig lz4RigFunc, cases []lz4Case) {
	rigs := map[[3]int]*codecRig{}
	key := func(c lz4Case) [3]int { return [3]int{int(c.dt), c.level, int(c.sh)} }
	for _, c := range cases {
		if rigs[key(c)] == nil {
			rigs[key(c)] = newRig(t, c.dt, c.level, c.sh)
		}
	}
	var e blosc.Encoder
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			r := rigs[key(c)]
			ts := c.dt.Size()
			data := lz4Fill(c.kind, uint64(c.chunkBytes)+uint64(c.level), ts, c.chunkBytes, c.n)
			bufs := r.encode(t, data, c.chunkBytes)
			checkBlosc(t, bufs, data, c.chunkBytes, ts, bloscFormatLZ4, c.sh)
			for i, got := range bufs {
				want := e.Encode(nil, data[int64(i)*c.chunkBytes:int64(i+1)*c.chunkBytes], blosc.Options{TypeSize: ts, CLevel: c.level, Shuffle: c.sh})
				if !bytes.Equal(got, want) {
					t.Fatalf("chunk %d: GPU buffer of %d bytes differs from the CPU encoder's %d bytes at byte %d", i, len(got), len(want), firstDiff(got, want))
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLZ4EmulatorMatchesCPU runs the lz4 codec's Go launch code and
// kernels on the CPU emulator: every shuffle, element sizes 1..8, the
// level classes (clevel 0 memcpy, 1 and 5, 9 = acceleration 1), tiny
// (memcpyed), unsplit, split-with-short-last-block and near-memcpy-limit
// chunks. Each output must be what the CPU encoder writes, byte for byte.
func TestLZ4EmulatorMatchesCPU(t *testing.T) {
	var cases []lz4Case
	for _, sh := range blosc.Shuffles {
		for _, k := range []string{"zeros", "noise", "xor", "thirds", "camera", "runs", "nearly"} {
			cb := int64(65536 + 2000) // one split block, a short unsplit one
			if sh == zarr.NoShuffle && (k == "camera" || k == "thirds") {
				cb = 20000 // short matches all the way: slow to emulate
			}
			cases = append(cases, lz4Case{zarr.Uint16, sh, 1, k, cb, 2})
		}
		cases = append(cases,
			lz4Case{zarr.Uint8, sh, 1, "ramp", 3000, 2},
			lz4Case{zarr.Uint32, sh, 5, "thirds", 12000, 1},
			lz4Case{zarr.Float64, sh, 9, "xor", 16384, 1},
			lz4Case{zarr.Uint16, sh, 0, "thirds", 70000, 1},
			lz4Case{zarr.Uint16, sh, 1, "xor", 100, 3},  // memcpyed: < 128 bytes
			lz4Case{zarr.Uint16, sh, 1, "xor", 200, 1},  // 100 elements: not split
			lz4Case{zarr.Uint64, sh, 1, "xor", 1000, 1}, // 125 elements: bit shuffle copies
			lz4Case{zarr.Uint16, sh, 9, "runs", 30000, 1},
		)
	}
	checkLZ4MatchesCPU(t, newLZ4EmuRig, cases)
}

// TestLZ4EmulatorRandom is a differential loop: random mixes of noise,
// runs and copies in random chunk sizes, element sizes, shuffles and
// levels; the emulated GPU output must equal the CPU encoder's.
func TestLZ4EmulatorRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 4))
	dts := []zarr.DType{zarr.Uint8, zarr.Uint16, zarr.Int32, zarr.Float64}
	var e blosc.Encoder
	iters := 24
	if testing.Short() {
		iters = 8
	}
	for i := 0; i < iters; i++ {
		dt := dts[rnd.IntN(len(dts))]
		sh := blosc.Shuffles[rnd.IntN(len(blosc.Shuffles))]
		level := rnd.IntN(10)
		ts := int64(dt.Size())
		cb := (int64(rnd.IntN(90000)) + 1) / ts * ts
		cb = max(cb, ts)
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
			r := newLZ4EmuRig(t, dt, level, sh)
			got := r.encode(t, data, cb)[0]
			checkBlosc(t, [][]byte{got}, data, cb, int(ts), bloscFormatLZ4, sh)
			want := e.Encode(nil, data, blosc.Options{TypeSize: int(ts), CLevel: level, Shuffle: sh})
			if !bytes.Equal(got, want) {
				t.Fatalf("GPU buffer of %d bytes differs from the CPU encoder's %d bytes at byte %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// TestLZ4EmulatorEdges are handcrafted chunks at the rules' boundaries,
// each compared with the CPU encoder byte for byte:
//   - runs of 47 lengths in noise, one stream (T=1) or the low byte
//     plane of a split block (T=2): the chunk ends within bytes of the
//     memcpy limit, where c-blosc shrinks LZ4's maxout, stores a stream
//     raw once LZ4's limitedOutput checks fail, and memcpys the chunk once
//     a raw stream no longer fits;
//   - a match ending 13 bytes before the end and another one right after
//     it, found only if the last position LZ4 may test is tested;
//   - chunks whose size is not a multiple of the element size, of 127
//     and 128 bytes, and with a last block of 12 and 13 bytes.
func TestLZ4EmulatorEdges(t *testing.T) {
	type edge struct {
		name       string
		dt         zarr.DType
		sh         zarr.Shuffle
		level      int
		chunkBytes int64
		data       []byte
	}
	var edges []edge
	rnd := rand.New(rand.NewPCG(5, 6))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	const runs = 48
	for _, c := range []struct {
		dt       zarr.DType
		cb, base int // chunk bytes, shortest run
	}{{zarr.Uint8, 4096, 0}, {zarr.Uint8, 700, 0}, {zarr.Uint16, 4096, 0}, {zarr.Uint16, 65536 + 512, 130}} {
		data := noise(c.cb * runs)
		for i := 0; i < runs; i++ {
			chunk := data[i*c.cb : (i+1)*c.cb]
			// The run sits in the first byte plane: low bytes for T=2.
			// A long stream needs a longer run to pay for its literal
			// length bytes (one per 255 literals).
			for j := 0; j < c.base+i; j++ {
				chunk[(100+j)*c.dt.Size()] = 0
			}
		}
		for _, level := range []int{1, 9} {
			edges = append(edges, edge{fmt.Sprintf("limit/%v/%d/l%d", c.dt, c.cb, level), c.dt, zarr.ByteShuffle, level, int64(c.cb), data})
		}
	}
	for _, n := range []int{300, 4096, 5000, 65536} {
		b := noise(n)
		copy(b[n-45:n-13], b[1:33]) // a match ending at len-13 = mfLimitPlusOne-2
		b[n-13] = b[33] ^ 1
		copy(b[n-12:n-8], b[50:54]) // found only by testing len-12
		edges = append(edges, edge{fmt.Sprintf("tail/%d", n), zarr.Uint8, zarr.NoShuffle, 9, int64(n), b})
	}
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Uint32, zarr.Float64} {
		for _, sh := range blosc.Shuffles {
			cb := int64(2*65536 + 1001)
			data := lz4Fill("xor", 3, 1, cb, 1)
			data[cb-1] = 0xEE // the byte past the last whole element
			edges = append(edges, edge{fmt.Sprintf("ragged/%v/%s", dt, zarr.ShuffleName(sh)), dt, sh, 5, cb, data})
		}
	}
	for _, cb := range []int64{127, 128} { // c-blosc memcpys below 128 bytes
		edges = append(edges, edge{fmt.Sprintf("tiny/%d", cb), zarr.Uint8, zarr.ByteShuffle, 1, cb, make([]byte, cb)})
	}
	for _, tail := range []int64{12, 13} { // LZ4_minLength: shorter streams are literals
		edges = append(edges, edge{fmt.Sprintf("short/%d", tail), zarr.Uint8, zarr.ByteShuffle, 1, 65536 + tail, make([]byte, 65536+tail)})
	}
	var e blosc.Encoder
	for _, c := range edges {
		t.Run(c.name, func(t *testing.T) {
			r := newLZ4EmuRig(t, c.dt, c.level, c.sh)
			got := r.encode(t, c.data, c.chunkBytes)
			ts := c.dt.Size()
			checkBlosc(t, got, c.data, c.chunkBytes, ts, bloscFormatLZ4, c.sh)
			memcpyed := 0
			for i, g := range got {
				want := e.Encode(nil, c.data[int64(i)*c.chunkBytes:int64(i+1)*c.chunkBytes], blosc.Options{TypeSize: ts, CLevel: c.level, Shuffle: c.sh})
				if !bytes.Equal(g, want) {
					t.Fatalf("chunk %d: GPU buffer of %d bytes differs from the CPU encoder's %d bytes at byte %d", i, len(g), len(want), firstDiff(g, want))
				}
				if g[2]&0x02 != 0 {
					memcpyed++
				}
			}
			if strings.HasPrefix(c.name, "limit/") && (memcpyed == 0 || memcpyed == len(got)) {
				t.Fatalf("%d of %d chunks memcpyed: the runs no longer straddle the memcpy limit", memcpyed, len(got))
			}
		})
	}
}
