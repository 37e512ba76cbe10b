//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

// imageGroupJSON is the group zarr.json of an image with the given axes
// and levels (paths "0", "1", ... unless paths says otherwise).
func imageGroupJSON(t *testing.T, names []string, levels int, paths ...string) []byte {
	t.Helper()
	img, err := zarr.BuildImage(zarr.ImageOptions{Axes: zarr.DefaultAxes(names), Levels: levels})
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range paths {
		img.Multiscales[0].Datasets[k].Path = p
	}
	b, err := zarr.MarshalImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withDimNames adds dimension_names to an array zarr.json.
func withDimNames(js []byte, names string) []byte {
	return bytes.Replace(js, []byte(`"node_type":"array",`), []byte(`"node_type":"array","dimension_names":`+names+`,`), 1)
}

// TestHostileGroupStores runs cat, verify and info on group stores and
// images built to make a reader leave the store, hang or crash: links out
// of the store where a node or a level should be, level paths that climb
// out, named pipes for zarr.json. Each is exit 1 naming what is wrong
// (or does its job, never reading outside the store), never a hang.
func TestHostileGroupStores(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("outside the store: not for readers\n")
	// An image store outside every store under test, whose level 1 is the
	// secret: reading it through a link would print it.
	outside := filepath.Join(dir, "outside.zarr")
	raw := bytes.Repeat(secret, 4*6)
	mustZw(t, raw, "append", "-o", outside, "--shape", "0,4,6", "--dtype", "u8", "--chunk", "2,4,6", "--codec", "none",
		"--dims", "t,y,x", "--levels", "2", "--progress=false")
	group, _ := zarr.MarshalGroup(nil)
	mkfifo := func(p string) error { return syscall.Mkfifo(p, 0o644) }
	// good is an image of the same geometry, its data not the secret.
	goodBase := filepath.Join(dir, "good.zarr")
	mustZw(t, randomBytes(int64(len(raw)), 5), "append", "-o", goodBase, "--shape", "0,4,6", "--dtype", "u8", "--chunk", "2,4,6", "--codec", "none",
		"--dims", "t,y,x", "--levels", "2", "--progress=false")
	good := func(t *testing.T) string {
		s := filepath.Join(t.TempDir(), "s.zarr")
		if err := os.CopyFS(s, os.DirFS(goodBase)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	type run struct {
		args []string // STORE is replaced
		code int
		msg  string // in stderr when code != 0, in stdout when 0
	}
	tests := []struct {
		name  string
		store func(t *testing.T) string
		runs  []run
	}{
		{name: "a child links to a store outside",
			store: func(t *testing.T) string {
				s := filepath.Join(t.TempDir(), "s.zarr")
				writeFile(t, filepath.Join(s, "zarr.json"), group)
				if err := os.Symlink(outside, filepath.Join(s, "cam")); err != nil {
					t.Fatal(err)
				}
				return s
			},
			runs: []run{
				{[]string{"info", "STORE"}, 0, "nodes  0 arrays, 0 images, 0 groups below it"},
				{[]string{"verify", "STORE"}, 0, "ok: 0 arrays verified"},
				{[]string{"cat", "STORE", "--array", "cam"}, 1, `cam/zarr.json: cam: symbolic link to "` + outside + `" is absolute: readers follow only relative links that stay inside the store`},
				{[]string{"info", "STORE", "--array", "cam/1"}, 1, "cam: symbolic link to"},
			}},
		{name: "a level links out of the store",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "1"), func(p string) error {
					rel, _ := filepath.Rel(s, filepath.Join(outside, "1"))
					return os.Symlink(rel, p)
				})
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, `level 1: open store: open zarr.json: 1: symbolic link to "../`},
				{[]string{"info", "STORE"}, 1, "leads outside the store"},
				{[]string{"cat", "STORE", "--level", "1"}, 1, "leads outside the store"},
				{[]string{"cat", "STORE", "--level", "0"}, 0, ""},
			}},
		{name: "a level path climbs out of the image",
			store: func(t *testing.T) string {
				s := good(t)
				writeFile(t, filepath.Join(s, "zarr.json"), imageGroupJSON(t, []string{"t", "y", "x"}, 2, "0", "../outside.zarr/1"))
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, `level 1 (path "../outside.zarr/1"): the path is not a directory inside the image`},
				{[]string{"info", "STORE"}, 1, "the path is not a directory inside the image"},
				{[]string{"cat", "STORE", "--level", "1"}, 1, `level 1's path "../outside.zarr/1" is not a directory inside the image`},
			}},
		{name: "an absolute level path",
			store: func(t *testing.T) string {
				s := good(t)
				writeFile(t, filepath.Join(s, "zarr.json"), imageGroupJSON(t, []string{"t", "y", "x"}, 2, "0", filepath.Join(outside, "1")))
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, "the path is not a directory inside the image"},
				{[]string{"cat", "STORE", "--level", "1"}, 1, "is not a directory inside the image"},
			}},
		{name: "the image is its own level",
			store: func(t *testing.T) string {
				s := good(t)
				writeFile(t, filepath.Join(s, "zarr.json"), imageGroupJSON(t, []string{"t", "y", "x"}, 2, "0", "."))
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, `level 1 (path "."): the path is not a directory inside the image`},
				{[]string{"cat", "STORE", "--level", "1"}, 1, "is not a directory inside the image"},
			}},
		{name: "a child's zarr.json is a named pipe",
			store: func(t *testing.T) string {
				s := filepath.Join(t.TempDir(), "s.zarr")
				writeFile(t, filepath.Join(s, "zarr.json"), group)
				writeFile(t, filepath.Join(s, "a", "zarr.json"), withDimNames(rawArrayJSON([]int64{4, 6}, []int64{2, 3}, []int64{4, 6}, "uint16", ""), `["y","x"]`))
				os.MkdirAll(filepath.Join(s, "b"), 0o755)
				if err := mkfifo(filepath.Join(s, "b", "zarr.json")); err != nil {
					t.Fatal(err)
				}
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, "problem: STORE/b: open b/zarr.json: a store holds regular files only; this is a named pipe"},
				{[]string{"info", "STORE"}, 1, "this is a named pipe"},
				{[]string{"cat", "STORE", "--array", "b"}, 1, "this is a named pipe"},
				{[]string{"cat", "STORE", "--array", "a"}, 0, ""},
			}},
		{name: "a level's zarr.json is a named pipe",
			store: func(t *testing.T) string {
				s := good(t)
				replace(t, filepath.Join(s, "1", "zarr.json"), mkfifo)
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, "level 1: open store: open zarr.json: a store holds regular files only; this is a named pipe"},
				{[]string{"info", "STORE"}, 1, "this is a named pipe"},
				{[]string{"cat", "STORE", "--level", "1"}, 1, "this is a named pipe"},
			}},
		{name: "an image whose ome attributes are invalid",
			store: func(t *testing.T) string {
				s := good(t)
				writeFile(t, filepath.Join(s, "zarr.json"), []byte(`{"zarr_format":3,"node_type":"group","attributes":{"ome":{"version":"0.5","multiscales":[]}}}`))
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, "parse image: ome.multiscales: want a non-empty list"},
				{[]string{"info", "STORE"}, 1, "parse image"},
				{[]string{"cat", "STORE"}, 1, "parse image"},
			}},
		{name: "a child's zarr.json links outside",
			store: func(t *testing.T) string {
				s := filepath.Join(t.TempDir(), "s.zarr")
				writeFile(t, filepath.Join(s, "zarr.json"), group)
				os.MkdirAll(filepath.Join(s, "x"), 0o755)
				if err := os.Symlink(filepath.Join(outside, "1", "zarr.json"), filepath.Join(s, "x", "zarr.json")); err != nil {
					t.Fatal(err)
				}
				return s
			},
			runs: []run{
				{[]string{"verify", "STORE"}, 1, "problem: STORE/x: open x/zarr.json: symbolic link"},
				{[]string{"info", "STORE", "--json"}, 1, "1 node(s) could not be read"},
				{[]string{"cat", "STORE", "--array", "x"}, 1, "is absolute"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(t)
			for _, r := range tc.runs {
				args := make([]string, len(r.args))
				for i, a := range r.args {
					args[i] = strings.ReplaceAll(a, "STORE", store)
				}
				msg := strings.ReplaceAll(r.msg, "STORE", store)
				code, out, stderr := zwNoHang(t, context.Background(), nil, args...)
				switch {
				case code != r.code:
					t.Errorf("%q: exit %d, want %d:\n%s%s", r.args, code, r.code, out, stderr)
				case code != 0 && (!strings.Contains(stderr, msg) || !strings.Contains(stderr, store)):
					t.Errorf("%q: stderr does not name the store and say %q:\n%s", r.args, msg, stderr)
				case code == 0 && !strings.Contains(out, msg):
					t.Errorf("%q: stdout does not say %q:\n%s", r.args, msg, out)
				}
				if bytes.Contains([]byte(out), secret) {
					t.Errorf("%q printed the data outside the store", r.args)
				}
			}
		})
	}
}

