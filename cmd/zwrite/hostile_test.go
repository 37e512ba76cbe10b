//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
			cat: want{1, "is absolute: readers follow only relative links that stay inside the store"}, verify: want{1, "is absolute"}, info: want{1, "is absolute"}},
		{name: "chunk links to a file outside the store (absolute)",
			// A raw chunk exactly the file's size: read through the link,
			// it would print the file and verify ok.
			store: func(t *testing.T) string {
				s := custom(t, map[string][]byte{"zarr.json": unshardedJSON(len(secret))})
				replace(t, filepath.Join(s, "c", "0"), link(secretPath))
				return s
			},
			cat: want{1, "is absolute"}, verify: want{1, "is absolute"}, info: want{1, "is absolute"}},
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
			cat: want{1, `symbolic link to "/dev/zero" is absolute`}, verify: want{1, "is absolute"}, info: want{1, "is absolute"}},
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

// TestStoreFS checks the file system the reading commands open stores
// through, entry by entry: what it opens, what it refuses and why.
func TestStoreFS(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s.zarr")
	writeFile(t, filepath.Join(dir, "outside"), []byte("outside"))
	writeFile(t, filepath.Join(store, "c", "0"), []byte("chunk"))
	for name, target := range map[string]string{
		"c/in":       "0",
		"c/up":       "../../outside",
		"c/abs":      filepath.Join(dir, "outside"),
		"c/dev":      "/dev/zero",
		"c/broken":   "nothing",
		"c/toFifo":   "fifo",
		"linkdir":    "c",
		"escapedir":  "..",
		"c/loop":     "loop",
		"c/absInner": filepath.Join(store, "c", "0"),
	} {
		if err := os.Symlink(target, filepath.Join(store, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(store, "c", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(store)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fsys := storeFS{root}
	tests := []struct {
		name     string
		want     string // error fragment; "" = opens
		notExist bool   // the error must be fs.ErrNotExist (a missing shard)
		data     string
	}{
		{name: "c/0", data: "chunk"},
		{name: "c", want: ""},
		{name: "c/in", data: "chunk"},
		{name: "linkdir/0", data: "chunk"},
		{name: "c/up", want: `symbolic link to "../../outside" leads outside the store: readers follow only relative links`},
		{name: "c/abs", want: "is absolute: readers follow only relative links"},
		{name: "c/absInner", want: "is absolute"},
		{name: "c/dev", want: `symbolic link to "/dev/zero" is absolute`},
		{name: "escapedir/outside", want: `escapedir: symbolic link to ".." leads outside the store`},
		{name: "c/fifo", want: "a store holds regular files only; this is a named pipe"},
		{name: "c/toFifo", want: "this is a named pipe"},
		{name: "c/broken", notExist: true},
		{name: "c/missing", notExist: true},
		{name: "c/loop", want: `symbolic link to "loop": too many levels of symbolic links`},
		{name: "../s.zarr/c/0", want: "invalid argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f fs.File
			var err error
			zwNoHangFn(t, "open "+tc.name, func() { f, err = fsys.Open(tc.name) })
			_, serr := fsys.Stat(tc.name)
			switch {
			case tc.notExist:
				if !errors.Is(err, fs.ErrNotExist) || !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("Open: %v, Stat: %v; want fs.ErrNotExist from both", err, serr)
				}
			case tc.want != "":
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Open: %v, want an error containing %q", err, tc.want)
				}
				if serr == nil {
					t.Errorf("Stat accepts what Open refuses")
				}
				if errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Open: %v is fs.ErrNotExist, which readers take for a missing shard", err)
				}
			default:
				if err != nil || serr != nil {
					t.Fatalf("Open: %v, Stat: %v", err, serr)
				}
				defer f.Close()
				if tc.data != "" {
					b, err := io.ReadAll(f)
					if err != nil || string(b) != tc.data {
						t.Errorf("read %q, %v; want %q", b, err, tc.data)
					}
				}
			}
		})
	}
	// A named pipe that replaced a file after its stat: the open itself must
	// neither block nor hand it out.
	t.Run("fifo past the stat", func(t *testing.T) {
		var err error
		zwNoHangFn(t, "open a fifo", func() { _, err = fsys.openChecked("c/fifo") })
		if err == nil || !strings.Contains(err.Error(), "this is a named pipe") {
			t.Errorf("openChecked: %v, want the named pipe refused", err)
		}
	})
}

