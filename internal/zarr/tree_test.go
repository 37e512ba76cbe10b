package zarr

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func testImageGroup(t testing.TB) []byte {
	t.Helper()
	img := mustBuild(t, ImageOptions{Axes: DefaultAxes([]string{"t", "y", "x"}), Levels: 2})
	b, err := MarshalImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadNode(t *testing.T) {
	group, _ := MarshalGroup(nil)
	fsys := fstest.MapFS{
		"zarr.json":          {Data: group},
		"a/zarr.json":        {Data: testArray(t)},
		"img/zarr.json":      {Data: testImageGroup(t)},
		"bad/zarr.json":      {Data: []byte(`{"zarr_format":2}`)},
		"badimg/zarr.json":   {Data: []byte(`{"zarr_format":3,"node_type":"group","attributes":{"ome":{"version":"0.4"}}}`)},
		"other/zarr.json":    {Data: []byte(`{"zarr_format":3,"node_type":"group","attributes":{"multiscales":[]}}`)},
		"dir/zarr.json/x":    {Data: []byte("x")},
		"plain/readme":       {Data: []byte("x")},
		"huge/zarr.json":     {Data: make([]byte, MaxMetadataBytes+1)},
		"nested/g/zarr.json": {Data: group},
	}
	tests := []struct {
		dir  string
		kind string
		err  string
		ne   bool // fs.ErrNotExist
	}{
		{dir: ".", kind: "group"},
		{dir: "", kind: "group"},
		{dir: "a", kind: "array"},
		{dir: "a/", kind: "array"},
		{dir: "img", kind: "image"},
		{dir: "other", kind: "group"},
		{dir: "nested/g", kind: "group"},
		{dir: "bad", err: "zarr_format: want 3"},
		{dir: "badimg", err: `ome.version: "0.4" not supported`},
		{dir: "dir", err: "dir/zarr.json is not a regular file (it is a directory)"},
		{dir: "huge", err: "huge/zarr.json is 16777217 bytes; metadata over 16 MiB is refused"},
		{dir: "plain", ne: true},
		{dir: "nothing", ne: true},
		{dir: "../a", err: "invalid argument"},
		{dir: "/a", err: "invalid argument"},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			n, err := ReadNode(fsys, tc.dir)
			switch {
			case tc.ne:
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err %v, want fs.ErrNotExist", err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case n.Kind() != tc.kind:
				t.Fatalf("kind %q, want %q", n.Kind(), tc.kind)
			case tc.kind == "array" && n.Meta == nil, tc.kind == "image" && len(n.Image.Multiscales[0].Datasets) != 2:
				t.Fatalf("node %+v", n)
			}
		})
	}
}

// TestWalkNodes: every node once, parents first, children sorted; no
// descent into arrays, plain directories, dot directories or links; a
// broken node is reported and the walk goes on.
func TestWalkNodes(t *testing.T) {
	dir := t.TempDir()
	group, _ := MarshalGroup(nil)
	put := func(p string, b []byte) {
		p = filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("zarr.json", group)
	put("b/zarr.json", testArray(t))
	put("b/c/0/0/0", []byte("shard"))
	put("b/inner/zarr.json", group) // inside an array: not a node
	put("a/zarr.json", group)
	put("a/x/zarr.json", testArray(t))
	put("a/img/zarr.json", testImageGroup(t))
	put("a/img/0/zarr.json", testArray(t))
	put("a/img/1/zarr.json", testArray(t))
	put("plain/deep/zarr.json", group) // below a directory that is no node
	put(".tmp/zarr.json", group)
	put("broken/zarr.json", []byte("{"))
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "zarr.json"), group, 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := WalkNodes(context.Background(), os.DirFS(dir), ".", func(n *Node, err error) error {
		if err != nil {
			var ne *NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v is not a NodeError", err)
			}
			got = append(got, "error "+ne.Path)
			return nil
		}
		got = append(got, n.Path+" "+n.Kind())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ". group|a group|a/img image|a/img/0 array|a/img/1 array|a/x array|b array|error broken"
	if s := strings.Join(got, "|"); s != want {
		t.Fatalf("walk:\n got %s\nwant %s", s, want)
	}
	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	err = WalkNodes(context.Background(), os.DirFS(dir), ".", func(*Node, error) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("err %v after %d nodes", err, n)
	}
	// A cancelled context stops it with the cause.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stop)
	called := 0
	if err := WalkNodes(ctx, os.DirFS(dir), ".", func(*Node, error) error { called++; return nil }); !errors.Is(err, stop) || called > 0 {
		t.Fatalf("cancelled walk: %v after %d nodes", err, called)
	}
	// A sub-tree, and a start that is no node.
	got = nil
	WalkNodes(context.Background(), os.DirFS(dir), "a/img", func(n *Node, err error) error {
		got = append(got, n.Path)
		return nil
	})
	if s := strings.Join(got, "|"); s != "a/img|a/img/0|a/img/1" {
		t.Fatalf("walk of a/img: %s", s)
	}
	if err := WalkNodes(context.Background(), os.DirFS(dir), "plain", func(*Node, error) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("walk of a plain directory: %v", err)
	}
}

func TestOpenArray(t *testing.T) {
	group, _ := MarshalGroup(nil)
	fsys := fstest.MapFS{
		"zarr.json":     {Data: group},
		"a/b/zarr.json": {Data: testArray(t)},
	}
	a, err := OpenArray(fsys, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := OpenArray(fsys, "."); err == nil || !strings.Contains(err.Error(), "node_type") {
		t.Fatalf("OpenArray of a group: %v", err)
	}
	if _, err := OpenArray(fsys, "../a"); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("OpenArray(../a): %v", err)
	}
	if _, err := OpenArray(fsys, "a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenArray(a): %v", err)
	}
}

// FuzzReadNode: any zarr.json either reads as a node of a kind the
// parsers agree with, or is refused; never a panic.
func FuzzReadNode(f *testing.F) {
	f.Add(testArray(f))
	f.Add(testImageGroup(f))
	f.Add([]byte(`{"zarr_format":3,"node_type":"group","attributes":{"ome":{}}}`))
	f.Add([]byte(`{"zarr_format":3,"node_type":"group","attributes":{"ome":null}}`))
	f.Add([]byte(`{"zarr_format":3,"node_type":"group","attributes":{"x":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ReadNode(fstest.MapFS{"n/zarr.json": {Data: b}}, "n")
		if err != nil {
			return
		}
		switch n.Kind() {
		case "array":
			if _, err := ParseArray(b); err != nil || n.Meta == nil {
				t.Fatalf("an array ParseArray refuses: %v", err)
			}
		case "image":
			if _, err := ParseImageGroup(b); err != nil || len(n.Image.Multiscales) == 0 {
				t.Fatalf("an image ParseImageGroup refuses: %v", err)
			}
		case "group":
			if _, err := ParseGroup(b); err != nil {
				t.Fatalf("a group ParseGroup refuses: %v", err)
			}
			if _, err := ParseImageGroup(b); err == nil {
				t.Fatalf("an image read as a plain group")
			}
		default:
			t.Fatalf("kind %q", n.Kind())
		}
	})
}