// endlessImage is a store holding an image at img whose levels name 10^18
// frames of fill value, and an array before it: reading it all never
// ends, so only an interrupt stops a command.
func endlessImage(t *testing.T) string {
	t.Helper()
	s := filepath.Join(t.TempDir(), "huge.zarr")
	group, _ := zarr.MarshalGroup(nil)
	writeFile(t, filepath.Join(s, "zarr.json"), group)
	writeFile(t, filepath.Join(s, "a", "zarr.json"), withDimNames(rawArrayJSON([]int64{4, 6}, []int64{2, 3}, []int64{4, 6}, "uint16", ""), `["y","x"]`))
	writeFile(t, filepath.Join(s, "img", "zarr.json"), imageGroupJSON(t, []string{"y", "x"}, 2))
	writeFile(t, filepath.Join(s, "img", "0", "zarr.json"), withDimNames(rawArrayJSON([]int64{1e18, 4}, []int64{1 << 18, 4}, []int64{1 << 18, 4}, "uint8", ""), `["y","x"]`))
	writeFile(t, filepath.Join(s, "img", "1", "zarr.json"), withDimNames(rawArrayJSON([]int64{5e17, 2}, []int64{1 << 18, 2}, []int64{1 << 18, 2}, "uint8", ""), `["y","x"]`))
	return s
}

