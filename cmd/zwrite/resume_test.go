package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

// storeFiles is every file of a store by relative path (zwrite's lock and
// temp files excluded: they are no part of what a reader sees).
func storeFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		out[r] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameStore(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Fatalf("%s: %s missing", what, k)
		} else if !bytes.Equal(g, w) {
			t.Fatalf("%s: %s differs from the one-shot store (%d vs %d bytes)", what, k, len(g), len(w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: %s is not in the one-shot store", what, k)
		}
	}
}

// TestResumeAfterKill: a run stopped at a random point (SIGKILL, SIGINT,
// SIGTERM) and then resumed with the whole input and --skip auto gives a
// store equal, byte for byte, to one uninterrupted run: 60 trials over
// codecs, depths, arrays and images.
func TestResumeAfterKill(t *testing.T) {
	dir := t.TempDir()
	const fb = 24 * 40 * 2
	raw := randomBytes(96*fb, 61)
	// Compressible, like camera data, so that shards are not all raw.
	for i := 0; i < len(raw); i += 2 {
		raw[i+1] &= 0x0f
	}
	in := filepath.Join(dir, "in.raw")
	os.WriteFile(in, raw, 0o644)
	geom := []string{"--shape", "0,24,40", "--dtype", "u16", "--chunk", "2,8,8", "--shard", "8,16,16"}
	r := rand.New(rand.NewPCG(62, 63))
	sigs := []os.Signal{syscall.SIGKILL, os.Interrupt, syscall.SIGTERM}
	trial := 0
	for _, codec := range []string{"none", "zstd", "lz4"} {
		for _, depth := range []string{"1", "3"} {
			for _, image := range []bool{false, true} {
				extra := []string{"--codec", codec, "--depth", depth, "--flush-interval", "20ms"}
				if image {
					extra = append(extra, "--dims", "t,y,x", "--levels", "3")
				}
				one := filepath.Join(dir, fmt.Sprintf("one-%s-%s-%v.zarr", codec, depth, image))
				mustZw(t, nil, append(append(append([]string{"append", "-o", one}, geom...), extra...), in)...)
				want := storeFiles(t, one)
				for k := 0; k < 5; k++ {
					trial++
					sig := sigs[(trial+k)%len(sigs)]
					name := fmt.Sprintf("%s/depth%s/image%v/%v/%d", codec, depth, image, sig, k)
					t.Run(name, func(t *testing.T) {
						out := filepath.Join(dir, fmt.Sprintf("r%d.zarr", trial))
						cmd, pipe, stderr := startPiped(t, append(append([]string{"append", "-o", out}, geom...), extra...)...)
						// Feed a random part of the input slowly, then stop the
						// writer while it runs.
						cut := (r.IntN(85) + 9) * fb // at least one whole shard row, so something commits
						for off := 0; off < cut; off += 7 * fb {
							pipe.Write(raw[off:min(off+7*fb, cut)])
							time.Sleep(5 * time.Millisecond)
						}
						// Once something is committed (the flush interval
						// commits rows of a slow stream), after a random delay.
						deadline := time.Now().Add(10 * time.Second)
						for committedFrames(out, image) == 0 && time.Now().Before(deadline) {
							time.Sleep(2 * time.Millisecond)
						}
						time.Sleep(time.Duration(r.IntN(60)) * time.Millisecond)
						cmd.Process.Signal(sig)
						cmd.Wait()
						pipe.Close()
						code, _, errs := run(t, nil, append(append([]string{"append", "--resume", "--skip", "auto", "-o", out}, "--depth", depth, "--flush-interval", "20ms"), in)...)
						if code != 0 {
							t.Fatalf("resume after %v at byte %d: exit %d:\n%s\nfirst run:\n%s", sig, cut, code, errs, stderr)
						}
						sameStore(t, fmt.Sprintf("resumed after %v at byte %d", sig, cut), storeFiles(t, out), want)
					})
				}
			}
		}
	}
	if trial < 60 {
		t.Fatalf("only %d trials", trial)
	}
}

