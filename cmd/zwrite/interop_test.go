package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// interopCase is one store for the independent reader: written by the real
// binary from raw bytes, then opened by zarrita (scripts/interop).
type interopCase struct {
	name                string
	shape, chunk, shard string
	dtype               string
	frames              int64
	// source of the raw bytes: "random" (any bit pattern; integer dtypes
	// only, since a reader may canonicalise NaN payloads), "noisy" (small
	// random values: every byte plane but the lowest mostly zero, so the
	// blosc filters and compressors have something to do; integer dtypes)
	// or a synth fill.
	fill string
}

// Every dtype; ragged shapes; chunks of at least 128 bytes (below that
// blosc stores a chunk as is) but for one, some of whose element counts
// are not a multiple of 8 (c-blosc then copies a block instead of bit
// shuffling it).
var interopCases = []interopCase{
	// The acceptance shape: growing dim 0, ragged in every dim,
	// a partial last epoch (37 = 9*4+1) and shard row (37 = 4*8+5).
	{"u16-rank4-growing", "0,3,129,67", "4,2,32,32", "8,2,64,64", "uint16", 37, "noisy"},
	// Rank 1: partial last epoch and shard row.
	{"u8-rank1-growing", "0", "300", "900", "uint8", 1234, "noisy"},
	// Fixed dim 0, written in full; shard larger than the shape in dim 1.
	{"f32-rank2-fixed", "50,33", "8,16", "16,64", "float32", 50, "thirds"},
	// Growing, one frame short of a whole epoch, several shards per row.
	{"i64-rank3-growing", "0,5,7", "3,2,4", "6,4,4", "int64", 20, "noisy"},
	// Fixed dim 0, xor fill of float64; 100 elements per chunk.
	{"f64-rank3-fixed", "9,10,11", "4,5,5", "8,10,10", "float64", 9, "xor"},
	// int16 rank 4 with chunk = shard (one chunk per shard), 64-byte
	// chunks of random bytes: stored as is by blosc.
	{"i16-rank4-chunk-is-shard", "0,2,9,10", "2,1,4,4", "2,1,4,4", "int16", 5, "random"},
	// uint32 with a single epoch that stays partial.
	{"u32-rank2-one-partial-epoch", "0,17", "8,8", "16,16", "uint32", 3, "rand"},
	{"i8-rank3-growing", "0,7,45", "3,4,16", "6,4,32", "int8", 10, "noisy"},
	{"i32-rank2-fixed", "30,100", "7,40", "14,80", "int32", 30, "noisy"},
	// 140 elements per chunk.
	{"u64-rank4-growing", "0,1,9,13", "4,1,5,7", "8,1,5,14", "uint64", 9, "noisy"},
	// An empty array: zero-length input gives shape[0] = 0.
	{"u16-empty", "0,4,4", "2,2,2", "4,4,4", "uint16", 0, "random"},
}

// interopCodecs are the codec and shuffle flags each case is written with.
var interopCodecs = []interopCodec{
	{"none", ""}, {"zstd", ""},
	{"lz4", "byte"}, {"lz4", "bit"}, {"lz4", "none"},
	{"blosc-zstd", "byte"}, {"blosc-zstd", "bit"}, {"blosc-zstd", "none"},
}

type interopCodec struct{ codec, shuffle string }

// flags is the codec's append flags, the suffix it adds to a store's
// name, and the shuffle's name as zarr.json records it (for the
// independent reader; "" without one).
func (cv interopCodec) flags(t *testing.T) (args []string, suffix, zshuffle string) {
	t.Helper()
	args = []string{"--codec", cv.codec}
	suffix = "-" + cv.codec
	if cv.shuffle != "" {
		suffix += "-" + cv.shuffle
		args = append(args, "--shuffle", cv.shuffle)
		sh, err := zarr.ParseShuffle(cv.shuffle)
		if err != nil {
			t.Fatal(err)
		}
		zshuffle = sh.String()
	}
	return args, suffix, zshuffle
}

// interopEntry is one store of the manifest the independent reader
// (scripts/interop/check.mjs) checks.
type interopEntry struct {
	Name    string  `json:"name"`
	Store   string  `json:"store"`
	Raw     string  `json:"raw"`
	Codec   string  `json:"codec"`
	Shuffle string  `json:"shuffle,omitempty"`
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
}

