package gpu

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
)

// TestLZ4Emulator compiles kernels/lz4.cu for the CPU with the fiber
// emulator in kernels/lz4emu (needs g++), runs a representative set of
// cases through the three kernels and decodes the results: the GPU
// kernels' logic is checked on every machine, not only where a GPU is.
func TestLZ4Emulator(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not found; the kernel emulator needs a C++17 compiler")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lz4emu")
	if out, err := exec.Command(gxx, "-O2", "-std=c++17", "-x", "c++", filepath.Join("kernels", "lz4emu", "harness.cu"), "-o", bin).CombinedOutput(); err != nil {
		t.Fatalf("build the emulator: %v\n%s", err, out)
	}
	// Tiny (memcpyed) and unsplit chunks, one block, split blocks with a
	// short unsplit last block, raw streams, memcpyed chunks, long matches.
	cases := "_t2_100,_t2_1536,_t8_4096,noise_t2_65544,thirds_t4_ragged,xor64_t2_ragged,zeros_t1_ragged,camera_t2_131072,ramp_t8_ragged,runs_t1_ragged"
	vec := filepath.Join(dir, "vec")
	if err := os.Mkdir(vec, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "vectors", vec, cases).CombinedOutput(); err != nil {
		t.Fatalf("run the emulator: %v\n%s", err, out)
	}
	checkVectorDir(t, vec, "", 1)
}

// TestLZ4Vectors decodes the outputs that kernels/lz4emu/harness wrote
// into the directory named by ZWRITE_LZ4_VECTORS (all its cases, slow on
// the emulator), and compares the ratio with the CPU backend's encoder
// at clevel ZWRITE_LZ4_CLEVEL (default 1). With ZWRITE_LZ4_VECTORS_REF
// set too, outputs must also be byte-identical to that second directory.
func TestLZ4Vectors(t *testing.T) {
	dir := os.Getenv("ZWRITE_LZ4_VECTORS")
	if dir == "" {
		t.Skip("ZWRITE_LZ4_VECTORS not set (run kernels/lz4emu/harness vectors DIR first)")
	}
	clevel := 1
	if v := os.Getenv("ZWRITE_LZ4_CLEVEL"); v != "" {
		fmt.Sscan(v, &clevel)
	}
	checkVectorDir(t, dir, os.Getenv("ZWRITE_LZ4_VECTORS_REF"), clevel)
}

// checkVectorDir decodes every case of a harness output directory with
// both readers, and logs the ratio next to the CPU encoder's.
func checkVectorDir(t *testing.T, dir, ref string, clevel int) {
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
