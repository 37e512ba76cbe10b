package gpu

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
)

// TestBloscConstantsMatchSource keeps blosc.go's copies of blosc.cuh's
// launch constants in step. It needs no GPU.
func TestBloscConstantsMatchSource(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("kernels", "blosc.cuh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("#define BLOSC_SHUF_CTA %d\n", bloscShufCTA),
		"#define BLOSC_SHUF_TILE (BLOSC_SHUF_CTA * 16)\n",
		fmt.Sprintf("#define BLOSC_BIT_CTA %d\n", bloscBitCTA),
		fmt.Sprintf("#define BLOSC_PLAN_CTA %d\n", bloscPlanCTA),
		fmt.Sprintf("#define BLOSC_NOSHUF %d\n", shufNone),
		fmt.Sprintf("#define BLOSC_BYTESHUF %d\n", shufByte),
		fmt.Sprintf("#define BLOSC_BITSHUF %d\n", shufBit),
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("kernels/blosc.cuh lacks %q: update blosc.go's constants", strings.TrimSpace(want))
		}
	}
}

// kernelGeom is struct Geom of blosc.cuh.
type kernelGeom struct {
	Nbytes, T, Bs, Nsp, Neblock, Nfull, Leftover, Nblocks, Spc, Cstride uint32
}

// TestBloscGeometryAgrees: for many chunk sizes and element sizes, the
// geometry the kernels derive (blosc.cuh blosc_geom, run on the CPU
// emulator) from what the Go codecs pass them agrees with newBloscLayout
// and blosc.Geometry, and, for LZ4, with the buffers the CPU encoder
// writes (block size, split flag, block count, streams per block).
func TestBloscGeometryAgrees(t *testing.T) {
	e := newEmuDevice(t, "lz4")
	out, err := e.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	probe := &Function{Name: "blosc_geom"}
	sizes := []int64{1, 2, 100, 127, 128, 129, 255, 256, 1000, 1536, 4095, 4096, 65535, 65536, 65537,
		3*65536 + 2000, 1 << 20, 1<<20 + 3}
	var enc blosc.Encoder
	for _, comp := range []blosc.Compressor{blosc.LZ4, blosc.Zstd} {
		for _, ts := range []int{1, 2, 4, 8, 16, 32} {
			for _, nb := range sizes {
				if nb < int64(ts) {
					continue
				}
				o := blosc.Options{TypeSize: ts, CLevel: 5, Shuffle: blosc.ByteShuffle, Compressor: comp}
				name := fmt.Sprintf("%v/t%d/%d", map[blosc.Compressor]string{blosc.LZ4: "lz4", blosc.Zstd: "zstd"}[comp], ts, nb)
				t.Run(name, func(t *testing.T) {
					l := newBloscLayout(o, nb)
					bs, split := blosc.Geometry(o, int(nb))
					if l.bs != int64(max(bs, 1)) || l.split != split {
						t.Fatalf("layout bs %d split %v; blosc.Geometry says %d, %v", l.bs, l.split, bs, split)
					}
					if comp == blosc.Zstd && split {
						t.Fatal("zstd blocks split")
					}
					if err := e.Launch(probe, Dim3{X: 1}, Dim3{X: 32}, 0, uint32(nb), uint32(ts), uint32(l.bs), flag32(l.split), out); err != nil {
						t.Fatal(err)
					}
					raw := make([]byte, 40)
					if err := e.CopyDtoH(raw, out); err != nil {
						t.Fatal(err)
					}
					var g kernelGeom
					binary.Decode(raw, binary.LittleEndian, &g)
					if int64(g.Bs) != l.bs || int64(g.Nsp) != l.nsp || int64(g.Nblocks) != l.nblocks ||
						int64(g.Spc) != l.spc || int64(g.Cstride) != l.cstride || int64(g.Nfull)*l.bs+int64(g.Leftover) != nb ||
						g.Neblock != g.Bs/g.Nsp {
						t.Fatalf("kernel geometry %+v; Go layout %+v", g, l)
					}
					if comp != blosc.LZ4 || nb < 128 {
						return // the CPU encoder memcpys tiny chunks, and has no zstd yet
					}
					data := make([]byte, nb)
					for i := range data {
						data[i] = byte(i / 64 % 5) // compressible for any element size
					}
					buf := enc.Encode(nil, data, o)
					if buf[2]&0x02 != 0 {
						t.Fatalf("CPU buffer memcpyed; the geometry check needs a compressed one")
					}
					hbs := int64(binary.LittleEndian.Uint32(buf[8:]))
					dontSplit := buf[2]&0x10 != 0
					if hbs != l.bs || dontSplit == l.split {
						t.Fatalf("CPU buffer: blocksize %d, DONT_SPLIT %v; layout %+v", hbs, dontSplit, l)
					}
					first := int64(binary.LittleEndian.Uint32(buf[16:]))
					if first != 16+4*l.nblocks {
						t.Fatalf("CPU buffer: first block at %d, so %d blocks; layout has %d", first, (first-16)/4, l.nblocks)
					}
					// Count the streams of block 0 (a full block unless the
					// chunk is one short block).
					end := int64(len(buf))
					if l.nblocks > 1 {
						end = int64(binary.LittleEndian.Uint32(buf[20:]))
					}
					ns := int64(0)
					for p := first; p < end; ns++ {
						p += 4 + int64(int32(binary.LittleEndian.Uint32(buf[p:])))
					}
					want := l.nsp
					if l.nblocks == 1 && nb%l.bs != 0 {
						want = 1
					}
					if ns != want {
						t.Fatalf("CPU buffer: block 0 has %d streams; layout says %d", ns, want)
					}
				})
			}
		}
	}
}
