package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// rawArrayJSON is a sharded zarr.json in zwrite's layout for any geometry,
// valid or not: what a hostile store can claim in a few hundred bytes.
// codec is "" (none) or a JSON codec object.
func rawArrayJSON(shape, chunk, shard []int64, dtype, codec string) []byte {
	js := func(v []int64) string { return strings.ReplaceAll(fmt.Sprint(v), " ", ",") }
	if codec != "" {
		codec = "," + codec
	}
	return fmt.Appendf(nil, `{"zarr_format":3,"node_type":"array","shape":%s,"data_type":%q,
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":%s}},
"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
"codecs":[{"name":"sharding_indexed","configuration":{"chunk_shape":%s,
"codecs":[{"name":"bytes","configuration":{"endian":"little"}}%s],
"index_codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],
"index_location":"end"}}]}`, js(shape), dtype, js(shard), js(chunk), codec)
}

// unshardedJSON is a plain (unsharded) uint8 array of n elements in one
// chunk, stored raw: chunk c/0 is the data itself.
func unshardedJSON(n int) []byte {
	return fmt.Appendf(nil, `{"zarr_format":3,"node_type":"array","shape":[%d],"data_type":"uint8",
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[%d]}},
"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
"codecs":[{"name":"bytes"}]}`, n, n)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace removes path and calls make to put something else there.
func replace(t *testing.T, path string, make func(path string) error) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := make(path); err != nil {
		t.Fatal(err)
	}
}

// hangLimit fails a command that does not come back at all. It is no
// speed requirement: a correct run takes milliseconds.
const hangLimit = 2 * time.Minute

// zwNoHang is zw, failing the test if the command has not returned after
// hangLimit (a FIFO opened for reading blocks forever).
func zwNoHang(t *testing.T, ctx context.Context, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := execute(ctx, args, stdio{in: bytes.NewReader(stdin), out: &out, err: &errb})
		done <- result{code, out.String(), errb.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.stderr
	case <-time.After(hangLimit):
		t.Fatalf("zwrite %q did not return within %v: it hangs", args, hangLimit)
	}
	return 0, "", ""
}