// TestInterruptedImageReads interrupts cat, verify and info on an endless
// image inside a group store, at their first read of stdin or write of
// stdout: each returns 130, and only once its read has stopped. verify of
// the group is interrupted by its first line (the array before the image)
// and must not go on into the image.
func TestInterruptedImageReads(t *testing.T) {
	store := endlessImage(t)
	for _, tc := range []struct {
		name string
		args []string
		in   bool // interrupt through stdin rather than stdout
	}{
		{"cat a level", []string{"cat", store, "--array", "img", "--level", "1"}, false},
		{"verify --raw of the image", []string{"verify", store, "--array", "img", "--raw", "-"}, true},
		{"verify of the group", []string{"verify", store}, false},
		{"info of the group", []string{"info", store}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			i := &interrupter{cancel: cancel}
			io := stdio{in: bytes.NewReader(nil), out: i, err: new(bytes.Buffer)}
			if tc.in {
				io.in, io.out = i, new(bytes.Buffer)
			}
			if strings.HasPrefix(tc.name, "info") {
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
				t.Errorf("returned while its read was still going (%d calls in progress)", n)
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

// TestInterruptImageSignal: SIGINT stops the real binary verifying an
// endless image against stdin: exit 130, saying so.
func TestInterruptImageSignal(t *testing.T) {
	store := endlessImage(t)
	cmd := exec.Command(binary, "verify", store, "--array", "img", "--raw", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until 8 MiB of stdin went in: the comparison is under way.
	moved := make(chan struct{})
	var total atomic.Int64
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := stdin.Write(buf)
			if v := total.Add(int64(n)); v >= 8<<20 && v-int64(n) < 8<<20 {
				close(moved)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-moved:
	case <-time.After(hangLimit):
		cmd.Process.Kill()
		t.Fatalf("verify read no input; stderr:\n%s", stderr)
	}
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
		t.Fatalf("verify did not exit within %v of SIGINT; stderr:\n%s", hangLimit, stderr)
	}
	stdin.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %v, want %d saying it was interrupted; stderr:\n%s", err, exitInterrupted, stderr)
	}
}