// zwNoHangFn runs fn and fails t if it has not returned after hangLimit.
func zwNoHangFn(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(hangLimit):
		t.Fatalf("%s did not return within %v: it hangs", what, hangLimit)
	}
}

// zwBounded is zwNoHangFn that also fails when fn allocates more than
// budget bytes (all allocations of the process while fn runs: the fuzz
// targets run one input at a time, so they are fn's). A hostile store
// must cost what its files and its chunk size justify, not what its
// metadata claims.
func zwBounded(t *testing.T, what string, budget uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	zwNoHangFn(t, what, fn)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > budget {
		t.Fatalf("%s allocated %d bytes, over its budget of %d", what, alloc, budget)
	}
}

// readBudget is what a read command may allocate on a store of files
// holding fileBytes bytes (the largest largest) with chunks of cb bytes:
// the command's own start (cobra, flags: a few MiB), every file read a
// few times over, and a few decoded chunks, each no larger than its
// encoded bytes can expand to (zstd's bound, as internal/zarr's
// FuzzHostileStore has it) or the chunk size; extra is what the command
// buffers besides (cat: an epoch).
func readBudget(fileBytes, largest, cb, extra int64) uint64 {
	const zstdMaxExpansion = (128 << 10) / 4
	decoded := min(cb, max(largest, 1)*zstdMaxExpansion)
	return uint64(8<<20 + 8*fileBytes + 3*decoded + extra)
}

// File kinds FuzzStoreDir gives each file (the low bits of kinds, two per
// file).
const (
	dirRegular    = iota
	dirFIFO       // a named pipe
	dirLinkIn     // a relative link to zarr.json's neighbour c/0/... inside the store
	dirLinkOutAbs // an absolute link to a file outside the store
	dirLinkOutRel // a relative link climbing out of the store (kinds bit 6 picks it over dirLinkOutAbs)
)