// committedFrames is shape[0] of the store's (level 0's) zarr.json, 0 when
// there is none yet.
func committedFrames(store string, image bool) int64 {
	p := filepath.Join(store, "zarr.json")
	if image {
		p = filepath.Join(store, "0", "zarr.json")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	m, err := zarr.ParseArray(b)
	if err != nil {
		return 0
	}
	return m.Spec.Shape[0]
}

// TestResumeAfterFullDisk: a run that fails on a full disk, resumed once
// there is room, gives the one-shot store. With the inline schedule
// (--depth 1) rows commit one after another, so some are committed before
// the disk fills and the store is kept. With parallel lanes every row may
// still be half written when the disk fills; then nothing was committed,
// the store must be gone as the message says, and running the same command
// again gives the one-shot store.
func TestResumeAfterFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	const fb = 32 * 32 * 2
	base := t.TempDir()
	raw := randomBytes(80*fb, 64)
	in := filepath.Join(base, "in.raw")
	os.WriteFile(in, raw, 0o644)
	geom := []string{"--shape", "0,32,32", "--dtype", "u16", "--chunk", "4,16,16", "--shard", "8,32,32", "--codec", "lz4"}
	one := filepath.Join(base, "one.zarr")
	mustZw(t, nil, append(append([]string{"append", "-o", one}, geom...), in)...)
	want := storeFiles(t, one)
	for _, depth := range []string{"1", "4"} {
		t.Run("depth "+depth, func(t *testing.T) {
			mnt := filepath.Join(t.TempDir(), "disk")
			os.Mkdir(mnt, 0o755)
			if err := syscall.Mount("zwrite-full", mnt, "tmpfs", 0, "size=96k"); err != nil {
				t.Skipf("cannot mount a tmpfs here: %v", err)
			}
			defer syscall.Unmount(mnt, 0)
			out := filepath.Join(mnt, "s.zarr")
			first := append(append([]string{"append", "--depth", depth, "-o", out}, geom...), in)
			code, _, stderr := zw(t, context.Background(), nil, first...)
			if code != exitFailure || !strings.Contains(stderr, "no space left") {
				t.Fatalf("exit %d, want %d and ENOSPC:\n%s", code, exitFailure, stderr)
			}
			if err := syscall.Mount("zwrite-full", mnt, "tmpfs", syscall.MS_REMOUNT, "size=8m"); err != nil {
				t.Fatalf("grow the tmpfs: %v", err)
			}
			_, statErr := os.Stat(out)
			switch {
			case strings.Contains(stderr, "no frames were committed"):
				if depth == "1" {
					t.Fatalf("the inline schedule commits rows before the disk fills:\n%s", stderr)
				}
				if !errors.Is(statErr, fs.ErrNotExist) {
					t.Fatalf("the message says the store was not kept, but it is there (%v):\n%s", statErr, stderr)
				}
				mustZw(t, nil, first...)
			case strings.Contains(stderr, "holds the first"):
				mustZw(t, nil, "verify", out)
				// The count is what zarr.json names (a full disk can
				// refuse the zarr.json that would name the last rows).
				if n := committedFrames(out, false); !strings.Contains(stderr, fmt.Sprintf("holds the first %d frames", n)) {
					t.Fatalf("the store names %d frames, the message says otherwise:\n%s", n, stderr)
				}
				mustZw(t, nil, "append", "--resume", "--skip", "auto", "-o", out, in)
			default:
				t.Fatalf("the message does not say what the store holds:\n%s", stderr)
			}
			sameStore(t, "after a full disk", storeFiles(t, out), want)
		})
	}
}

