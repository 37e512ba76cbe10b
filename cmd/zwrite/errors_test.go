package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestRuntimeErrors covers append's failures that are not usage mistakes:
// exit 1, a message that says what happened, and nothing corrupt on disk.
func TestRuntimeErrors(t *testing.T) {
	const fb = 3 * 5 * 2 // frame bytes of --shape N,3,5 --dtype u16
	base := func(store, shape string) []string {
		return []string{"append", "-o", store, "--shape", shape, "--dtype", "u16", "--chunk", "2,2,2", "--shard", "4,2,4"}
	}
	tests := []struct {
		name   string
		shape  string
		input  []byte
		extra  []string // extra args (input files)
		want   []string // substrings of stderr
		frames int64    // whole frames the store must hold afterwards; -1: no store
	}{
		{"partial frame", "0,3,5", randomBytes(7*fb+12, 1), nil,
			[]string{"input ended 12 bytes into frame 7 (frame is 30 bytes); the partial frame was dropped"}, 7},
		{"fixed dim 0 short", "8,3,5", randomBytes(5*fb, 2), nil,
			[]string{"5", "8"}, 5},
		{"fixed dim 0 too long", "4,3,5", randomBytes(6*fb, 3), nil,
			[]string{"4"}, 4},
		{"missing input file", "0,3,5", nil, []string{"/nonexistent/in.raw"},
			[]string{"input /nonexistent/in.raw: no such file or directory"}, -1},
		{"input is a directory", "0,3,5", nil, []string{"/"},
			[]string{"input / is a directory"}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "s.zarr")
			args := append(base(store, tc.shape), tc.extra...)
			code, _, stderr := zw(t, context.Background(), tc.input, args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if tc.frames < 0 {
				if _, err := os.Stat(store); !os.IsNotExist(err) {
					t.Errorf("a failed append left %s behind (stat: %v)", store, err)
				}
				return
			}
			// Whole frames are kept, readable and checked.
			mustZw(t, nil, "verify", store)
			got := mustZw(t, nil, "cat", store)
			if int64(len(got)) != tc.frames*fb || !bytes.Equal([]byte(got), tc.input[:len(got)]) {
				t.Errorf("store holds %d bytes, want the first %d frames (%d bytes) of the input", len(got), tc.frames, tc.frames*fb)
			}
		})
	}
}

// TestInputReadError: a failing input keeps the whole frames read before.
func TestInputReadError(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s.zarr")
	good := randomBytes(5*30+7, 4)
	in := io.MultiReader(bytes.NewReader(good), iotest.ErrReader(errors.New("device went away")))
	var out, errb bytes.Buffer
	code := execute(context.Background(), []string{"append", "-o", store, "--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2"},
		stdio{in: in, out: &out, err: &errb})
	if code != exitFailure || !strings.Contains(errb.String(), "read stdin: device went away; the whole frames read before it are kept: the array holds 5 frames") {
		t.Fatalf("exit %d, want %d and the read error:\n%s", code, exitFailure, errb.String())
	}
	if got := mustZw(t, nil, "cat", store); got != string(good[:5*30]) {
		t.Errorf("store holds %d bytes, want the 5 whole frames", len(got))
	}
}

func TestOutputNotWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created, even by root.
	store := filepath.Join(file, "s.zarr")
	code, _, stderr := zw(t, context.Background(), randomBytes(60, 1),
		"append", "-o", store, "--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2")
	if code != exitFailure || !strings.Contains(stderr, store) || !strings.Contains(stderr, "not a directory") {
		t.Errorf("exit %d, want %d and a message naming %s:\n%s", code, exitFailure, store, stderr)
	}
}

// TestEmptyInput: zero bytes in give a valid empty array (shape[0] = 0).
func TestEmptyInput(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s.zarr")
	mustZw(t, nil, "append", "-o", store, "--shape", "0,3,5", "--dtype", "f32", "--chunk", "2,2,2")
	if got := mustZw(t, nil, "cat", store); got != "" {
		t.Errorf("cat of an empty store gave %d bytes", len(got))
	}
	mustZw(t, nil, "verify", store)
	info := mustZw(t, nil, "info", store)
	if !strings.Contains(info, "0,3,5") && !strings.Contains(info, "[0 3 5]") && !strings.Contains(info, "0 × 3 × 5") {
		t.Errorf("info does not show shape 0,3,5:\n%s", info)
	}
}

// TestOverwrite: an existing store is replaced only with --overwrite.
func TestOverwrite(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s.zarr")
	args := []string{"append", "-o", store, "--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2"}
	first, second := randomBytes(4*30, 1), randomBytes(6*30, 2)
	mustZw(t, first, args...)
	if code, _, stderr := zw(t, context.Background(), second, args...); code != exitUsage || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("second append without --overwrite: exit %d:\n%s", code, stderr)
	}
	if got := mustZw(t, nil, "cat", store); got != string(first) {
		t.Fatal("the refused append changed the store")
	}
	mustZw(t, second, append(args, "--overwrite")...)
	if got := mustZw(t, nil, "cat", store); got != string(second) {
		t.Fatal("--overwrite did not replace the store")
	}
}

// TestGPUUnavailable: asking for the GPU where it cannot run is a usage
// error that says so and suggests the CPU, and writes nothing.
func TestGPUUnavailable(t *testing.T) {
	if err := gpu.Supports(zarr.CodecZstd); err == nil {
		t.Skip("a GPU that runs zstd is present; --backend gpu is valid here")
	}
	store := filepath.Join(t.TempDir(), "s.zarr")
	code, _, stderr := zw(t, context.Background(), randomBytes(60, 1),
		"append", "-o", store, "--backend", "gpu", "--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2")
	if code != exitUsage || !strings.Contains(stderr, "--backend gpu:") || !strings.Contains(stderr, "--backend cpu") {
		t.Errorf("exit %d, want %d and a message suggesting --backend cpu:\n%s", code, exitUsage, stderr)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("a refused append left %s behind (stat: %v)", store, err)
	}
}

// TestVerifyDamaged: verify and cat report a damaged store with exit 1,
// and verify --raw reports a store that differs from its input.
func TestVerifyDamaged(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s.zarr")
	raw := randomBytes(9*30, 5)
	mustZw(t, raw, "append", "-o", store, "--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2", "--shard", "4,4,4")
	other := filepath.Join(dir, "other.raw")
	changed := append([]byte(nil), raw...)
	changed[100] ^= 1
	if err := os.WriteFile(other, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := zw(t, context.Background(), nil, "verify", store, "--raw", other)
	if code != exitFailure || !strings.Contains(stderr, "differs from the raw input at byte 100 (frame 3)") {
		t.Errorf("verify --raw of a different input: exit %d:\n%s", code, stderr)
	}

	shard := filepath.Join(store, "c", "1", "0", "0")
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 0x10 // in the index, before its checksum
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = zw(t, context.Background(), nil, "verify", store)
	if code != exitFailure || !strings.Contains(stderr, "problem: ") || !strings.Contains(stderr, "c/1/0/0") {
		t.Errorf("verify of a damaged shard index: exit %d, want %d naming c/1/0/0:\n%s", code, exitFailure, stderr)
	}
	if code, _, stderr = zw(t, context.Background(), nil, "cat", store); code != exitFailure {
		t.Errorf("cat of a damaged store: exit %d, want %d:\n%s", code, exitFailure, stderr)
	}
}
