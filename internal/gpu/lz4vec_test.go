package gpu

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
)

// TestLZ4Vectors decodes the outputs that kernels/lz4emu/harness wrote
// (on the CPU through the emulator, or on the GPU) into the directory
// named by ZWRITE_LZ4_VECTORS, and compares the ratio with the reference
// CPU encoder. With ZWRITE_LZ4_VECTORS_REF set too, outputs must also be
// byte-identical to that second directory (GPU vs emulator).
func TestLZ4Vectors(t *testing.T) {
	dir := os.Getenv("ZWRITE_LZ4_VECTORS")
	if dir == "" {
		t.Skip("ZWRITE_LZ4_VECTORS not set (run kernels/lz4emu/harness vectors DIR first)")
	}
	ref := os.Getenv("ZWRITE_LZ4_VECTORS_REF")
	clevel := 1
	if v := os.Getenv("ZWRITE_LZ4_CLEVEL"); v != "" {
		fmt.Sscan(v, &clevel)
	}
	f, err := os.Open(filepath.Join(dir, "manifest.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var name string
		var typesize, nbytes, n int
		if _, err := fmt.Sscan(sc.Text(), &name, &typesize, &nbytes, &n); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		t.Run(name, func(t *testing.T) {
			in := mustRead(t, filepath.Join(dir, name+".in"))
			out := mustRead(t, filepath.Join(dir, name+".out"))
			sz := mustRead(t, filepath.Join(dir, name+".sizes"))
			if ref != "" {
				if want := mustRead(t, filepath.Join(ref, name+".out")); !bytes.Equal(out, want) {
					t.Errorf("output differs from %s", ref)
				}
			}
			off, gpuTotal, cpuTotal := 0, 0, 0
			for i := 0; i < n; i++ {
				s := int(binary.LittleEndian.Uint32(sz[4*i:]))
				chunk := in[i*nbytes : (i+1)*nbytes]
				got, err := decodeBloscLZ4(out[off : off+s])
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if !bytes.Equal(got, chunk) {
					t.Fatalf("chunk %d decodes to different bytes", i)
				}
				got, err = blosc.Decode(nil, out[off:off+s])
				if err != nil || !bytes.Equal(got, chunk) {
					t.Fatalf("chunk %d: internal/blosc decoder: %v", i, err)
				}
				off += s
				gpuTotal += s
				cpuTotal += refBloscLZ4Size(chunk, typesize, clevel)
			}
			if off != len(out) {
				t.Fatalf("sizes sum to %d, output has %d", off, len(out))
			}
			t.Logf("%-22s gpu ratio %7.3f  cpu ratio %7.3f  (gpu/cpu size %.3f)", name,
				float64(len(in))/float64(gpuTotal), float64(len(in))/float64(cpuTotal), float64(gpuTotal)/float64(cpuTotal))
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
