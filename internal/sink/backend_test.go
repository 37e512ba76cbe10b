package sink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// keysOf lists a directory tree as object storage would: regular files
// as keys, empty directories as markers ("dir/").
func keysOf(t *testing.T, root string) []string {
	t.Helper()
	var keys []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type().IsRegular():
			keys = append(keys, rel)
		case d.IsDir():
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				keys = append(keys, rel+"/")
			}
		}
		return nil
	})
	return keys
}

// TestForeignKeysMatchesForeign: on the same store, given as a directory
// and as its key list, ForeignKeys and foreign agree (the rules of what
// --overwrite may delete are one, whatever the backend).
func TestForeignKeysMatchesForeign(t *testing.T) {
	store := map[string]string{"zarr.json": arrayMeta, "c/0/0": "x", "c/1/0": "y"}
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"array", store},
		{"v2 and dotted keys", map[string]string{"zarr.json": arrayMeta, "0.0": "a", "c.1.1": "b", "c": "rank0"}},
		{"group with children", map[string]string{"zarr.json": groupMeta, "a/zarr.json": arrayMeta, "a/c/0/0": "x", "g/zarr.json": groupMeta, "g/b/zarr.json": arrayMeta, "g/b/c/3": "z"}},
		{"our names", map[string]string{"zarr.json": arrayMeta, LockName: "", ".c.tmp-1": "", "c/0/.1.tmp-2": ""}},
		{"no zarr.json", map[string]string{"precious.txt": "x"}},
		{"foreign file", map[string]string{"zarr.json": arrayMeta, "notes.txt": "x"}},
		{"foreign dir", map[string]string{"zarr.json": arrayMeta, "raw/a": "x", "empty/": ""}},
		{"foreign in chunk tree", map[string]string{"zarr.json": arrayMeta, "c/0/readme": "x", "c/x/0": "y", "c/1/": ""}},
		{"empty zarr.json", map[string]string{"zarr.json": ""}},
		{"v2 zarr.json", map[string]string{"zarr.json": `{"zarr_format": 2}`}},
		{"group child no node", map[string]string{"zarr.json": groupMeta, "a/": "", "b/x": "1"}},
		{"group child broken node", map[string]string{"zarr.json": groupMeta, "a/zarr.json": "{"}},
		{"group stray file", map[string]string{"zarr.json": groupMeta, "x.txt": "x"}},
		{"array holding a node", map[string]string{"zarr.json": arrayMeta, "sub/zarr.json": arrayMeta}},
		{"many foreign", map[string]string{"zarr.json": arrayMeta, "a": "", "b": "", "d": "", "e": "", "f": "", "g": "", "h": "", "i": "", "j": "", "k": "", "l": "", "m": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tc.files)
			wantPaths, wantN, wantErr := foreign(root, maxForeignListed)
			keys := keysOf(t, root)
			gotPaths, gotN, gotErr := ForeignKeys(keys, func(d string) (string, error) {
				return nodeKind(filepath.Join(root, filepath.FromSlash(d)))
			}, maxForeignListed)
			if (wantErr != nil) != (gotErr != nil) || wantN != gotN {
				t.Fatalf("keys %v: ForeignKeys = %v, %d, %v; foreign = %v, %d, %v", keys, gotPaths, gotN, gotErr, wantPaths, wantN, wantErr)
			}
			// foreign lists in directory order, ForeignKeys sorted: the
			// same set when all fit.
			if wantN <= maxForeignListed && !slices.Equal(sorted(wantPaths), gotPaths) {
				t.Fatalf("ForeignKeys paths %v, foreign %v", gotPaths, wantPaths)
			}
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestForeignKeysUnclean: keys no directory can hold (empty, "." or ".."
// parts) are foreign.
func TestForeignKeysUnclean(t *testing.T) {
	kind := func(d string) (string, error) {
		if d == "" {
			return "array", nil
		}
		return "", errors.New("no node")
	}
	keys := []string{"zarr.json", "c/0", "a//b", "../up", "c/./0", "/abs", "c/0/"}
	paths, n, err := ForeignKeys(keys, kind, 10)
	want := []string{"../up", "/abs", "a//b", "c/./0"}
	if err != nil || n != len(want) || !reflect.DeepEqual(paths, want) {
		t.Fatalf("ForeignKeys = %v, %d, %v; want %v", paths, n, err, want)
	}
}

// FuzzForeignKeys: no key list makes ForeignKeys panic or list more than
// it counts, or call kind for a directory outside the keys.
func FuzzForeignKeys(f *testing.F) {
	f.Add("zarr.json\nc/0/0\nnotes.txt")
	f.Add("zarr.json\na/zarr.json\na/c/0\nb/\n../x\n")
	f.Fuzz(func(t *testing.T, list string) {
		keys := strings.Split(list, "\n")
		have := map[string]bool{"": true}
		for _, k := range keys {
			for d := strings.TrimSuffix(k, "/"); d != "" && d != "."; {
				i := strings.LastIndexByte(d, '/')
				if i < 0 {
					break
				}
				d = d[:i]
				have[d] = true
			}
		}
		paths, n, err := ForeignKeys(keys, func(d string) (string, error) {
			if !have[d] {
				t.Fatalf("kind asked for %q, which no key lies in", d)
			}
			if strings.HasSuffix(d, "g") {
				return "group", nil
			}
			return "array", nil
		}, 3)
		if err == nil && (len(paths) > 3 || len(paths) > n) {
			t.Fatalf("%d paths listed of %d", len(paths), n)
		}
	})
}

func TestIsURLAndOpenFS(t *testing.T) {
	for s, want := range map[string]bool{"s3://b/p": true, "x://": true, "dir/s3://x": false, "./a": false, "C:\\x": false, "://x": false, "a/b://c": false} {
		if IsURL(s) != want {
			t.Errorf("IsURL(%q) = %v", s, !want)
		}
	}
	dir := t.TempDir()
	tree(t, dir, map[string]string{"zarr.json": arrayMeta, "c/0": "x"})
	os.Symlink("/etc", filepath.Join(dir, "out"))
	fsys, err := OpenFS(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "c/0"); err != nil || string(b) != "x" {
		t.Fatalf("read c/0: %q, %v", b, err)
	}
	if _, err := fs.ReadFile(fsys, "out/hostname"); err == nil {
		t.Fatal("a symlink out of the store was followed")
	}
	if _, err := OpenFS("nope://x/y", ""); err == nil || !strings.Contains(err.Error(), `scheme "nope" is not supported`) {
		t.Fatalf("unknown scheme: %v", err)
	}
	if _, err := OpenFS(filepath.Join(dir, "missing"), ""); err == nil {
		t.Fatal("a missing directory opened")
	}
}
