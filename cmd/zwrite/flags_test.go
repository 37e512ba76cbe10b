package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/bench"
)

// zw runs zwrite in-process with stdin and returns the exit code, stdout
// and stderr.
func zw(t testing.TB, ctx context.Context, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(ctx, args, stdio{in: bytes.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.zarr")
	if err := os.MkdirAll(filepath.Join(existing, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(raw, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.zarr")
	// base is a valid append command line; cases change one thing.
	base := []string{"append", "-o", out, "--shape", "0,4,4", "--dtype", "u16", "--chunk", "2,2,2"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	without := func(flag string) []string {
		var a []string
		for i := 0; i < len(base); i++ {
			if base[i] == flag {
				i++
				continue
			}
			a = append(a, base[i])
		}
		return a
	}
	tests := []struct {
		name string
		args []string
		want string // substring of stderr
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", with("--bogus"), "unknown flag: --bogus"},
		{"missing output", without("-o"), "--output (-o) is required"},
		{"missing shape", without("--shape"), "--shape is required"},
		{"missing dtype", without("--dtype"), "--dtype is required"},
		{"missing chunk", without("--chunk"), "--chunk is required"},
		{"bad shape", with("--shape", "0,x,4"), `--shape "0,x,4": element 1 ("x") is not a non-negative integer`},
		{"negative shape", with("--shape", "0,-4,4"), "is not a non-negative integer"},
		{"empty shape", with("--shape", ""), "--shape is empty"},
		{"zero inner dim", with("--shape", "0,0,4"), "dimension 1 is 0; only dimension 0 may be 0"},
		{"too many dims", with("--shape", "1,1,1,1,1,1,1,1,1", "--chunk", "1,1,1,1,1,1,1,1,1"), "at most 8 are supported"},
		{"unknown dtype", with("--dtype", "complex64"), `--dtype: unknown dtype "complex64" (want one of uint8`},
		{"chunk rank", with("--chunk", "2,2"), `--chunk "2,2" has 2 dimensions but --shape "0,4,4" has 3`},
		{"chunk zero", with("--chunk", "2,0,2"), "dimension 1 is 0; every chunk dimension must be > 0"},
		{"chunk larger than fixed shape", with("--shape", "3,4,4", "--chunk", "4,2,2"), "chunk[0] = 4 is larger than shape[0] = 3"},
		{"chunk larger than inner shape", with("--chunk", "2,8,2"), "chunk[1] = 8 is larger than shape[1] = 4"},
		{"shard not multiple", with("--shard", "4,3,2"), "shard[1] = 3 is not a positive multiple of chunk[1] = 2"},
		{"shard rank", with("--shard", "4,4"), `--shard "4,4" has 2 dimensions`},
		{"unknown codec", with("--codec", "gzip"), `--codec: unknown codec "gzip" (want none, zstd, lz4 or blosc-zstd)`},
		{"unknown shuffle", with("--codec", "lz4", "--shuffle", "nibble"), `--shuffle: unknown shuffle "nibble" (want byte, bit or none)`},
		{"shuffle with zstd", with("--shuffle", "bit"), "--shuffle bit given with --codec zstd, which has no shuffle filter"},
		{"shuffle with none", with("--codec", "none", "--shuffle", "byte"), "--shuffle byte given with --codec none"},
		{"blosc-zstd level", with("--codec", "blosc-zstd", "--level", "10"), "blosc-zstd (blosc clevel) level 10 out of range 0..9"},
		{"zstd level", with("--level", "40"), "zstd level 40 out of range -7..22"},
		{"lz4 level", with("--codec", "lz4", "--level", "12"), "level 12 out of range 0..9"},
		{"level with none", with("--codec", "none", "--level", "3"), "--level 3 given with --codec none"},
		{"dims count", with("--dims", "t,y"), `--dims "t,y" names 2 dimensions but --shape "0,4,4" has 3`},
		{"dims duplicate", with("--dims", "t,y,y"), `name "y" appears twice`},
		{"unknown backend", with("--backend", "tpu"), `--backend: unknown backend "tpu" (want auto, cpu or gpu)`},
		{"negative depth", with("--depth", "-1"), "--depth -1: want 1 to 64"},
		{"depth beyond the limit", with("--depth", "65"), "--depth 65: want 1 to 64"},
		{"depth 2^62", with("--depth", "4611686018427387904"), "--depth 4611686018427387904: want 1 to 64"},
		{"bad max-pending", with("--max-pending", "lots"), `--max-pending "lots" is not a size`},
		{"max-pending unit", with("--max-pending", "4Q"), `--max-pending "4Q" is not a size`},
		{"zero max-pending", with("--max-pending", "0"), "--max-pending 0: want a positive size"},
		{"depth not a number", with("--depth", "two"), `invalid argument "two" for "--depth"`},
		{"frame overflow", with("--shape", "0,4294967296,4294967296", "--chunk", "1,1,1"), "one frame (all dimensions but the first) would exceed"},
		{"epoch too large", with("--shape", "0,65536,65536", "--chunk", "65536,1,1"), "one epoch (chunk[0] = 65536 frames) would exceed"},
		{"chunk over 2 GiB", with("--shape", "0,65536,65536", "--chunk", "1,65536,65536"), "an inner chunk would exceed 2 GiB"},
		{"index too large", with("--shape", "0,65536,65536", "--chunk", "1,1,1", "--shard", "1,8192,8192"), "inner chunks per shard"},
		{"too many chunks", with("--shape", "0,65536,65536", "--chunk", "1,4,4"), "inner chunks per epoch"},
		{"output exists", append(without("-o"), "-o", existing, raw), "output " + existing + " already exists; pass --overwrite"},
		{"stdin twice", with("-", "-"), "stdin (-) is named twice"},
		{"synth no shape", []string{"synth"}, "--shape is required"},
		{"synth bad fill", []string{"synth", "--shape", "1,2", "--fill", "plaid"}, `--fill: unknown fill "plaid"`},
		{"synth negative frames", []string{"synth", "--shape", "1,2", "--frames", "-3"}, "--frames -3: want 0 or more"},
		{"synth frame too large", []string{"synth", "--shape", "1,4294967296,4294967296"}, "one frame would exceed 1 GiB"},
		{"synth argument", []string{"synth", "--shape", "1,2", "extra"}, `unexpected argument "extra"`},
		{"version argument", []string{"version", "extra"}, `unexpected argument "extra"`},
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil {
		// Epochs of 16 frames × 4 GiB: 64 slots need 8 TiB. Refused by the
		// writer before it allocates, after the store directory was made.
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"depth beyond memory", with("--shape", "0,65536,32768", "--chunk", "16,64,64", "--depth", "64", raw), "64 slots of 128.09 GiB (64.00 GiB of staging, as much again for compressed output, and per-chunk bookkeeping) and 0.01 GiB of shard indexes, but only"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := zw(t, context.Background(), nil, tc.args...)
			if code != exitUsage {
				t.Errorf("zwrite %q: exit %d, want %d; stderr:\n%s", tc.args, code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("zwrite %q: stderr does not contain %q:\n%s", tc.args, tc.want, stderr)
			}
			if !strings.Contains(stderr, "--help' for usage") {
				t.Errorf("zwrite %q: stderr has no help hint:\n%s", tc.args, stderr)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a usage error left %s behind (stat: %v)", out, err)
	}
	if ents, _ := os.ReadDir(existing); len(ents) != 1 {
		t.Errorf("the existing store was touched: %v", ents)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1", 1}, {"123B", 123}, {"64K", 64 << 10}, {"64KiB", 64 << 10}, {"64kb", 64000},
		{"512M", 512 << 20}, {"4GiB", 4 << 30}, {"1.5G", 3 << 29}, {"2GB", 2e9}, {"1T", 1 << 40},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize("x", tc.in)
			if err != nil || got != tc.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "G", "-1", "1X", "1.2.3", "NaN", "1e400"} {
		if got, err := parseSize("x", bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestSynthDeterministic(t *testing.T) {
	for _, f := range bench.Fills {
		fill := f.String()
		t.Run(fill, func(t *testing.T) {
			args := []string{"synth", "--shape", "5,3,7", "--dtype", "u16", "--fill", fill}
			code, a, stderr := zw(t, context.Background(), nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if len(a) != 5*3*7*2 {
				t.Fatalf("synth wrote %d bytes, want %d", len(a), 5*3*7*2)
			}
			_, b, _ := zw(t, context.Background(), nil, append(args, "--frames", "2")...)
			if b != a[:len(b)] || len(b) != 2*3*7*2 {
				t.Errorf("--frames 2 is not the first 2 frames of the same fill")
			}
		})
	}
}
