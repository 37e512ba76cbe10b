package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/zarr"
)

// rtCase is one append → cat round trip.
type rtCase struct {
	name                string
	shape, chunk, shard string
	dtype, codec        string
	frames              int64
	readSize            string // the writer's Write size; "" = default
}

func (c rtCase) args(store string) []string {
	a := []string{"append", "-o", store, "--shape", c.shape, "--dtype", c.dtype,
		"--chunk", c.chunk, "--codec", c.codec, "--progress=false"}
	if c.shard != "" {
		a = append(a, "--shard", c.shard)
	}
	if c.readSize != "" {
		a = append(a, "--read-size", c.readSize)
	}
	return a
}

func roundTripCases() []rtCase {
	var cases []rtCase
	// Every dtype, rank 3, ragged in every dim, growing, partial last
	// epoch (11 = 2*4+3) and shard row.
	for _, dt := range []string{"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"} {
		cases = append(cases, rtCase{"dtype-" + dt, "0,5,9", "4,2,4", "8,4,8", dt, "zstd", 11, ""})
	}
	// Ranks 1..5, each codec, growing and fixed dim 0.
	ranks := []struct{ shape, chunk, shard string }{
		{"0", "7", "21"},
		{"0,13", "3,5", "6,10"},
		{"0,6,11", "2,4,3", "4,4,6"},
		{"0,3,5,7", "2,2,2,3", "4,2,4,6"},
		{"0,2,3,4,5", "2,1,2,3,2", "2,2,2,3,4"},
	}
	for r, g := range ranks {
		for _, codec := range []string{"none", "zstd", "lz4"} {
			for _, fixed := range []bool{false, true} {
				frames := int64(17)
				shape := g.shape
				kind := "growing"
				if fixed {
					shape = "17" + shape[1:]
					kind = "fixed"
				}
				cases = append(cases, rtCase{fmt.Sprintf("rank%d-%s-%s", r+1, codec, kind), shape, g.chunk, g.shard, "uint16", codec, frames, ""})
			}
		}
	}
	// Uneven writes into the writer: 1 byte, primes, all at once.
	for _, rs := range []string{"1", "7", "4093", "1GiB"} {
		cases = append(cases, rtCase{"write-size-" + rs, "0,3,129,67", "4,2,32,32", "8,2,64,64", "uint16", "lz4", 9, rs})
	}
	// Fixed dim 0 with exactly one shard row, shard = chunk by default.
	cases = append(cases, rtCase{"shard-default", "8,16,16", "4,8,8", "", "int32", "zstd", 8, ""})
	return cases
}

// TestRoundTrip appends random frames in-process and reads them back with
// zwrite cat and zwrite verify --raw.
func TestRoundTrip(t *testing.T) {
	for i, c := range roundTripCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			store := filepath.Join(dir, "s.zarr")
			raw := randomBytes(c.frames*frameBytes(t, c.shape, c.dtype), uint64(i))
			mustZw(t, raw, c.args(store)...)
			got := mustZw(t, nil, "cat", store)
			if !bytes.Equal([]byte(got), raw) {
				t.Fatalf("cat returned %d bytes that differ from the %d input bytes", len(got), len(raw))
			}
			rawPath := filepath.Join(dir, "in.raw")
			if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			mustZw(t, nil, "verify", store, "--raw", rawPath)
		})
	}
}

// TestPipeFeeding feeds the real binary through a pipe in uneven pieces
// (1 byte, primes, all at once), from stdin and as "-".
func TestPipeFeeding(t *testing.T) {
	const shape, chunk, shard = "0,3,129,67", "4,2,32,32", "8,2,64,64"
	raw := randomBytes(13*3*129*67*2, 7)
	for _, piece := range []int{1, 13, 4093, 65537, len(raw)} {
		t.Run(fmt.Sprintf("piece-%d", piece), func(t *testing.T) {
			if piece == 1 && testing.Short() {
				t.Skip("1-byte pipe writes are slow; skipped with -short")
			}
			t.Parallel()
			dir := t.TempDir()
			store := filepath.Join(dir, "s.zarr")
			args := []string{"append", "-o", store, "--shape", shape, "--dtype", "u16", "--chunk", chunk, "--shard", shard}
			if piece%2 == 1 {
				args = append(args, "-")
			}
			cmd, in, stderr := startPiped(t, args...)
			for off := 0; off < len(raw); off += piece {
				if _, err := in.Write(raw[off:min(off+piece, len(raw))]); err != nil {
					t.Fatalf("write to zwrite's stdin: %v; stderr:\n%s", err, stderr.String())
				}
			}
			in.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("zwrite append: %v:\n%s", err, stderr.String())
			}
			code, got, errs := run(t, nil, "cat", store)
			if code != 0 || !bytes.Equal(got, raw) {
				t.Fatalf("cat: exit %d, %d bytes (want %d identical):\n%s", code, len(got), len(raw), errs)
			}
		})
	}
}

