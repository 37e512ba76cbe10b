package blosc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// numcodecsScript is the Node side of TestNumcodecs.
const numcodecsScript = "../../scripts/interop/blosc_check.mjs"

// nodeWithNumcodecs returns the node binary and the script's absolute
// path, or skips (fails under ZWRITE_INTEROP=require, as make test sets)
// when Node or the npm packages are missing.
func nodeWithNumcodecs(t *testing.T) (string, string) {
	t.Helper()
	script, err := filepath.Abs(numcodecsScript)
	if err != nil {
		t.Fatal(err)
	}
	required := os.Getenv("ZWRITE_INTEROP") == "require"
	node, err := exec.LookPath("node")
	if err != nil {
		if required {
			t.Fatal("node is not installed; the c-blosc check needs Node.js")
		}
		t.Skip("node is not installed; run `make interop` for the c-blosc check")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "numcodecs")); err != nil {
		if required {
			t.Fatal("scripts/interop/node_modules is missing; run `make interop-deps` (npm ci)")
		}
		t.Skip("scripts/interop/node_modules is missing; run `make interop-deps` for the c-blosc check")
	}
	return node, script
}

type numcodecsDecode struct {
	Blosc string `json:"blosc"`
	Raw   string `json:"raw"`
}

type numcodecsEncode struct {
	Raw       string `json:"raw"`
	CName     string `json:"cname"`
	CLevel    int    `json:"clevel"`
	Shuffle   int    `json:"shuffle"` // numcodecs: 0 none, 1 byte, 2 bit
	BlockSize int    `json:"blocksize"`
	Out       string `json:"out"`
}

type numcodecsManifest struct {
	Decode []numcodecsDecode `json:"decode"`
	Encode []numcodecsEncode `json:"encode"`
}

func numcodecsShuffle(s Shuffle) int {
	return map[Shuffle]int{NoShuffle: 0, ByteShuffle: 1, BitShuffle: 2}[s]
}

// ramp32 is uint32 data that changes slowly: bit shuffle at typesize 4
// then has whole bit planes of zeros.
func ramp32(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+4 <= n; i += 4 {
		binary.LittleEndian.PutUint32(b[i:], uint32(i/4*3+(i/4)%5))
	}
	return b
}