// TestHostileStoreCommands runs cat, verify and info on stores built to
// make a reader crash, hang, exhaust memory or read outside the store.
// Each must exit 1 (a bad store, never a panic's 2) with a message naming
// the store and what is wrong, or do its job where the store is fine.
func TestHostileStoreCommands(t *testing.T) {
	dir := t.TempDir()
	// A file outside every store, that no reader may show.
	secret := []byte("outside the store: not for readers\n")
	secretPath := filepath.Join(dir, "secret")
	writeFile(t, secretPath, secret)
	raw := randomBytes(8*4*6*2, 7)
	base := filepath.Join(dir, "base.zarr")
	mustZw(t, raw, "append", "-o", base, "--shape", "0,4,6", "--dtype", "u16", "--chunk", "2,2,3", "--shard", "4,4,6", "--codec", "zstd", "--progress=false")
	// good copies the appended store to a fresh path.
	good := func(t *testing.T) string {
		store := filepath.Join(t.TempDir(), "s.zarr")
		if err := os.CopyFS(store, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
		return store
	}
	// custom is a store of the given files.
	custom := func(t *testing.T, files map[string][]byte) string {
		store := filepath.Join(t.TempDir(), "s.zarr")
		for name, b := range files {
			writeFile(t, filepath.Join(store, name), b)
		}
		return store
	}
	mkfifo := func(p string) error { return syscall.Mkfifo(p, 0o644) }
	link := func(target string) func(string) error {
		return func(p string) error { return os.Symlink(target, p) }
	}
	// The 64 KiB chunk of a [1, 32768] uint16 array, as a blosc buffer that
	// claims 8 MiB.
	var be blosc.Encoder
	bloscClaim := be.Encode(nil, make([]byte, 8<<20), blosc.Options{TypeSize: 2, CLevel: 1})
	wide := []int64{1, 32768}
	bloscJSON := `{"name":"blosc","configuration":{"cname":"lz4","clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":0}}`

	type want struct {
		code int
		msg  string // in stderr (with the store's path) when code != 0, in stdout when 0
	}
	tests := []struct {
		name              string
		store             func(t *testing.T) string
		cat, verify, info want
	}{
		{name: "zarr.json is a named pipe",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "zarr.json"), mkfifo)
				return s
			},
			cat: want{1, "this is a named pipe"}, verify: want{1, "this is a named pipe"}, info: want{1, "this is a named pipe"}},
		{name: "zarr.json is a directory",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "zarr.json"), func(p string) error { return os.Mkdir(p, 0o755) })
				return s
			},
			cat: want{1, "zarr.json is not a regular file (it is a directory)"}, verify: want{1, "it is a directory"}, info: want{1, "it is a directory"}},
		{name: "zarr.json links outside the store",
			store: func(t *testing.T) string {
				s := good(t)
				outside := filepath.Join(filepath.Dir(s), "outside.json")
				if err := os.Rename(filepath.Join(s, "zarr.json"), outside); err != nil {
					t.Fatal(err)
				}
				replace(t, filepath.Join(s, "zarr.json"), link("../outside.json"))
				return s
			},
			cat: want{1, `symbolic link to "../outside.json" leads outside the store`}, verify: want{1, "leads outside the store"}, info: want{1, "leads outside the store"}},
		{name: "zarr.json over 16 MiB",
			store: func(t *testing.T) string {
				s := good(t)
				js, err := os.ReadFile(filepath.Join(s, "zarr.json"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(s, "zarr.json"), append(js, bytes.Repeat([]byte(" "), zarr.MaxMetadataBytes)...))
				return s
			},
			cat: want{1, "over 16 MiB is refused"}, verify: want{1, "over 16 MiB is refused"}, info: want{1, "over 16 MiB is refused"}},
		{name: "shape whose frames overflow",
			store: func(t *testing.T) string {
				return custom(t, map[string][]byte{"zarr.json": rawArrayJSON([]int64{0, 1 << 62, 4}, []int64{1, 1, 1}, []int64{1, 1, 1}, "uint16", "")})
			},
			cat: want{1, "too large"}, verify: want{1, "too large"}, info: want{1, "too large"}},
		{name: "shard is a named pipe",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "c", "1", "0", "0"), mkfifo)
				return s
			},
			cat: want{1, "c/1/0/0: a store holds regular files only; this is a named pipe"}, verify: want{1, "c/1/0/0: not a regular file (it is a named pipe)"}, info: want{1, "c/1/0/0: not a regular file (it is a named pipe)"}},
		{name: "shard links to a file outside the store",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "c", "0", "0", "0"), link(secretPath))
				return s
			},
			cat: want{1, "leads outside the store"}, verify: want{1, "leads outside the store"}, info: want{1, "leads outside the store"}},
		{name: "chunk links to a file outside the store (absolute)",
			// A raw chunk exactly the file's size: read through the link,
			// it would print the file and verify ok.
			store: func(t *testing.T) string {
				s := custom(t, map[string][]byte{"zarr.json": unshardedJSON(len(secret))})
				replace(t, filepath.Join(s, "c", "0"), link(secretPath))
				return s
			},
			cat: want{1, "leads outside the store"}, verify: want{1, "leads outside the store"}, info: want{1, "leads outside the store"}},
		{name: "chunk links to a file outside the store (relative)",
			store: func(t *testing.T) string {
				s := custom(t, map[string][]byte{"zarr.json": unshardedJSON(len(secret))})
				rel, err := filepath.Rel(filepath.Join(s, "c"), secretPath)
				if err != nil {
					t.Fatal(err)
				}
				replace(t, filepath.Join(s, "c", "0"), link(rel))
				return s
			},
			cat: want{1, "leads outside the store"}, verify: want{1, "leads outside the store"}, info: want{1, "leads outside the store"}},
		{name: "shard links to /dev/zero",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "c", "0", "0", "0"), link("/dev/zero"))
				return s
			},
			cat: want{1, "leads outside the store"}, verify: want{1, "leads outside the store"}, info: want{1, "leads outside the store"}},
		{name: "shard is a device",
			store: func(t *testing.T) string {
				s := good(t)
				p := filepath.Join(s, "c", "0", "0", "0")
				os.Remove(p)
				// /dev/zero's numbers (1, 5); needs CAP_MKNOD.
				if err := syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
					t.Skipf("cannot make a device node here: %v", err)
				}
				return s
			},
			cat: want{1, "this is a character device"}, verify: want{1, "it is a character device"}, info: want{1, "it is a character device"}},
		{name: "shard links to another shard of the store",
			// Links inside the store are followed: its data is what it names.
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "c", "1", "0", "0"), link("../../0/0/0"))
				return s
			},
			cat: want{0, ""}, verify: want{0, "ok: 8 frames"}, info: want{0, "8  (48 B each)"}},
		{name: "index entry claims 64 GiB",
			// A sparse shard: the entry lies inside the file.
			store: func(t *testing.T) string {
				s := custom(t, map[string][]byte{"zarr.json": rawArrayJSON([]int64{4, 6}, []int64{2, 3}, []int64{4, 6}, "uint16", "")})
				empty := zarr.IndexEntry{Offset: zarr.EmptyEntry, Nbytes: zarr.EmptyEntry}
				e := []zarr.IndexEntry{{Offset: 0, Nbytes: 64 << 30}, empty, empty, empty}
				if err := os.MkdirAll(filepath.Join(s, "c", "0"), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(filepath.Join(s, "c", "0", "0"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt(zarr.AppendIndex(nil, e), 64<<30); err != nil {
					t.Skipf("no sparse files here: %v", err)
				}
				return s
			},
			cat: want{1, "index entry 0 claims 68719476736 bytes"}, verify: want{1, "claims 68719476736 bytes"}, info: want{0, "68.72 GB"}},
		{name: "blosc header claims more than the chunk",
			store: func(t *testing.T) string {
				return custom(t, map[string][]byte{
					"zarr.json": rawArrayJSON(wide, wide, wide, "uint16", bloscJSON),
					"c/0/0":     zarr.AppendIndex(bloscClaim, []zarr.IndexEntry{{Offset: 0, Nbytes: uint64(len(bloscClaim))}}),
				})
			},
			cat: want{1, "blosc header says the chunk decodes to 8388608 bytes, want 65536"}, verify: want{1, "blosc header says"}, info: want{0, "1,32768"}},
		{name: "shape 1e18, one shard",
			// A 300-byte zarr.json over one real shard: verify counts the
			// missing shards instead of looking each one up.
			store: func(t *testing.T) string {
				s := filepath.Join(t.TempDir(), "s.zarr")
				mustZw(t, randomBytes(4000, 3), "append", "-o", s, "--shape", "0", "--dtype", "u8", "--chunk", "1000", "--shard", "4000", "--codec", "zstd", "--progress=false")
				writeFile(t, filepath.Join(s, "zarr.json"), rawArrayJSON([]int64{1e18}, []int64{1000}, []int64{4000}, "uint8",
					`{"name":"zstd","configuration":{"level":1,"checksum":false}}`))
				return s
			},
			cat:    want{-1, ""}, // endless: TestInterruptedReads
			verify: want{0, "ok: 1000000000000000000 frames"}, info: want{0, "1000000000000000000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(t)
			for _, c := range []struct {
				cmd string
				w   want
			}{{"cat", tc.cat}, {"verify", tc.verify}, {"info", tc.info}} {
				if c.w.code < 0 {
					continue
				}
				code, out, stderr := zwNoHang(t, context.Background(), nil, c.cmd, store)
				switch {
				case code != c.w.code:
					t.Errorf("%s: exit %d, want %d; stderr:\n%s", c.cmd, code, c.w.code, stderr)
				case code != 0 && (!strings.Contains(stderr, c.w.msg) || !strings.Contains(stderr, store)):
					t.Errorf("%s: stderr does not name the store and say %q:\n%s", c.cmd, c.w.msg, stderr)
				case code == 0 && !strings.Contains(out, c.w.msg):
					t.Errorf("%s: stdout does not say %q:\n%s", c.cmd, c.w.msg, out)
				}
				if bytes.Contains([]byte(out), secret) {
					t.Errorf("%s printed the file outside the store", c.cmd)
				}
			}
		})
	}
}

// interrupter is a stdout or stdin for a command under test: on its first
// call it cancels the command's context (as SIGINT does) and then holds
// the call for a moment, long enough for a command that leaves its read
// running to return meanwhile. It records whether a call was still in
// progress when the command returned.
type interrupter struct {
	cancel   context.CancelFunc
	calls    atomic.Int32
	inFlight atomic.Int32
}

func (i *interrupter) call(p []byte) (int, error) {
	i.inFlight.Add(1)
	defer i.inFlight.Add(-1)
	if i.calls.Add(1) == 1 {
		i.cancel()
		time.Sleep(100 * time.Millisecond)
	}
	clear(p) // as stdin: zeros, like the endless array
	return len(p), nil
}

func (i *interrupter) Write(p []byte) (int, error) {
	i.call(nil)
	return len(p), nil
}
func (i *interrupter) Read(p []byte) (int, error) { return i.call(p) }

// TestInterruptedReads interrupts cat and verify --raw in the middle of an
// endless array (shape 1e18 of fill value): each must return 130, and only
// once its read has stopped: the array is closed after the read, never
// under it (the read then wrote the shard cache of a closed array, or
// used its closed zstd decoder).
func TestInterruptedReads(t *testing.T) {
	store := filepath.Join(t.TempDir(), "huge.zarr")
	writeFile(t, filepath.Join(store, "zarr.json"), rawArrayJSON([]int64{1e18}, []int64{1 << 20}, []int64{1 << 20}, "uint8",
		`{"name":"zstd","configuration":{"level":1,"checksum":false}}`))
	for _, tc := range []struct {
		name string
		args []string
		in   bool // interrupt through stdin rather than stdout
	}{
		{"cat", []string{"cat", store}, false},
		{"verify --raw", []string{"verify", store, "--raw", "-"}, true},
		{"info", []string{"info", store}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			i := &interrupter{cancel: cancel}
			io := stdio{in: bytes.NewReader(nil), out: i, err: new(bytes.Buffer)}
			if tc.in {
				io.in, io.out = i, new(bytes.Buffer)
			}
			if tc.name == "info" {
				cancel() // info writes nothing before it is done
			}
			done := make(chan int, 1)
			go func() { done <- execute(ctx, tc.args, io) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(hangLimit):
				t.Fatalf("zwrite %s did not return within %v of the interrupt", tc.name, hangLimit)
			}
			if n := i.inFlight.Load(); n != 0 {
				t.Errorf("zwrite %s returned while its read was still going (%d calls in progress)", tc.name, n)
			}
			if code != exitInterrupted {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, io.err)
			}
			if s := io.err.(*bytes.Buffer).String(); !strings.Contains(s, "interrupted") {
				t.Errorf("stderr does not say it was interrupted:\n%s", s)
			}
		})
	}
}