// TestAcceptance is issue 3's acceptance command, for each codec, run by
// a shell exactly as written there.
func TestAcceptance(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, codec := range []string{"none", "zstd", "lz4"} {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := `set -euo pipefail
head -c $((37*3*129*67*2)) /dev/urandom > f.raw && zwrite append -o s.zarr --shape 0,3,129,67 --dtype uint16 --chunk 4,2,32,32 --shard 8,2,64,64 --codec ` + codec + ` f.raw && zwrite cat s.zarr | cmp - f.raw`
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			// The summary line goes to stderr; nothing else is printed.
			if n := strings.Count(strings.TrimSpace(string(out)), "\n"); n > 0 {
				t.Errorf("append printed more than one line:\n%s", out)
			}
		})
	}
}

// TestInterrupt sends SIGINT (and SIGTERM) to append while it reads an
// open pipe: it must exit 130 within 2 s with a message, and leave a store
// that verifies and holds a prefix of the input.
func TestInterrupt(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { testInterrupt(t, sig) })
	}
}

// startPiped starts the zwrite binary with args, its stdin a pipe the
// caller writes and closes, its stderr collected for failure messages
// ("stderr" in the messages).
func startPiped(t *testing.T, args ...string) (*exec.Cmd, io.WriteCloser, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, in, stderr
}

func testInterrupt(t *testing.T, sig os.Signal) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s.zarr")
	// Frames of 64 KiB, shard rows of 8 frames. The writer kicks 32 MiB
	// batches, so 80 MiB gives two delivered batches and a third pending.
	spec := zarr.Spec{Shape: []int64{1281, 128, 256}, DType: zarr.Uint16}
	raw := make([]byte, 1280*spec.FrameBytes()+100)
	if err := bench.FillFrames(bench.FillRand, &spec, 0, raw[:1280*spec.FrameBytes()]); err != nil {
		t.Fatal(err)
	}
	cmd, in, stderr := startPiped(t, "append", "-o", store, "--shape", "0,128,256", "--dtype", "u16",
		"--chunk", "4,64,64", "--shard", "8,128,256", "--codec", "zstd")
	defer in.Close()
	// All of it and a partial frame; the pipe stays open, so zwrite is
	// blocked reading when the signal comes.
	if _, err := in.Write(raw); err != nil {
		t.Fatal(err)
	}
	// Wait until the first shard rows are on disk, so there is something
	// to keep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ents, _ := os.ReadDir(filepath.Join(store, "c")); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shard appeared within 10 s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	var err error
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("zwrite did not exit within 2 s of %v; stderr:\n%s", sig, stderr.String())
	}
	t.Logf("exited %v after %v in %v; stderr:\n%s", err, sig, time.Since(start), stderr.String())
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want code %d", err, exitInterrupted)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
	}
	// What it left verifies, and holds a prefix of the input.
	if code, _, errs := run(t, nil, "verify", store); code != 0 {
		t.Fatalf("verify after interrupt: exit %d:\n%s", code, errs)
	}
	code, got, errs := run(t, nil, "cat", store)
	if code != 0 {
		t.Fatalf("cat after interrupt: exit %d:\n%s", code, errs)
	}
	if len(got) == 0 || !bytes.Equal(got, raw[:len(got)]) {
		t.Fatalf("the store holds %d bytes, not a non-empty prefix of the input", len(got))
	}
}