// FuzzStoreDir writes a fuzzed store into a real directory (zarr.json and
// two files at the first storage keys it names, each a regular file, a
// named pipe or a symbolic link inside or out of the store) and runs cat,
// verify and info on it in-process. None may hang or panic, a bad store is
// exit 1 (never a usage error's 2), a link out of the store fails verify
// and info, and nothing outside the store reaches cat's output.
func FuzzStoreDir(f *testing.F) {
	small := `{"zarr_format":3,"node_type":"array","shape":[4,6],"data_type":"uint16",
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[4,6]}},
"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
"codecs":[{"name":"sharding_indexed","configuration":{"chunk_shape":[2,3],
"codecs":[{"name":"bytes","configuration":{"endian":"little"}}],
"index_codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],
"index_location":"end"}}]}`
	chunks := make([][]byte, 4)
	for i := range chunks {
		chunks[i] = randomBytes(12, uint64(i))
	}
	var body []byte
	var e []zarr.IndexEntry
	for _, c := range chunks {
		e = append(e, zarr.IndexEntry{Offset: uint64(len(body)), Nbytes: uint64(len(c))})
		body = append(body, c...)
	}
	shard := zarr.AppendIndex(body, e)
	for _, k := range []uint8{0, dirFIFO, dirLinkIn << 2, dirLinkOutAbs, dirLinkOutRel, dirFIFO << 2, dirLinkOutAbs<<2 | 1<<6} {
		f.Add([]byte(small), shard, shard, k)
	}
	f.Add(unshardedJSON(12), randomBytes(12, 1), []byte(nil), uint8(dirLinkOutAbs))
	f.Add(rawArrayJSON([]int64{1e18}, []int64{1 << 20}, []int64{1 << 20}, "uint8", ""), []byte(nil), []byte(nil), uint8(0))
	secret := []byte("outside the store: not for readers")
	f.Fuzz(func(t *testing.T, meta, f0, f1 []byte, kinds uint8) {
		m, err := zarr.ParseArray(meta)
		if err != nil {
			return // FuzzHostileStore covers metadata the parser refuses
		}
		dir := t.TempDir()
		secretPath := filepath.Join(dir, "secret")
		writeFile(t, secretPath, secret)
		store := filepath.Join(dir, "s.zarr")
		writeFile(t, filepath.Join(store, "zarr.json"), meta)
		n := len(m.Spec.Shape)
		keys := []string{m.ChunkKey(make([]int64, n)), m.ChunkKey(append(make([]int64, n-1), 1))}
		out := false // a file links out of the store
		for i, b := range [][]byte{f0, f1} {
			p := filepath.Join(store, filepath.FromSlash(keys[i]))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			switch k := kinds >> (2 * i) & 3; {
			case k == dirRegular:
				if len(b) > 0 {
					err = os.WriteFile(p, b, 0o644)
				}
			case k == dirFIFO:
				err = syscall.Mkfifo(p, 0o644)
			case k == dirLinkIn:
				writeFile(t, filepath.Join(store, "c", "data"), b)
				rel, rerr := filepath.Rel(filepath.Dir(p), filepath.Join(store, "c", "data"))
				if rerr != nil {
					t.Fatal(rerr)
				}
				err = os.Symlink(rel, p)
			case kinds&(1<<6) == 0:
				out = true
				err = os.Symlink(secretPath, p)
			default:
				out = true
				rel, rerr := filepath.Rel(filepath.Dir(p), secretPath)
				if rerr != nil {
					t.Fatal(rerr)
				}
				err = os.Symlink(rel, p)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		cmds := []string{"verify", "info"}
		// cat holds an epoch and a chunk: only where they are small, so
		// that an exec stays fast (FuzzHostileStore bounds the rest).
		s := &m.Spec
		epoch, ok := epochBytes(s)
		grid := int64(1)
		for _, g := range s.ChunkGrid() {
			grid = min(grid*g, 1<<20)
		}
		if ok && epoch <= 1<<20 && grid <= 4096 && s.ChunkBytes() <= 1<<20 {
			cmds = append(cmds, "cat")
		}
		for _, cmd := range cmds {
			ctx, cancel := context.WithCancel(context.Background())
			// cat of a large (or endless) array is cut after 1 MiB.
			w := &cutWriter{n: 1 << 20, cancel: cancel}
			var errb bytes.Buffer
			var code int
			extra := int64(2 << 20) // cat's output, kept up to 1 MiB
			if cmd == "cat" {
				extra += 2*epoch + 3*s.ChunkBytes()
			}
			budget := readBudget(int64(len(meta)+len(f0)+len(f1)), int64(max(len(meta), len(f0), len(f1))), s.ChunkBytes(), extra)
			zwBounded(t, cmd, budget, func() {
				code = execute(ctx, []string{cmd, store}, stdio{in: bytes.NewReader(nil), out: w, err: &errb})
			})
			cancel()
			switch {
			case code == exitInterrupted && cmd == "cat" && w.cut:
			case code != exitOK && code != exitFailure:
				t.Fatalf("zwrite %s: exit %d; stderr:\n%s", cmd, code, errb.String())
			case out && cmd != "cat" && code != exitFailure:
				t.Fatalf("zwrite %s: exit %d on a store that links out of itself", cmd, code)
			}
			if bytes.Contains(w.buf.Bytes(), secret) {
				t.Fatalf("zwrite %s printed a file outside the store", cmd)
			}
		}
	})
}

// epochBytes is what cat buffers for s: min(chunk[0], shape[0]) frames,
// false when that exceeds 2^40.
func epochBytes(s *zarr.Spec) (int64, bool) {
	frames := min(s.Chunk[0], s.Shape[0])
	fb := s.FrameBytes()
	if fb > 0 && frames > (1<<40)/fb {
		return 0, false
	}
	return frames * fb, true
}

// cutWriter keeps up to n bytes and then interrupts the command.
type cutWriter struct {
	n      int
	buf    bytes.Buffer
	cut    bool
	cancel context.CancelFunc
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.n {
		w.cut = true
		w.cancel()
		return len(p), nil
	}
	return w.buf.Write(p)
}