// interopRaw makes the raw input of c.
func interopRaw(t *testing.T, c interopCase) []byte {
	t.Helper()
	if c.fill != "random" && c.fill != "noisy" {
		shape := strings.SplitN(c.shape, ",", 2)
		shape[0] = strconv.FormatInt(c.frames, 10)
		code, out, stderr := run(t, nil, "synth", "--shape", strings.Join(shape, ","), "--dtype", c.dtype, "--fill", c.fill)
		if code != 0 {
			t.Fatalf("synth: exit %d: %s", code, stderr)
		}
		return out
	}
	n := c.frames * frameBytes(t, c.shape, c.dtype)
	raw := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 42))
	if c.fill == "noisy" {
		es := frameBytes(t, "1", c.dtype)
		for i := int64(0); i < n; i += es {
			// 0..1023 plus a slow ramp: low byte noise, second byte
			// structured, the rest zero.
			v := uint64(r.IntN(1024)) + uint64(i/es/64)
			for k := int64(0); k < es; k++ {
				raw[i+k] = byte(v >> (8 * k))
			}
		}
		return raw
	}
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return raw
}

// frameBytes is prod(shape[1:]) * itemsize for a shape flag.
func frameBytes(t testing.TB, shape, dtype string) int64 {
	t.Helper()
	fb := int64(map[string]int{"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4,
		"float32": 4, "uint64": 8, "int64": 8, "float64": 8}[dtype])
	if fb == 0 {
		t.Fatalf("unknown dtype %q", dtype)
	}
	for _, s := range strings.Split(shape, ",")[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		fb *= n
	}
	return fb
}

// TestInterop writes a store for every case, codec and blosc shuffle with
// the real binary, reads each back with our reader (zwrite verify --raw),
// and has zarrita (scripts/interop/check.mjs, numcodecs' c-blosc and
// libzstd in WebAssembly) compare every element with the raw input. The
// zarrita half needs Node and `npm ci` in scripts/interop; `make test`
// provides both and sets ZWRITE_INTEROP=require so that it cannot skip.
func TestInterop(t *testing.T) {
	script, err := filepath.Abs("../../scripts/interop/check.mjs")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var manifest []interopEntry
	for _, c := range interopCases {
		raw := interopRaw(t, c)
		rawPath := filepath.Join(dir, c.name+".raw")
		if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		shape, err := parseDims("shape", c.shape)
		if err != nil {
			t.Fatal(err)
		}
		shape[0] = c.frames
		for _, cv := range interopCodecs {
			cargs, suffix, zshuffle := cv.flags(t)
			name := c.name + suffix
			args := append([]string{"append", "-o", "", "--shape", c.shape, "--dtype", c.dtype,
				"--chunk", c.chunk, "--shard", c.shard}, cargs...)
			store := filepath.Join(dir, name+".zarr")
			args[2] = store
			if code, _, stderr := run(t, nil, append(args, rawPath)...); code != 0 {
				t.Fatalf("%s: zwrite %q: exit %d:\n%s", name, args, code, stderr)
			}
			if code, _, stderr := zw(t, context.Background(), nil, "verify", store, "--raw", rawPath); code != 0 {
				t.Fatalf("%s: our reader: verify --raw: exit %d:\n%s", name, code, stderr)
			}
			manifest = append(manifest, interopEntry{name, name + ".zarr", c.name + ".raw", cv.codec, zshuffle, c.dtype, shape})
		}
	}

	required := os.Getenv("ZWRITE_INTEROP") == "require"
	node, err := exec.LookPath("node")
	if err != nil {
		if required {
			t.Fatal("node is not installed; the interop check needs Node.js")
		}
		t.Skip("node is not installed; run `make interop` for the independent-reader check")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "zarrita")); err != nil {
		if required {
			t.Fatal("scripts/interop/node_modules is missing; run `make interop-deps` (npm ci)")
		}
		t.Skip("scripts/interop/node_modules is missing; run `make interop` for the independent-reader check")
	}
	mb, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(mpath, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, script, mpath).CombinedOutput()
	t.Logf("zarrita check:\n%s", out)
	if err != nil {
		t.Fatalf("the independent reader disagrees with the input: %v", err)
	}

	// The check must be able to fail: a flipped byte in the last element of
	// a raw input, and a flipped bit in a shard index, are both caught.
	first := manifest[0]
	bad := filepath.Join(dir, "flipped.raw")
	raw, err := os.ReadFile(filepath.Join(dir, first.Raw))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x40
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(node, script, filepath.Join(dir, first.Store), bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "element [36,2,128,66] differs") {
		t.Errorf("a flipped last byte went unnoticed (err %v):\n%s", err, out)
	}
	shard := filepath.Join(dir, first.Store, "c", "0", "0", "0", "0")
	sb, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	sb[len(sb)-10] ^= 1
	if err := os.WriteFile(shard, sb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(node, script, filepath.Join(dir, first.Store), filepath.Join(dir, first.Raw)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "index crc32c") {
		t.Errorf("a corrupt shard index went unnoticed (err %v):\n%s", err, out)
	}
}