// TestResumeRules: resume of a finished store extends it; flags that
// disagree with the store are refused naming the difference; a store
// another writer holds is refused; a store that is not ours is refused.
func TestResumeRules(t *testing.T) {
	dir := t.TempDir()
	const fb = 24 * 40 * 2
	a, b := randomBytes(21*fb, 71), randomBytes(30*fb, 72)
	fa, fab := filepath.Join(dir, "a.raw"), filepath.Join(dir, "ab.raw")
	os.WriteFile(fa, a, 0o644)
	os.WriteFile(fab, append(append([]byte(nil), a...), b...), 0o644)
	geom := []string{"--shape", "0,24,40", "--dtype", "u16", "--chunk", "2,8,8", "--shard", "8,16,16", "--codec", "zstd"}
	one := filepath.Join(dir, "one.zarr")
	mustZw(t, nil, append(append([]string{"append", "-o", one}, geom...), fab)...)

	t.Run("extends a finished store", func(t *testing.T) {
		out := filepath.Join(dir, "ext.zarr")
		mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), fa)...)
		fb2 := filepath.Join(dir, "b.raw")
		os.WriteFile(fb2, b, 0o644)
		mustZw(t, nil, "append", "--resume", "-o", out, fb2)
		sameStore(t, "extended", storeFiles(t, out), storeFiles(t, one))
	})
	t.Run("flags must agree", func(t *testing.T) {
		out := filepath.Join(dir, "flags.zarr")
		mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), fa)...)
		before := storeFiles(t, out)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--chunk", "4,8,8"}, "--chunk 4,8,8 differs from the store's 2,8,8"},
			{[]string{"--codec", "lz4"}, "--codec lz4 differs from the store's zstd"},
			{[]string{"--dtype", "u8"}, "--dtype uint8 differs from the store's uint16"},
			{[]string{"--shape", "0,24,41"}, "--shape 24,41 differs from the store's 24,40"},
			{[]string{"--level", "3"}, "--level 3 differs from the store's 1"},
			{[]string{"--overwrite"}, "--resume continues a store and --overwrite replaces one"},
			{[]string{"--levels", "2"}, "it is an array, not an image; leave out --levels"},
			{[]string{"--dims", "t,y,x"}, "--dims t,y,x differs from the store's"},
		} {
			code, _, stderr := zw(t, context.Background(), nil, append(append([]string{"append", "--resume", "-o", out}, tc.args...), fa)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, exitUsage, tc.want, stderr)
			}
		}
		sameStore(t, "after refused resumes", storeFiles(t, out), before)
	})
	t.Run("one writer", func(t *testing.T) {
		out := filepath.Join(dir, "lock.zarr")
		mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), fa)...)
		cmd, pipe, _ := startPiped(t, "append", "--resume", "-o", out)
		pipe.Write(b[:3*fb])
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(out, ".zwrite-lock")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first resume did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
		code, _, stderr := zw(t, context.Background(), nil, "append", "--resume", "-o", out, fa)
		if code != exitFailure || !strings.Contains(stderr, "being written by another zwrite") {
			t.Errorf("concurrent resume: exit %d:\n%s", code, stderr)
		}
		pipe.Close()
		cmd.Wait()
	})
	t.Run("not ours", func(t *testing.T) {
		out := filepath.Join(dir, "foreign.zarr")
		mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), fa)...)
		os.WriteFile(filepath.Join(out, "notes.txt"), []byte("x"), 0o644)
		code, _, stderr := zw(t, context.Background(), nil, "append", "--resume", "-o", out, fa)
		if code != exitUsage || !strings.Contains(stderr, "notes.txt") {
			t.Errorf("exit %d:\n%s", code, stderr)
		}
		missing := filepath.Join(dir, "missing.zarr")
		code, _, stderr = zw(t, context.Background(), nil, "append", "--resume", "-o", missing, fa)
		if code != exitUsage || !strings.Contains(stderr, "nothing to resume") || !strings.Contains(stderr, "without --resume") {
			t.Errorf("resume of nothing: exit %d:\n%s", code, stderr)
		}
	})
}

// TestResumeInterruptedKeeps: a resume that restarts at frame 0 (the
// store's only row is a partial one) and is interrupted before it commits
// anything leaves the store as it was (zarr.json still names its 5
// frames), and says that it holds them rather than that it was not kept.
func TestResumeInterruptedKeeps(t *testing.T) {
	dir := t.TempDir()
	const fb = 32 * 32 * 2
	in := filepath.Join(dir, "in.raw")
	writeFile(t, in, randomBytes(5*fb, 81))
	out := filepath.Join(dir, "s.zarr")
	mustZw(t, nil, "append", "-o", out, "--shape", "0,32,32", "--dtype", "u16", "--chunk", "1,16,16", "--shard", "8,32,32", "--codec", "lz4", in)
	before := storeFiles(t, out)

	pr, pw := io.Pipe() // input that never comes
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var stderr bytes.Buffer
	code := execute(ctx, []string{"append", "--resume", "-o", out}, stdio{in: pr, out: io.Discard, err: &stderr})
	if code != exitInterrupted || !strings.Contains(stderr.String(), "holds the first 5 frames") {
		t.Fatalf("exit %d, want %d saying the store holds its 5 frames:\n%s", code, exitInterrupted, stderr.String())
	}
	sameStore(t, "after the interrupted resume", storeFiles(t, out), before)
	mustZw(t, nil, "verify", out)
}

