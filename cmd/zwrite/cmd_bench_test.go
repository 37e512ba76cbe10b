package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
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

// TestBenchBloscZstd: bench --codec blosc-zstd --shuffle reaches the
// store's metadata, the chunks and the record.
func TestBenchBloscZstd(t *testing.T) {
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
		{"bad shuffle", []string{"--codec", "lz4", "--shuffle", "sideways"}, "--shuffle"},
		{"shuffle without blosc", []string{"--codec", "zstd", "--shuffle", "bit"}, "no shuffle filter"},
		{"bad codecs", []string{"--codecs", "zstd,gzip"}, "--codecs"},
		{"codecs and codec", []string{"--codecs", "all", "--codec", "lz4"}, "leave out --codec"},
		{"codecs and output", []string{"--codecs", "all", "-o", "x.zarr"}, "discard"},
		{"input missing", []string{"--input", "/nonexistent/frames.raw"}, "--input"},
		{"input and frames", []string{"--input", "/dev/null", "--frames", "3"}, "--frames"},
		{"input and prefill", []string{"--input", "/dev/null", "--prefill"}, "--prefill"},
		{"input not a file", []string{"--input", "/dev/null"}, "not a regular file"},
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

// TestBenchCodecs: --codecs all prints one table (a line per codec and
// shuffle, a column per backend) and, with --json -, one record per run
// as JSON lines, each for the codec and shuffle it names.
func TestBenchCodecs(t *testing.T) {
	code, stdout, stderr := zw(t, context.Background(), nil, "bench",
		"--shape", "0,2,40,30", "--chunk", "4,1,16,16", "--shard", "8,2,32,32", "--frames", "8",
		"--fill", "camera", "--prefill", "--backend", "cpu", "--codecs", "all", "--json", "-", "--progress=false")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	choices := bench.AllCodecs()
	if len(lines) != len(choices) {
		t.Fatalf("%d JSON lines for %d codec choices:\n%s", len(lines), len(choices), stdout)
	}
	for i, line := range lines {
		var rec struct {
			Schema   string `json:"schema"`
			Scenario struct {
				Codec   string `json:"codec"`
				Shuffle string `json:"shuffle"`
			} `json:"scenario"`
			Config struct {
				Backend string `json:"backend"`
			} `json:"config"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not a record: %v\n%s", i, err, line)
		}
		want := choices[i]
		shuffle := ""
		if want.Codec.Blosc() {
			shuffle = zarr.ShuffleName(want.Shuffle)
		}
		if rec.Schema != bench.Schema || rec.Scenario.Codec != want.Codec.String() || rec.Scenario.Shuffle != shuffle || rec.Config.Backend != "cpu" {
			t.Errorf("record %d: %+v, want %s on cpu", i, rec, want)
		}
	}
	for _, want := range []string{"cpu ratio", "cpu GB/s", "lz4", "bit"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("table lacks %q:\n%s", want, stderr)
		}
	}
}

// TestBenchShuffle: --shuffle reaches the store (its blosc metadata).
func TestBenchShuffle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.zarr")
	mustZw(t, nil, "bench", "--shape", "0,8,8", "--chunk", "2,8,8", "--frames", "4", "--codec", "lz4",
		"--shuffle", "bit", "--backend", "cpu", "--progress=false", "--baselines=false", "-o", out)
	meta, err := os.ReadFile(filepath.Join(out, "zarr.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(meta), `"bitshuffle"`) {
		t.Fatalf("zarr.json does not record the bit shuffle:\n%s", meta)
	}
}

// TestBenchCPUProfile: --cpuprofile leaves a Go CPU profile (gzipped
// protobuf) of the run; a path that cannot be created is an error before
// anything runs.
func TestBenchCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "run.prof")
	args := []string{"bench", "--shape", "0,64,64", "--chunk", "4,32,32", "--frames", "64", "--backend", "cpu", "--progress=false", "--baselines=false"}
	mustZw(t, nil, append(args, "--cpuprofile", prof)...)
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("the profile is %d bytes and no gzip stream", len(b))
	}
	code, _, stderr := zw(t, context.Background(), nil, append(args, "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "p"))...)
	if code != exitFailure || !strings.Contains(stderr, "cpu profile") {
		t.Fatalf("exit %d, want %d naming the profile:\n%s", code, exitFailure, stderr)
	}
}

// TestBenchInput: bench --input FILE -o DIR writes exactly what append
// would (the store equals the file), names the input and how it is read,
// and prints the read and write ceilings; a file that is not whole frames
// is a usage error.
func TestBenchInput(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "in.raw")
	code, frames, stderr := zw(t, context.Background(), nil, "synth", "--shape", "13,2,40,30", "--fill", "camera")
	if code != 0 {
		t.Fatalf("synth: %s", stderr)
	}
	if err := os.WriteFile(raw, []byte(frames), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "b.zarr")
	code, stdout, stderr := zw(t, context.Background(), nil, "bench", "--input", raw,
		"--shape", "0,2,40,30", "--chunk", "4,1,16,16", "--shard", "8,2,32,32", "--codec", "zstd",
		"--backend", "cpu", "-o", out, "--json", "-", "--progress=false")
	if code != 0 {
		t.Fatalf("bench --input: exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{"as the OS has it cached", "read  ceiling", "write ceiling", raw} {
		if !strings.Contains(stderr, want) {
			t.Errorf("table lacks %q:\n%s", want, stderr)
		}
	}
	var rec struct {
		Config struct {
			Input string `json:"input"`
		} `json:"config"`
		Result struct {
			Frames int64 `json:"frames"`
		} `json:"result"`
		Baselines struct {
			Read  *bench.IOCeiling `json:"read_ceiling"`
			Write *bench.IOCeiling `json:"write_ceiling"`
		} `json:"baselines"`
	}
	if err := json.Unmarshal([]byte(stdout), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Config.Input != raw || rec.Result.Frames != 13 || rec.Baselines.Read == nil || rec.Baselines.Write == nil {
		t.Fatalf("record %+v", rec)
	}
	mustZw(t, nil, "verify", out, "--raw", raw)

	short := filepath.Join(dir, "short.raw")
	if err := os.WriteFile(short, []byte(frames[:len(frames)-3]), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = zw(t, context.Background(), nil, "bench", "--input", short,
		"--shape", "0,2,40,30", "--chunk", "4,1,16,16", "--backend", "cpu", "--progress=false")
	if code != exitUsage || !strings.Contains(stderr, "whole") {
		t.Fatalf("a file of partial frames: exit %d, %s; want a usage error", code, stderr)
	}
}

// TestBenchS3 runs bench -o s3://… against a real S3 server, synthetic
// and with --input: the record carries the same-run upload ceiling (the
// store's shard objects mirrored by the S3 client alone, with the sink's
// part size, parts and lanes) beside the output rate, the table prints
// it, the store verifies through S3, and nothing of the ceiling is left
// on the server (no object, no unfinished upload).
func TestBenchS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	dir := t.TempDir()
	// uint8 noise that does not compress: 16 MiB shards (two 8 MiB parts
	// and the index: multipart), the last row partial.
	geo := []string{"--shape", "0,1024,1024", "--dtype", "u8", "--chunk", "8,512,512", "--shard", "16,1024,1024", "--codec", "none", "--io-workers", "2"}
	raw := chachaBytes(24<<20, 5)
	rawPath := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"synthetic", []string{"--frames", "24", "--fill", "rand", "--prefill"}},
		{"input", []string{"--input", rawPath}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "s3://bkt/runs/" + tc.name + ".zarr"
			args := append(append([]string{"bench", "-o", url, "--backend", "cpu", "--json", "-", "--progress=false"}, geo...), tc.args...)
			code, stdout, stderr := runS3(t, srv, nil, args...)
			if code != 0 {
				t.Fatalf("zwrite %q: exit %d:\n%s", args, code, stderr)
			}
			var rec bench.Report
			if err := json.Unmarshal(stdout, &rec); err != nil {
				t.Fatalf("record is not JSON: %v\n%s", err, stdout)
			}
			wc := rec.Baselines.Write
			if rec.Config.Sink != url || wc == nil {
				t.Fatalf("record has no upload ceiling: %s", stdout)
			}
			// The ceiling mirrors the store: its 2 shard objects (16 MiB
			// and 8 MiB of chunks, plus their indexes), in 8 MiB parts, 16
			// at once, on the writer's 2 lanes.
			var shardBytes int64
			for _, k := range backingKeys(t, srv, "runs/"+tc.name+".zarr/c") {
				fi, err := os.Stat(filepath.Join(srv.Root, "bkt", "runs", tc.name+".zarr", "c", k))
				if err != nil {
					t.Fatal(err)
				}
				shardBytes += fi.Size()
			}
			if wc.Files != 2 || wc.Bytes != shardBytes || shardBytes < 24<<20 || wc.PartSize != 8<<20 || wc.Parts != 16 ||
				len(wc.Trials) != 1 || wc.BestThreads != 2 || wc.BestGBps <= 0 || !strings.HasPrefix(wc.Path, "s3://bkt/runs/."+tc.name+".zarr.zwrite-ceiling-") {
				t.Errorf("upload ceiling %+v (shard objects: %d bytes)", wc, shardBytes)
			}
			// Measured numbers, so no threshold: each must be there
			// (positive) and be what it says it is.
			if len(wc.Trials) == 1 && (wc.Trials[0].GBps != wc.BestGBps || wc.Trials[0].Seconds <= 0) {
				t.Errorf("upload ceiling trial %+v, best %v GB/s", wc.Trials[0], wc.BestGBps)
			}
			if rec.Result.OutputGBps <= 0 || rec.Baselines.OverWrite <= 0 {
				t.Errorf("output %v GB/s, e2e_over_write %v: want both positive", rec.Result.OutputGBps, rec.Baselines.OverWrite)
			}
			if want := rec.Result.OutputGBps / wc.BestGBps; rec.Baselines.OverWrite != want {
				t.Errorf("e2e_over_write %v, want output rate / ceiling %v", rec.Baselines.OverWrite, want)
			}
			// The table prints the same two numbers (to 3 decimals).
			m := regexp.MustCompile(`write ceiling \(2 shard objects, [^)]*\) ([0-9.]+) GB/s by the S3 client alone.*output rate / ceiling +([0-9.]+)`).FindStringSubmatch(stderr)
			if m == nil {
				t.Errorf("table lacks the upload ceiling and output rate / ceiling:\n%s", stderr)
			} else if m[1] != fmt.Sprintf("%.3f", wc.BestGBps) || m[2] != fmt.Sprintf("%.3f", rec.Baselines.OverWrite) {
				t.Errorf("table says ceiling %s GB/s and output / ceiling %s, the record %v and %v", m[1], m[2], wc.BestGBps, rec.Baselines.OverWrite)
			}
			if (tc.name == "input") != (rec.Baselines.Read != nil) {
				t.Errorf("read ceiling %+v for a %s run", rec.Baselines.Read, tc.name)
			}
			vargs := []string{"verify", url}
			if tc.name == "input" {
				vargs = append(vargs, "--raw", rawPath)
			}
			if code, _, stderr := runS3(t, srv, nil, vargs...); code != 0 {
				t.Fatalf("verify: exit %d:\n%s", code, stderr)
			}
			// What is left under runs/: the store's objects alone.
			for _, k := range backingKeys(t, srv, "runs") {
				if strings.Contains(k, "zwrite-ceiling") || strings.HasPrefix(k, ".") {
					t.Errorf("the ceiling left %s", k)
				}
			}
			core := minio.Core{Client: srv.Client()}
			res, err := core.ListMultipartUploads(context.Background(), "bkt", "", "", "", "", 100)
			if err != nil || len(res.Uploads) != 0 {
				t.Errorf("unfinished uploads: %v, %+v", err, res.Uploads)
			}
		})
	}
	code, _, stderr := runS3(t, srv, nil, "bench", "--frames", "1", "--shape", "0,8,8", "--chunk", "1,8,8", "-o", filepath.Join(dir, "d.zarr"), "--s3-endpoint", srv.Endpoint)
	if code != exitUsage || !strings.Contains(stderr, "--s3-endpoint is for s3:// outputs") {
		t.Errorf("--s3-endpoint with a directory: exit %d:\n%s", code, stderr)
	}
}
