package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// TestBenchCommand runs `zwrite bench` on a tiny custom geometry: the JSON
// record on stdout parses and carries the schema, the table goes to
// stderr, and the store written with -o verifies.
func TestBenchCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.zarr")
	code, stdout, stderr := zw(t, context.Background(), nil, "bench",
		"--shape", "0,2,40,30", "--chunk", "4,1,16,16", "--shard", "8,2,32,32",
		"--frames", "10", "--codec", "lz4", "--prefill", "--backend", "cpu",
		"--write-bytes", "3000", "-o", out, "--json", "-", "--progress=false")
	if code != 0 {
		t.Fatalf("bench: exit %d:\n%s", code, stderr)
	}
	var rec struct {
		Schema string `json:"schema"`
		Result struct {
			Frames    int64   `json:"frames"`
			InputGBps float64 `json:"input_gbps"`
		} `json:"result"`
		Baselines struct {
			OverCeiling float64 `json:"e2e_over_ceiling"`
		} `json:"baselines"`
	}
	if err := json.Unmarshal([]byte(stdout), &rec); err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(rec.Schema, "zwrite-bench/") || rec.Result.Frames != 10 || rec.Result.InputGBps <= 0 || rec.Baselines.OverCeiling <= 0 {
		t.Fatalf("record %+v", rec)
	}
	if !strings.Contains(stderr, "end-to-end / ceiling") {
		t.Fatalf("no table on stderr:\n%s", stderr)
	}
	a, err := zarr.Open(os.DirFS(out))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if r, err := a.Verify(zarr.VerifyOptions{}); err != nil || r.Frames != 10 {
		t.Fatalf("verify: %v, %d frames, %v", err, r.Frames, r.Problems)
	}
}

// TestBenchShuffle: bench --shuffle reaches the store's metadata, the
// chunks and the record.
func TestBenchShuffle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.zarr")
	stdout := mustZw(t, nil, "bench", "--shape", "0,40,30", "--chunk", "4,16,16", "--frames", "8",
		"--codec", "blosc-zstd", "--shuffle", "bit", "--backend", "cpu", "--progress=false",
		"--baselines=false", "-o", out, "--json", "-")
	var rec struct {
		Scenario struct {
			Codec, Shuffle string
		} `json:"scenario"`
	}
	if err := json.Unmarshal([]byte(stdout), &rec); err != nil || rec.Scenario.Codec != "blosc-zstd" || rec.Scenario.Shuffle != "bit" {
		t.Fatalf("record %+v (%v)", rec, err)
	}
	a, err := zarr.Open(os.DirFS(out))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if m := a.Meta; m.Spec.Codec != zarr.CodecBloscZstd || m.BloscShuffle != zarr.BitShuffle || m.BloscCName != "zstd" {
		t.Fatalf("metadata: %s", m.CompressorString())
	}
	if r, err := a.Verify(zarr.VerifyOptions{}); err != nil || r.Frames != 8 {
		t.Fatalf("verify: %v, %d frames, %v", err, r.Frames, r.Problems)
	}
}

// TestBenchOverwrite: --overwrite replaces an old store but never deletes
// a directory that is not one.
func TestBenchOverwrite(t *testing.T) {
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"bench", "--shape", "0,8,8", "--chunk", "2,8,8", "--frames", "4",
			"--backend", "cpu", "--progress=false", "--baselines=false", "-o", out}, extra...)
	}
	store := filepath.Join(dir, "s.zarr")
	mustZw(t, nil, args(store)...)
	if code, _, stderr := zw(t, context.Background(), nil, args(store)...); code != exitUsage || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("second run without --overwrite: exit %d, %s", code, stderr)
	}
	mustZw(t, nil, args(store, "--overwrite")...)
	other := filepath.Join(dir, "notes")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(other, "keep.txt")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := zw(t, context.Background(), nil, args(other, "--overwrite")...); code != exitUsage || !strings.Contains(stderr, "not a Zarr store") {
		t.Fatalf("--overwrite on a plain directory: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a plain directory lost its file: %v", err)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"--scenario", "huge"}, "medfmt"},
		{"shape without chunk", []string{"--shape", "0,4,4"}, "--chunk"},
		{"bad codec", []string{"--codec", "gzip"}, "codec"},
		{"bad fill", []string{"--fill", "stripes"}, "fill"},
		{"frames and duration", []string{"--frames", "4", "--duration", "1s"}, "pick one"},
		{"warmup alone", []string{"--warmup", "1s"}, "--duration"},
		{"zero frames", []string{"--frames", "0"}, "--frames"},
		{"bad write size", []string{"--write-bytes", "lots"}, "write-bytes"},
		{"bad level", []string{"--level", "99"}, "level"},
		{"bad backend", []string{"--backend", "tpu"}, "backend"},
		{"bad shuffle", []string{"--codec", "lz4", "--shuffle", "nibble"}, "--shuffle: unknown shuffle"},
		{"shuffle with zstd", []string{"--codec", "zstd", "--shuffle", "byte"}, "--shuffle byte given with --codec zstd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := zw(t, context.Background(), nil, append([]string{"bench"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, exitUsage, tc.want)
			}
		})
	}
}