// TestResumeImageInterrupted: an image whose levels reduce t, resumed
// and interrupted once level 0 has committed past its old frames, still
// verifies (no lower level keeps a last frame reduced from fewer level-0
// frames than level 0 now holds), and a second resume gives the one-shot
// store.
func TestResumeImageInterrupted(t *testing.T) {
	dir := t.TempDir()
	const fb = 32 * 32 * 2
	raw := randomBytes(40*fb, 91)
	first, all := filepath.Join(dir, "first.raw"), filepath.Join(dir, "all.raw")
	writeFile(t, first, raw[:17*fb])
	writeFile(t, all, raw[:26*fb])
	geom := []string{"--shape", "0,32,32", "--dtype", "u16", "--chunk", "1,16,16", "--shard", "8,32,32", "--codec", "lz4", "--dims", "t,y,x", "--levels", "2", "--downsample-dims", "t,y,x"}
	one := filepath.Join(dir, "one.zarr")
	mustZw(t, nil, append(append([]string{"append", "-o", one}, geom...), all)...)
	out := filepath.Join(dir, "s.zarr")
	mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), first)...)

	pr, pw := io.Pipe()
	go func() {
		pw.Write(raw[17*fb : 26*fb]) // then nothing more until the interrupt
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for committedFrames(out, true) < 24 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	var stderr bytes.Buffer
	code := execute(ctx, []string{"append", "--resume", "--flush-interval", "20ms", "-o", out}, stdio{in: pr, out: io.Discard, err: &stderr})
	pw.Close()
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d:\n%s", code, exitInterrupted, stderr.String())
	}
	if n := committedFrames(out, true); n != 24 || !strings.Contains(stderr.String(), "holds the first 24 frames") {
		t.Fatalf("level 0 names %d frames, want 24 and the message to say so:\n%s", n, stderr.String())
	}
	mustZw(t, nil, "verify", out)
	mustZw(t, nil, "append", "--resume", "--skip", "auto", "-o", out, all)
	sameStore(t, "resumed twice", storeFiles(t, out), storeFiles(t, one))
}

// TestResumeMessagesCountTheArray: after a resume, a partial last frame
// and a surplus over a fixed shape are counted in the array's frames,
// not in this run's (which start at the rewritten row).
func TestResumeMessagesCountTheArray(t *testing.T) {
	dir := t.TempDir()
	const fb = 32 * 32 * 2
	raw := randomBytes(40*fb, 95)
	in20, in := filepath.Join(dir, "in20.raw"), filepath.Join(dir, "in.raw")
	writeFile(t, in20, raw[:20*fb])
	writeFile(t, in, raw[:22*fb+fb/2])
	geom := []string{"--shape", "0,32,32", "--dtype", "u16", "--chunk", "1,16,16", "--shard", "8,32,32", "--codec", "lz4"}
	out := filepath.Join(dir, "s.zarr")
	mustZw(t, nil, append(append([]string{"append", "-o", out}, geom...), in20)...)
	code, _, stderr := zw(t, context.Background(), nil, "append", "--resume", "--skip", "auto", "-o", out, in)
	if code != exitFailure || !strings.Contains(stderr, "bytes into frame 22 ") {
		t.Fatalf("exit %d, want %d naming array frame 22:\n%s", code, exitFailure, stderr)
	}
	if n := committedFrames(out, false); n != 22 {
		t.Fatalf("the store names %d frames, want 22", n)
	}
	writeFile(t, in, raw[:30*fb])
	code, _, stderr = zw(t, context.Background(), nil, "append", "--resume", "--skip", "auto", "--shape", "24,32,32", "-o", out, in)
	if code != exitFailure || !strings.Contains(stderr, "(at least 25)") && !strings.Contains(stderr, "(at least 30)") {
		t.Fatalf("exit %d, want %d counting the array's frames past 24:\n%s", code, exitFailure, stderr)
	}
}