// TestNumcodecs checks the blosc format against c-blosc itself, in both
// directions, through numcodecs' WebAssembly build (scripts/interop):
//
//   - every zwrite buffer (lz4 and zstd; no, byte and bit shuffle;
//     typesizes 1, 2, 3, 4, 8; default and forced block sizes, so leftover
//     blocks and blocks whose element count is not a multiple of 8 occur)
//     decodes with c-blosc to its input;
//   - every c-blosc buffer (the same compressors and filters, clevel 1, 5
//     and 9, c-blosc's own block sizes) decodes with ours to its input;
//     c-blosc writes zstd blocks unsplit, as Geometry says; and our
//     encoder reproduces c-blosc's lz4 buffers byte for byte when given
//     the same typesize and block size.
func TestNumcodecs(t *testing.T) {
	node, script := nodeWithNumcodecs(t)
	dir := t.TempDir()
	inputs := []struct {
		name string
		data []byte
	}{
		{"ramp-1004", fill("ramp", 1004, 1)},
		{"ramp-10003", fill("ramp", 10003, 2)},
		{"ramp-70001", fill("ramp", 70001, 3)},
		{"mixed-140005", fill("mixed", 140005, 4)},
		{"zeros-5000", fill("zeros", 5000, 5)},
		{"ramp32-40000", ramp32(40000)},
	}
	raws := map[string][]byte{}
	for _, in := range inputs {
		raws[in.name+".raw"] = in.data
		if err := os.WriteFile(filepath.Join(dir, in.name+".raw"), in.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var m numcodecsManifest
	var e Encoder
	for _, in := range inputs {
		for _, comp := range Compressors {
			for _, sh := range Shuffles {
				for _, ts := range []int{1, 2, 3, 4, 8} {
					for _, bs := range []int{0, 1000} {
						for _, clevel := range []int{1, 5} {
							if clevel == 5 && ts != 2 {
								continue
							}
							o := Options{TypeSize: ts, CLevel: clevel, Shuffle: sh, BlockSize: bs, Compressor: comp}
							name := fmt.Sprintf("ours-%s-%v-%v-ts%d-bs%d-c%d.blosc", in.name, comp, sh, ts, bs, clevel)
							if err := os.WriteFile(filepath.Join(dir, name), e.Encode(nil, in.data, o), 0o644); err != nil {
								t.Fatal(err)
							}
							m.Decode = append(m.Decode, numcodecsDecode{name, in.name + ".raw"})
						}
					}
				}
				for _, clevel := range []int{1, 5, 9} {
					for _, bs := range []int{0, 1000, 4096} {
						out := fmt.Sprintf("cblosc-%s-%v-%v-bs%d-c%d.blosc", in.name, comp, sh, bs, clevel)
						m.Encode = append(m.Encode, numcodecsEncode{in.name + ".raw", comp.String(), clevel, numcodecsShuffle(sh), bs, out})
					}
				}
			}
		}
	}
	mpath := filepath.Join(dir, "manifest.json")
	writeJSON(t, mpath, m)
	out, err := exec.Command(node, script, mpath).CombinedOutput()
	t.Logf("c-blosc (numcodecs):\n%s", lastLines(string(out), 20))
	if err != nil {
		t.Fatalf("c-blosc disagrees with zwrite's buffers: %v", err)
	}

	var d Decoder
	var same, lz4s, compressed int
	for _, c := range m.Encode {
		b, err := os.ReadFile(filepath.Join(dir, c.Out))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(nil, b)
		if err != nil {
			t.Errorf("%s: %v", c.Out, err)
			continue
		}
		if !bytes.Equal(got, raws[c.Raw]) {
			t.Errorf("%s: decodes to different bytes", c.Out)
			continue
		}
		h, _ := ParseHeader(b)
		comp, _ := h.Compressor()
		if h.Memcpyed() {
			continue
		}
		compressed++
		if b[0] != 2 || b[1] != 1 || comp.String() != c.CName || numcodecsShuffle(h.Shuffle()) != c.Shuffle {
			t.Errorf("%s: header % x names %s, %v", c.Out, b[:4], h.CompressorName(), h.Shuffle())
		}
		if comp == Zstd && h.Split() {
			t.Errorf("%s: c-blosc split a zstd buffer (flags %#x)", c.Out, h.Flags)
		}
		if comp == LZ4 {
			lz4s++
			re := e.Encode(nil, got, Options{TypeSize: h.TypeSize, CLevel: c.CLevel, Shuffle: h.Shuffle(), BlockSize: h.BlockSize})
			if bytes.Equal(re, b) {
				same++
			} else {
				t.Errorf("%s: our encoding of the same input (typesize %d, blocksize %d) differs from c-blosc's at byte %d of %d",
					c.Out, h.TypeSize, h.BlockSize, firstDiff(re, b), len(b))
			}
		}
	}
	t.Logf("%d c-blosc buffers decoded (%d compressed); %d of %d lz4 ones re-encoded byte for byte", len(m.Encode), compressed, same, lz4s)
	if compressed < len(m.Encode)/2 {
		t.Errorf("only %d of %d c-blosc buffers are compressed: the inputs do not exercise the codecs", compressed, len(m.Encode))
	}

	// The check can fail: a buffer paired with the wrong input, and a
	// buffer with one flipped bit in a compressed stream, are both caught.
	bad := numcodecsManifest{Decode: []numcodecsDecode{{m.Decode[1].Blosc, "ramp-10003.raw"}}}
	flipped := e.Encode(nil, raws["ramp-10003.raw"], Options{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle})
	flipped[len(flipped)-40] ^= 0x10
	if err := os.WriteFile(filepath.Join(dir, "flipped.blosc"), flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	bad.Decode = append(bad.Decode, numcodecsDecode{"flipped.blosc", "ramp-10003.raw"})
	writeJSON(t, mpath, bad)
	out, err = exec.Command(node, script, mpath).CombinedOutput()
	if err == nil || strings.Count(string(out), "FAIL decode") != 2 {
		t.Errorf("the c-blosc check did not catch both bad buffers (err %v):\n%s", err, out)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