// TestInterruptSignal sends SIGINT to the real binary reading an endless
// array: cat writing a pipe, verify --raw reading one. Each must exit 130
// saying it was interrupted. The time it takes is logged; the limit only
// catches a reader that does not stop.
func TestInterruptSignal(t *testing.T) {
	store := filepath.Join(t.TempDir(), "huge.zarr")
	writeFile(t, filepath.Join(store, "zarr.json"), rawArrayJSON([]int64{1e18}, []int64{1 << 20}, []int64{1 << 20}, "uint8", ""))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"cat", []string{"cat", store}},
		{"verify --raw", []string{"verify", store, "--raw", "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := new(bytes.Buffer)
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Keep both pipes moving, and wait until 8 MiB went through
			// one of them: the read is then well under way.
			moved := make(chan struct{})
			var total atomic.Int64
			note := func(n int) {
				// Exactly one call's interval (v-n, v] holds the mark.
				if v := total.Add(int64(n)); v >= 8<<20 && v-int64(n) < 8<<20 {
					close(moved)
				}
			}
			go func() {
				buf := make([]byte, 1<<20)
				for {
					n, err := stdin.Write(buf)
					note(n)
					if err != nil {
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 1<<20)
				for {
					n, err := stdout.Read(buf)
					note(n)
					if err != nil {
						return
					}
				}
			}()
			select {
			case <-moved:
			case <-time.After(hangLimit):
				cmd.Process.Kill()
				t.Fatalf("zwrite %s moved no data; stderr:\n%s", tc.name, stderr)
			}
			start := time.Now()
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(hangLimit):
				cmd.Process.Kill()
				<-done
				t.Fatalf("zwrite %s did not exit within %v of SIGINT; stderr:\n%s", tc.name, hangLimit, stderr)
			}
			stdin.Close()
			t.Logf("zwrite %s exited %v, %v after SIGINT", tc.name, err, time.Since(start))
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Errorf("exit %v, want code %d; stderr:\n%s", err, exitInterrupted, stderr)
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not say it was interrupted:\n%s", stderr)
			}
		})
	}
}
