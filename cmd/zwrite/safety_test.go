package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// snapshotDir is every path under root with its content ("dir" for
// directories, "link -> target" for symlinks).
func snapshotDir(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		r, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[r] = "link -> " + l
		case d.IsDir():
			out[r] = "dir"
		default:
			b, _ := os.ReadFile(p)
			out[r] = string(b)
		}
		return nil
	})
	return out
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var safetyArgs = []string{"--shape", "0,3,5", "--dtype", "u16", "--chunk", "2,2,2", "--shard", "4,2,4"}

// TestOverwriteRefused: --overwrite takes only a Zarr store whose entries
// are all Zarr's; anything else is refused with what would be lost, exit
// 2, and the folder is left exactly as it was.
func TestOverwriteRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, out string)
		want  string
	}{
		{"group zarr.json beside a user's files", func(t *testing.T, out string) {
			os.MkdirAll(filepath.Join(out, "sub"), 0o755)
			os.WriteFile(filepath.Join(out, "zarr.json"), []byte(`{"zarr_format":3,"node_type":"group"}`), 0o644)
			os.WriteFile(filepath.Join(out, "notes.txt"), []byte("my notes"), 0o644)
			os.WriteFile(filepath.Join(out, "sub", "data.bin"), []byte("data"), 0o644)
		}, "notes.txt"},
		{"empty zarr.json", func(t *testing.T, out string) {
			os.MkdirAll(out, 0o755)
			os.WriteFile(filepath.Join(out, "zarr.json"), nil, 0o644)
			os.WriteFile(filepath.Join(out, "thesis.tex"), []byte("x"), 0o644)
		}, "is not a Zarr store"},
		{"zarr.json is a symlink", func(t *testing.T, out string) {
			os.MkdirAll(out, 0o755)
			real := filepath.Join(filepath.Dir(out), "real.json")
			os.WriteFile(real, []byte(`{"zarr_format":3,"node_type":"array"}`), 0o644)
			os.Symlink(real, filepath.Join(out, "zarr.json"))
		}, "not a regular file"},
		{"a store with a user's folder inside", func(t *testing.T, out string) {
			mustZw(t, randomBytes(8*30, 1), append([]string{"append", "-o", out}, safetyArgs...)...)
			os.MkdirAll(filepath.Join(out, "analysis"), 0o755)
			os.WriteFile(filepath.Join(out, "analysis", "fit.csv"), []byte("1,2"), 0o644)
		}, "analysis/"},
		{"a plain folder", func(t *testing.T, out string) {
			os.MkdirAll(out, 0o755)
			os.WriteFile(filepath.Join(out, "a.txt"), []byte("x"), 0o644)
		}, "no zarr.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out := filepath.Join(base, "out")
			tc.setup(t, out)
			before := snapshotDir(t, base)
			code, _, stderr := zw(t, context.Background(), randomBytes(4*30, 2),
				append([]string{"append", "-o", out, "--overwrite"}, safetyArgs...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "refusing to replace it") {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, exitUsage, tc.want, stderr)
			}
			if after := snapshotDir(t, base); !sameSnapshot(before, after) {
				t.Errorf("the refused run changed the disk:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestOverwriteKeepsOldUntilSuccess: a run that is refused or fails after
// the store was opened leaves the old store as it was; only success
// replaces it.
func TestOverwriteKeepsOldUntilSuccess(t *testing.T) {
	old := randomBytes(8*30, 1)
	tests := []struct {
		name     string
		input    func(out string) (stdin []byte, files []string)
		extra    []string
		wantCode int
		want     string
		wantKept int // frames kept beside the store (0: nothing kept)
	}{
		{"depth 2^62", func(string) ([]byte, []string) { return randomBytes(4*30, 2), nil },
			[]string{"--depth", "4611686018427387904"}, exitUsage, "--depth", 0},
		{"slots beyond memory", func(string) ([]byte, []string) { return randomBytes(4*30, 2), nil },
			[]string{"--shape", "0,65536,32768", "--chunk", "16,64,64", "--shard", "16,64,64", "--depth", "64"}, exitUsage, "use a smaller --depth", 0},
		{"input inside the store", func(out string) ([]byte, []string) {
			return nil, []string{filepath.Join(out, "zarr.json")}
		}, nil, exitUsage, "lies inside the output store", 0},
		{"input ends mid-frame", func(string) ([]byte, []string) { return randomBytes(6*30+7, 3), nil },
			nil, exitFailure, "is unchanged", 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out := filepath.Join(base, "s.zarr")
			mustZw(t, old, append([]string{"append", "-o", out}, safetyArgs...)...)
			before := snapshotDir(t, out)
			stdin, files := tc.input(out)
			args := append(append([]string{"append", "-o", out, "--overwrite"}, safetyArgs...), tc.extra...)
			code, _, stderr := zw(t, context.Background(), stdin, append(args, files...)...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.wantCode, tc.want, stderr)
			}
			if after := snapshotDir(t, out); !sameSnapshot(before, after) {
				t.Errorf("the old store changed:\nbefore %v\nafter  %v", before, after)
			}
			kept := out + ".zwrite-kept-1"
			if tc.wantKept == 0 {
				if ents, _ := os.ReadDir(base); len(ents) != 1 {
					t.Errorf("left beside the store: %v", ents)
				}
				return
			}
			if !strings.Contains(stderr, kept) {
				t.Errorf("stderr does not name the kept store %s:\n%s", kept, stderr)
			}
			if got := mustZw(t, nil, "cat", kept); len(got) != tc.wantKept*30 || got != string(stdin[:len(got)]) {
				t.Errorf("kept store holds %d bytes, want the %d whole frames of the input", len(got), tc.wantKept)
			}
		})
	}
}

// TestOverwriteFromItself: `zwrite cat a.zarr | zwrite append -o a.zarr
// --overwrite` rewrites the store from its own content: the old store is
// read whole (the new one is written beside it) before the swap.
func TestOverwriteFromItself(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a.zarr")
	raw := randomBytes(40*30, 4)
	mustZw(t, raw, append([]string{"append", "-o", out}, safetyArgs...)...)
	pr, pw := io.Pipe()
	catDone := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		code := execute(context.Background(), []string{"cat", out}, stdio{in: nil, out: pw, err: &errb})
		pw.Close()
		catDone <- code
	}()
	var errb bytes.Buffer
	// Small reads, so the two commands interleave.
	code := execute(context.Background(), append(append([]string{"append", "-o", out, "--overwrite", "--codec", "lz4", "--read-size", "97"}, safetyArgs...), "-"),
		stdio{in: pr, out: io.Discard, err: &errb})
	if code != exitOK || <-catDone != exitOK {
		t.Fatalf("append exit %d:\n%s", code, errb.String())
	}
	if got := mustZw(t, nil, "cat", out); got != string(raw) {
		t.Fatalf("the rewritten store holds %d bytes that differ from the original %d", len(got), len(raw))
	}
	if info := mustZw(t, nil, "info", out); !strings.Contains(info, "lz4") {
		t.Errorf("the store was not rewritten with lz4:\n%s", info)
	}
}

// TestOneWriterPerStore: while one append runs, a second on the same
// output is refused (with or without --overwrite), naming the holder; a
// writer killed with SIGKILL leaves a lock the next run takes over with a
// warning.
func TestOneWriterPerStore(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s.zarr")
	args := append([]string{"append", "-o", out}, safetyArgs...)
	a, in, aErr := startPiped(t, args...)
	in.Write(randomBytes(10*30, 5))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "zarr.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first writer did not start; stderr:\n%s", aErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, extra := range [][]string{nil, {"--overwrite"}} {
		code, _, stderr := zw(t, context.Background(), randomBytes(4*30, 6), append(args, extra...)...)
		if code != exitFailure || !strings.Contains(stderr, "being written by another zwrite (pid ") {
			t.Fatalf("second writer %v: exit %d, want %d naming the holder:\n%s", extra, code, exitFailure, stderr)
		}
	}
	in.Close()
	if err := a.Wait(); err != nil {
		t.Fatalf("first writer: %v\n%s", err, aErr)
	}
	if got := mustZw(t, nil, "cat", out); got != string(randomBytes(10*30, 5)) {
		t.Fatal("the store does not hold the first writer's input alone")
	}

	// Killed mid-run: the lock stays on disk but its flock is gone.
	b, in2, bErr := startPiped(t, append(args, "--overwrite")...)
	in2.Write(randomBytes(3*30, 7))
	time.Sleep(200 * time.Millisecond)
	b.Process.Signal(syscall.SIGKILL)
	b.Wait()
	in2.Close()
	_ = bErr
	code, _, stderr := zw(t, context.Background(), randomBytes(4*30, 8), append(args, "--overwrite")...)
	if code != exitOK || !strings.Contains(stderr, "took over the lock left by pid") {
		t.Fatalf("run after a killed writer: exit %d, want 0 with a takeover warning:\n%s", code, stderr)
	}
	if got := mustZw(t, nil, "cat", out); got != string(randomBytes(4*30, 8)) {
		t.Fatal("the store after the takeover does not hold the new input")
	}
}

// TestInterruptSlowStream: on a stream far slower than a batch fills, the
// flush interval commits shard rows as they complete, so Ctrl-C (or
// SIGTERM) after 500 small frames keeps every complete row (31 of 16
// frames), not nothing.
func TestInterruptSlowStream(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "s.zarr")
			const fb = 4 * 4 * 2
			raw := randomBytes(500*fb, 11)
			cmd, in, stderr := startPiped(t, "append", "-o", out, "--shape", "0,4,4", "--dtype", "u16",
				"--chunk", "2,4,4", "--shard", "16,4,4", "--flush-interval", "50ms")
			defer in.Close()
			for f := 0; f < 500; f += 20 { // 25 writes over about half a second
				if _, err := in.Write(raw[f*fb : (f+20)*fb]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The rows must appear without more input (the pipe stays open).
			want := string(raw[:496*fb])
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, got, _ := run(t, nil, "cat", out)
				if code == 0 && string(got) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the store holds %d bytes 10 s after the last frame, want the 496 frames of 31 rows; stderr:\n%s", len(got), stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
				t.Fatalf("exit %v, want %d; stderr:\n%s", err, exitInterrupted, stderr)
			}
			if !strings.Contains(stderr.String(), "holds the first 496 frames") {
				t.Errorf("stderr does not say what was kept:\n%s", stderr)
			}
			if code, got, _ := run(t, nil, "cat", out); code != 0 || string(got) != want {
				t.Fatalf("after the interrupt the store holds %d bytes, want the 496 committed frames", len(got))
			}
			if code, _, errs := run(t, nil, "verify", out); code != 0 {
				t.Fatalf("verify: %s", errs)
			}
		})
	}
}
