//go:build unix

package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// FuzzNodePath: --array PATH is refused as a usage error or becomes a
// clean path inside the store, which it then keeps.
func FuzzNodePath(f *testing.F) {
	for _, s := range []string{"", ".", "cam1", "cam1/raw/", "./a//b", "../a", "a/../../b", "/abs", `a\b`, "a/./b/..", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := nodePath(p)
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("nodePath(%q): %v is not a usage error", p, err)
			}
			return
		}
		if !fs.ValidPath(c) || c != path.Clean(c) || c == ".." || strings.HasPrefix(c, "../") {
			t.Fatalf("nodePath(%q) = %q: not a clean path inside the store", p, c)
		}
		if c2, err := nodePath(c); err != nil || c2 != c {
			t.Fatalf("nodePath(%q) = %q, %v; want it unchanged", c, c2, err)
		}
	})
}

// smallArray reports whether b is an array zarr.json whose reading stays
// small: the fuzzer's stores must not take minutes to verify.
func smallArray(b []byte) bool {
	m, err := zarr.ParseArray(b)
	if err != nil {
		return true // refused before anything is read
	}
	n, c := int64(1), int64(1)
	for d := range m.Spec.Shape {
		n *= max(m.Spec.Shape[d], 1)
		c *= m.Spec.Chunk[d]
		if n > 1<<16 || c > 1<<16 {
			return false
		}
	}
	return true
}

// FuzzImageStoreDir writes a fuzzed image into a real directory (the
// group zarr.json, two levels' zarr.json and the first shard of each) and
// runs verify, info and cat of both levels on it in-process. None may
// panic or hang; verify and info exit 0 or 1 (a bad store is never a
// usage error), cat 0, 1 or 2 (a level that is not there).
func FuzzImageStoreDir(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.zarr")
	mustZw(f, randomBytes(7*9*10, 1), "append", "-o", seed, "--shape", "0,9,10", "--dtype", "u8", "--chunk", "2,4,4", "--shard", "4,8,8",
		"--dims", "t,y,x", "--levels", "2", "--codec", "none", "--progress=false")
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(seed, p))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	g, m0, m1, d0, d1 := read("zarr.json"), read("0/zarr.json"), read("1/zarr.json"), read("0/c/0/0/0"), read("1/c/0/0/0")
	f.Add(g, m0, m1, d0, d1)
	f.Add(g, m1, m0, d1, d0)
	f.Add(bytes.Replace(g, []byte(`"path": "1"`), []byte(`"path": "../1"`), 1), m0, m1, d0, d1)
	f.Add(bytes.Replace(g, []byte(`"y",`), []byte(`"q",`), 1), m0, m1, d0, d1)
	f.Add(g, m0, bytes.Replace(m1, []byte("10"), []byte("11"), 1), d0, d1)
	f.Fuzz(func(t *testing.T, group, meta0, meta1, data0, data1 []byte) {
		if !smallArray(meta0) || !smallArray(meta1) {
			return
		}
		store := filepath.Join(t.TempDir(), "s.zarr")
		files := map[string][]byte{"zarr.json": group, "0/zarr.json": meta0, "1/zarr.json": meta1, "0/c/0/0/0": data0, "1/c/0/0/0": data1}
		for name, b := range files {
			writeFile(t, filepath.Join(store, filepath.FromSlash(name)), b)
		}
		for _, args := range [][]string{
			{"verify", store}, {"info", store}, {"info", store, "--json"},
			{"cat", store, "--level", "0"}, {"cat", store, "--level", "1"},
		} {
			var out, errb bytes.Buffer
			var code int
			// smallArray keeps every chunk and epoch small: the files
			// and a few MiB of output bound it.
			budget := readBudget(int64(len(group)+len(meta0)+len(meta1)+len(data0)+len(data1)),
				int64(max(len(group), len(meta0), len(meta1), len(data0), len(data1))), 1<<20, 4<<20)
			zwBounded(t, strings.Join(args, " "), budget, func() {
				code = execute(context.Background(), args, stdio{in: bytes.NewReader(nil), out: &out, err: &errb})
			})
			if code != exitOK && code != exitFailure && (args[0] != "cat" || code != exitUsage) {
				t.Fatalf("zwrite %q: exit %d; stderr:\n%s", args, code, errb.String())
			}
		}
	})
}
