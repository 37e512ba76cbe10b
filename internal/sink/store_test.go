package sink

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	arrayMeta = `{"zarr_format": 3, "node_type": "array", "shape": [1]}`
	groupMeta = `{"zarr_format": 3, "node_type": "group"}`
)

// tree makes files under root: a path ending in "/" is a directory, a
// value starting with "->" a symlink to the rest, "|fifo" a FIFO.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		var err error
		switch {
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(v[2:], full)
		case v == "|fifo":
			err = syscall.Mkfifo(full, 0o644)
		default:
			err = os.WriteFile(full, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is every path under root with its content (or "dir"/"link").
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			out[r] = "link"
		case d.IsDir():
			out[r] = "dir"
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			out[r] = string(b)
		default:
			out[r] = d.Type().String()
		}
		return nil
	})
	return out
}

// TestOpen: what Open accepts and refuses, with and without Overwrite. A
// refused Open changes nothing on disk.
func TestOpen(t *testing.T) {
	store := map[string]string{"zarr.json": arrayMeta, "c/0/0": "x", "c/1/0": "y"}
	with := func(m map[string]string, extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name      string
		files     map[string]string // under the output; nil = output absent
		asFile    bool              // the output is a regular file
		overwrite bool
		replacing bool   // success writes beside the old store
		wantErr   string // substring; "" = success
		errType   any
	}{
		{"absent", nil, false, false, false, "", nil},
		{"empty dir", map[string]string{}, false, false, false, "", nil},
		{"only a crashed writer's temp files", map[string]string{".zarr.json.tmp-abc": "x", ".zwrite-probe-1": ""}, false, false, false, "", nil},
		{"store, no overwrite", store, false, false, false, "already exists", &ExistsError{}},
		{"store, overwrite", store, false, true, true, "", nil},
		{"store with v2 and dotted keys, overwrite", with(store, map[string]string{"0.0": "a", "c.1.1": "b"}), false, true, true, "", nil},
		{"group with child arrays, overwrite", map[string]string{"zarr.json": groupMeta, "a/zarr.json": arrayMeta, "a/c/0/0": "x", "g/zarr.json": groupMeta, "g/b/zarr.json": arrayMeta}, false, true, true, "", nil},
		{"file, no overwrite", nil, true, false, false, "already exists", &ExistsError{}},
		{"file, overwrite", nil, true, true, false, "is a file", &NotStoreError{}},
		{"non-store dir, overwrite", map[string]string{"precious.txt": "x"}, false, true, false, "no zarr.json", &NotStoreError{}},
		{"foreign file in a store", with(store, map[string]string{"notes.txt": "keep me"}), false, true, false, "notes.txt", &NotStoreError{}},
		{"foreign dir in a store", with(store, map[string]string{"raw/": ""}), false, true, false, "raw/", &NotStoreError{}},
		{"foreign file in the chunk tree", with(store, map[string]string{"c/0/readme": "x"}), false, true, false, "c/0/readme", &NotStoreError{}},
		{"symlink in the chunk tree", with(store, map[string]string{"c/2": "->/etc"}), false, true, false, "c/2", &NotStoreError{}},
		{"fifo in a store", with(store, map[string]string{"c/0/1": "|fifo"}), false, true, false, "c/0/1", &NotStoreError{}},
		{"zarr.json is a symlink", map[string]string{"zarr.json": "->/etc/hostname"}, false, true, false, "not a regular file", &NotStoreError{}},
		{"zarr.json is empty", map[string]string{"zarr.json": ""}, false, true, false, "not JSON", &NotStoreError{}},
		{"zarr.json is v2", map[string]string{"zarr.json": `{"zarr_format": 2}`}, false, true, false, "not a Zarr v3", &NotStoreError{}},
		{"zarr.json is a fifo", map[string]string{"zarr.json": "|fifo"}, false, true, false, "not a regular file", &NotStoreError{}},
		{"group child without zarr.json", map[string]string{"zarr.json": groupMeta, "a/": ""}, false, true, false, "a/", &NotStoreError{}},
		{"group with a stray file", map[string]string{"zarr.json": groupMeta, "x.txt": "x"}, false, true, false, "x.txt", &NotStoreError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out := filepath.Join(base, "s.zarr")
			switch {
			case tc.asFile:
				os.WriteFile(out, []byte("data"), 0o644)
			case tc.files != nil:
				os.Mkdir(out, 0o755)
				tree(t, out, tc.files)
			}
			before := snapshot(t, base)
			s, err := Open(out, Options{Overwrite: tc.overwrite})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open: err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), out) {
					t.Errorf("error %q does not name the output", err)
				}
				switch tc.errType.(type) {
				case *ExistsError:
					var e *ExistsError
					if !errors.As(err, &e) {
						t.Errorf("err %T, want *ExistsError", err)
					}
				case *NotStoreError:
					var e *NotStoreError
					if !errors.As(err, &e) {
						t.Errorf("err %T, want *NotStoreError", err)
					}
				}
				if after := snapshot(t, base); !equalMaps(before, after) {
					t.Errorf("a refused Open changed the disk:\nbefore %v\nafter  %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Replacing() != tc.replacing {
				t.Errorf("Replacing() = %v, want %v", s.Replacing(), tc.replacing)
			}
			if tc.replacing {
				// The old store is untouched until Finish.
				for k, v := range tc.files {
					if strings.HasSuffix(k, "/") {
						continue
					}
					if b, err := os.ReadFile(filepath.Join(out, k)); err != nil || string(b) != v {
						t.Errorf("old %s changed during the run: %q, %v", k, b, err)
					}
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
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

// TestReplace: Finish swaps the new store in and removes the old one;
// Abandon keeps the old one and keeps the new one only when asked.
func TestReplace(t *testing.T) {
	old := map[string]string{"zarr.json": arrayMeta, "c/0/0": "old0", "c/5/0": "old5"}
	tests := []struct {
		name     string
		end      func(s Store) (string, error)
		wantDir  map[string]string // content of the output after the end
		wantKept bool
	}{
		{"finish", func(s Store) (string, error) { return "", s.Finish() }, map[string]string{"zarr.json": "new", "c": "dir", "c/0": "dir", "c/0/0": "new0"}, false},
		{"abandon, keep", func(s Store) (string, error) { return s.Abandon(true) }, nil, true},
		{"abandon, nothing to keep", func(s Store) (string, error) { return s.Abandon(false) }, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out := filepath.Join(base, "s.zarr")
			os.Mkdir(out, 0o755)
			tree(t, out, old)
			oldSnap := snapshot(t, out)
			s, err := Open(out, Options{Overwrite: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Sink().Put("c/0/0", []byte("new0")); err != nil {
				t.Fatal(err)
			}
			if err := s.Sink().Put("zarr.json", []byte("new")); err != nil {
				t.Fatal(err)
			}
			kept, err := tc.end(s)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			want := tc.wantDir
			if want == nil {
				want = oldSnap
			}
			if got := snapshot(t, out); !equalMaps(got, want) {
				t.Errorf("output after %s:\n got %v\nwant %v", tc.name, got, want)
			}
			// Beside the output: nothing, or exactly the kept new store.
			ents, _ := os.ReadDir(base)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			wantNames := "s.zarr"
			if tc.wantKept {
				wantNames = "s.zarr s.zarr.zwrite-kept-1"
				if kept != out+".zwrite-kept-1" {
					t.Errorf("kept = %q", kept)
				}
				if b, _ := os.ReadFile(filepath.Join(kept, "c", "0", "0")); string(b) != "new0" {
					t.Errorf("kept store lacks the new data: %q", b)
				}
			}
			if strings.Join(names, " ") != wantNames {
				t.Errorf("entries beside the store: %v, want %s", names, wantNames)
			}
		})
	}
}

// TestAbandonInPlace: a new store that committed nothing is removed again
// (or emptied, when its directory existed before); one that committed data
// stays.
func TestAbandonInPlace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existed  bool
		keep     bool
		wantGone bool
		wantSnap map[string]string
	}{
		{"created, nothing kept", false, false, true, nil},
		{"created, kept", false, true, false, map[string]string{"zarr.json": "m", "c": "dir", "c/0": "x"}},
		{"existed empty, nothing kept", true, false, false, map[string]string{}},
		{"created, nothing kept, a stranger's file", false, false, false, map[string]string{"other.txt": "o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "s.zarr")
			if tc.existed {
				os.Mkdir(out, 0o755)
			}
			s, err := Open(out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Sink().Put("zarr.json", []byte("m"))
			s.Sink().Put("c/0", []byte("x"))
			if tc.wantSnap["other.txt"] != "" {
				os.WriteFile(filepath.Join(out, "other.txt"), []byte("o"), 0o644)
			}
			if _, err := s.Abandon(tc.keep); err != nil {
				t.Fatal(err)
			}
			_, err = os.Stat(out)
			if gone := errors.Is(err, os.ErrNotExist); gone != tc.wantGone {
				t.Fatalf("store gone = %v, want %v", gone, tc.wantGone)
			}
			if !tc.wantGone {
				if got := snapshot(t, out); !equalMaps(got, tc.wantSnap) {
					t.Errorf("store after abandon: %v, want %v", got, tc.wantSnap)
				}
			}
		})
	}
}

// TestLock: one writer per store; a dead writer's lock is taken over with
// a note; another host's lock is refused unless BreakLock.
func TestLock(t *testing.T) {
	t.Run("second writer refused", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "s.zarr")
		a, err := Open(out, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		a.Sink().Put("zarr.json", []byte(arrayMeta))
		for _, o := range []Options{{}, {Overwrite: true}, {BreakLock: true}} {
			_, err := Open(out, o)
			var le *LockedError
			if !errors.As(err, &le) {
				t.Fatalf("second Open %+v: err = %v, want *LockedError", o, err)
			}
			if le.Holder.PID != os.Getpid() || le.Holder.Host != lockHost() || !strings.Contains(err.Error(), "being written by another zwrite") {
				t.Errorf("LockedError %+v: %v", le.Holder, err)
			}
		}
		if err := a.Finish(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(out, LockName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lock file left after Finish: %v", err)
		}
		b, err := Open(out, Options{Overwrite: true})
		if err != nil {
			t.Fatalf("Open after the first writer finished: %v", err)
		}
		b.Close()
	})
	dead := LockInfo{PID: 999999999, Host: lockHost(), Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	other := LockInfo{PID: 42, Host: "elsewhere.example", Start: dead.Start}
	for _, tc := range []struct {
		name      string
		holder    LockInfo
		breakLock bool
		wantErr   string
		wantNote  string
	}{
		{"stale, this host", dead, false, "", "took over the lock left by pid 999999999"},
		{"foreign host", other, false, "locked by a writer on another host (pid 42 on host elsewhere.example", ""},
		{"foreign host, break", other, true, "", "broke the lock of pid 42 on host elsewhere.example"},
		{"garbled lock file", LockInfo{}, false, "", "took over the lock left by an unknown writer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "s.zarr")
			os.Mkdir(out, 0o755)
			content := tc.holder.marshal()
			if tc.holder == (LockInfo{}) {
				content = []byte("garbage\n")
			}
			os.WriteFile(filepath.Join(out, LockName), content, 0o644)
			s, err := Open(out, Options{BreakLock: tc.breakLock})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				var fe *ForeignLockError
				if !errors.As(err, &fe) {
					t.Errorf("err %T, want *ForeignLockError", err)
				}
				if b, _ := os.ReadFile(filepath.Join(out, LockName)); string(b) != string(content) {
					t.Errorf("the refused Open changed the lock file to %q", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if notes := strings.Join(s.Notes(), "; "); !strings.Contains(notes, tc.wantNote) {
				t.Errorf("notes %q, want %q", notes, tc.wantNote)
			}
			var li LockInfo
			b, _ := os.ReadFile(filepath.Join(out, LockName))
			if err := json.Unmarshal(b, &li); err != nil || li.PID != os.Getpid() {
				t.Errorf("lock file after the takeover: %q (%v), want our pid", b, err)
			}
		})
	}
}

// TestInputInside: an input inside the store is refused, also through a
// symlink, before anything is touched; inputs beside it are fine.
func TestInputInside(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "s.zarr")
	os.Mkdir(out, 0o755)
	tree(t, out, map[string]string{"zarr.json": arrayMeta, "c/0": "x"})
	tree(t, base, map[string]string{"in.raw": "x", "link.raw": "->" + filepath.Join(out, "c", "0")})
	for _, tc := range []struct {
		input string
		bad   bool
	}{
		{filepath.Join(out, "c", "0"), true},
		{filepath.Join(base, "link.raw"), true},
		{out, true},
		{filepath.Join(base, "in.raw"), false},
		{filepath.Join(base, "s.zarr.raw"), false},
	} {
		s, err := Open(out, Options{Overwrite: true, Inputs: []string{tc.input}})
		var ie *InputInsideError
		if got := errors.As(err, &ie); got != tc.bad {
			t.Errorf("input %s: err = %v, want refused %v", tc.input, err, tc.bad)
		}
		if err == nil {
			s.Close() // abandoned: the old store stays for the next case
		}
	}
}

// TestOutputSymlink: an output named through a symlink replaces the
// directory the link points to, and the link stays a link.
func TestOutputSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "data", "s.zarr")
	os.MkdirAll(real, 0o755)
	tree(t, real, map[string]string{"zarr.json": arrayMeta, "c/0": "old"})
	link := filepath.Join(base, "s.zarr")
	os.Symlink(real, link)
	s, err := Open(link, Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Sink().Put("zarr.json", []byte("new"))
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if got := snapshot(t, real); !equalMaps(got, map[string]string{"zarr.json": "new"}) {
		t.Errorf("store behind the link: %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(real)); len(ents) != 1 {
		t.Errorf("left beside the real store: %v", ents)
	}
}

// TestOpenPath: a node inside a group store gets its missing parent groups
// created; parents that are arrays, and roots that hold other files, are
// refused; separate nodes lock separately; replacing one node leaves the
// others alone.
func TestOpenPath(t *testing.T) {
	t.Run("creates groups", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "s.zarr")
		s, err := Open(root, Options{Path: "cams/cam1"})
		if err != nil {
			t.Fatal(err)
		}
		s.Sink().Put("zarr.json", []byte(arrayMeta))
		// A second node of the same store, while the first is open.
		s2, err := Open(root, Options{Path: "cams/cam2"})
		if err != nil {
			t.Fatalf("second node: %v", err)
		}
		s2.Sink().Put("zarr.json", []byte(arrayMeta))
		if _, err := Open(root, Options{Path: "cams/cam1"}); err == nil || !strings.Contains(err.Error(), "being written") {
			t.Fatalf("same node twice: %v, want it locked", err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		if err := s2.Finish(); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{root, filepath.Join(root, "cams")} {
			if k, err := nodeKind(d); err != nil || k != "group" {
				t.Errorf("%s: %q, %v; want a group", d, k, err)
			}
		}
		if _, n, err := foreign(root, 10); err != nil || n != 0 {
			t.Errorf("the store is not all Zarr's: %d foreign, %v", n, err)
		}
		if s.Location() != filepath.Join(root, "cams", "cam1") {
			t.Errorf("Location %q", s.Location())
		}
	})
	for _, tc := range []struct {
		name  string
		files map[string]string
		path  string
		want  string
	}{
		{"root is an array", map[string]string{"zarr.json": arrayMeta}, "a", "is a Zarr array, which cannot hold other nodes"},
		{"parent is an array", map[string]string{"zarr.json": groupMeta, "g/zarr.json": arrayMeta}, "g/a", "is a Zarr array"},
		{"root holds other files", map[string]string{"notes.txt": "x"}, "a", "holds other files (notes.txt)"},
		{"broken group zarr.json", map[string]string{"zarr.json": "{"}, "a", "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "s.zarr")
			os.Mkdir(root, 0o755)
			tree(t, root, tc.files)
			before := snapshot(t, root)
			_, err := Open(root, Options{Path: tc.path, Overwrite: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if after := snapshot(t, root); !equalMaps(before, after) {
				t.Errorf("refused Open changed the store: %v -> %v", before, after)
			}
		})
	}
	t.Run("replace one node", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "s.zarr")
		os.Mkdir(root, 0o755)
		tree(t, root, map[string]string{"zarr.json": groupMeta, "a/zarr.json": arrayMeta, "a/c/0": "old", "b/zarr.json": arrayMeta, "b/c/0": "keep"})
		s, err := Open(root, Options{Path: "a", Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Sink().Put("zarr.json", []byte(arrayMeta))
		s.Sink().Put("c/0", []byte("new"))
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"zarr.json": groupMeta, "a": "dir", "a/zarr.json": arrayMeta, "a/c": "dir", "a/c/0": "new", "b": "dir", "b/zarr.json": arrayMeta, "b/c": "dir", "b/c/0": "keep"}
		if got := snapshot(t, root); !equalMaps(got, want) {
			t.Errorf("store: %v", got)
		}
	})
}

// TestResumeOpen: resume opens an existing node in place, cleaning a
// crashed writer's temp files; it refuses what is missing or not Zarr's,
// and never removes anything on Abandon.
func TestResumeOpen(t *testing.T) {
	store := map[string]string{"zarr.json": arrayMeta, "c/0/0": "x", "c/1/.0.tmp-abc": "partial", ".zarr.json.tmp-q": "half"}
	out := filepath.Join(t.TempDir(), "s.zarr")
	var nothing *NothingToResumeError
	if _, err := Open(out, Options{Resume: true}); !errors.As(err, &nothing) {
		t.Fatalf("resume of nothing: %v, want a NothingToResumeError", err)
	}
	os.Mkdir(out, 0o755)
	tree(t, out, store)
	s, err := Open(out, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Replacing() {
		t.Error("a resume writes beside the store")
	}
	if n := strings.Join(s.Notes(), ";"); !strings.Contains(n, "removed 2 temp files") {
		t.Errorf("notes %q", n)
	}
	fsys, err := s.FS()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "c/0/0"); err != nil || string(b) != "x" {
		t.Errorf("FS: %q, %v", b, err)
	}
	if _, err := s.Abandon(false); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"zarr.json": arrayMeta, "c": "dir", "c/0": "dir", "c/0/0": "x", "c/1": "dir"}
	if got := snapshot(t, out); !equalMaps(got, want) {
		t.Errorf("after an abandoned resume: %v, want %v", got, want)
	}
	os.WriteFile(filepath.Join(out, "mine.txt"), []byte("x"), 0o644)
	if _, err := Open(out, Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "mine.txt") {
		t.Fatalf("resume of a store with a foreign file: %v", err)
	}
}
