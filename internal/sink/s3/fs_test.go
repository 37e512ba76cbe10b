package s3

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
)

// TestFS runs testing/fstest's conformance check (Open, Stat, ReadDir,
// Read, Seek, ReadAt against what was written) on a node's fs.FS, both
// through the store and through the reader registry.
func TestFS(t *testing.T) {
	e := newTestEnv(t)
	files := map[string][]byte{
		"zarr.json":   []byte(arrayMeta),
		"c/0/0":       randBytes(100, 1),
		"c/0/1":       randBytes(1500, 2),
		"c/1/0":       {},
		"sub/x/y/z":   []byte("deep"),
		".zwrite-tmp": []byte("dot"),
	}
	e.put(t, map[string]string{"outside/zarr.json": groupMeta, "node0/not-inside": "x"})
	st := e.mustOpen(t, "node", sink.Options{})
	var names []string
	for k, v := range files {
		commitFile(t, st, k, string(v))
		names = append(names, k)
	}
	fsys, err := st.FS()
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, ".zwrite-lock") // the run's lock is an object too
	if err := fstest.TestFS(fsys, names...); err != nil {
		t.Fatal(err)
	}
	// The package registered itself for both registries.
	if _, err := sink.OpenFS("s3://bkt/a/../b", ""); err == nil || !strings.Contains(err.Error(), "clean key") {
		t.Errorf("sink.OpenFS of an s3 URL: %v, want this package's URL check", err)
	}
	if _, err := sink.Open("s3://bkt/a/../b", sink.Options{}); err == nil || !strings.Contains(err.Error(), "clean key") {
		t.Errorf("sink.Open of an s3 URL: %v, want this package's URL check", err)
	}
	rfs, err := openReader(e.url("node"), "", e.getenv, e.tune)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		got, err := fs.ReadFile(rfs, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("%s: %d bytes, %v; want %d", k, len(got), err, len(v))
		}
	}
	for _, bad := range []string{"../outside/zarr.json", "/zarr.json", "c//0", "./zarr.json", "c/../zarr.json"} {
		if _, err := rfs.Open(bad); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): %v, want fs.ErrInvalid", bad, err)
		}
	}
	if _, err := rfs.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing): %v, want fs.ErrNotExist", err)
	}
	// The prefix "node" must not reach into "node0".
	if _, err := rfs.Open("0/not-inside"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key of a sibling prefix was reachable: %v", err)
	}
}

// TestReadAtRanges: ReadAt fetches only the bytes asked for, with one
// ranged GET each, never the whole object.
func TestReadAtRanges(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	data := randBytes(3<<20, 9)
	e.put(t, map[string]string{"r/c/0": string(data)})
	fsys, err := openReader(pe.url("r"), "", pe.getenv, pe.tune)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("c/0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		t.Fatal("an object file has no ReadAt")
	}
	fi, _ := f.Stat()
	if fi.Size() != int64(len(data)) || !fi.Mode().IsRegular() {
		t.Fatalf("Stat: size %d mode %v", fi.Size(), fi.Mode())
	}
	px.Requests()
	tests := []struct {
		off, n int64
		range_ string
		eof    bool
	}{
		{len64(data) - 20, 20, "bytes=3145708-3145727", false},
		{1000, 4096, "bytes=1000-5095", false},
		{len64(data) - 10, 100, "bytes=3145718-3145727", true},
	}
	for _, tc := range tests {
		buf := make([]byte, tc.n)
		n, err := ra.ReadAt(buf, tc.off)
		want := data[tc.off:min(tc.off+tc.n, len64(data))]
		if n != len(want) || !bytes.Equal(buf[:n], want) || (err == io.EOF) != tc.eof || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v", tc.n, tc.off, n, err)
		}
		reqs := px.Requests()
		if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Range != tc.range_ {
			t.Errorf("ReadAt(%d bytes at %d) sent %+v, want one GET with Range %s", tc.n, tc.off, reqs, tc.range_)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 5), len64(data)); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v", n, err)
	}
	if reqs := px.Requests(); len(reqs) != 0 {
		t.Errorf("ReadAt at the end sent %v", reqs)
	}
	// Sequential Read goes through one GET.
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	if reqs := px.Requests(); len(reqs) != 1 || reqs[0].Range != "" {
		t.Errorf("ReadAll sent %+v, want one GET of the whole object", reqs)
	}
	// Seek, then Read from there (one GET of the rest).
	s := f.(io.ReadSeeker)
	for _, tc := range []struct {
		off    int64
		whence int
		at     int64
	}{{12345, io.SeekStart, 12345}, {100, io.SeekCurrent, 12345 + 100 + 1000}, {-500, io.SeekEnd, len64(data) - 500}} {
		// (SeekCurrent: the previous case's Read moved on by 1000.)
		if _, err := s.Seek(tc.off, tc.whence); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		n, err := io.ReadFull(s, buf)
		want := data[tc.at:min(tc.at+1000, len64(data))]
		if n != len(want) || !bytes.Equal(buf[:n], want) {
			t.Errorf("Seek(%d, %d) then Read: %d bytes, %v; want data at %d", tc.off, tc.whence, n, err, tc.at)
		}
	}
	if _, err := s.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek before the start accepted")
	}
}

func len64(b []byte) int64 { return int64(len(b)) }
