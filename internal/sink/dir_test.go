package sink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// listFiles returns every file under root, relative, with "/" separators.
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			r, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	return out
}

// TestNewDir: a fresh path is created, an existing directory is used as
// it is (NewDir holds no overwrite policy: Open does), and outputs that
// cannot be written fail at once with the path in the message.
func TestNewDir(t *testing.T) {
	ro := readOnlyDir(t)
	tests := []struct {
		name    string
		path    func(base string) string
		wantErr string // substring; "" = success
	}{
		{"fresh", func(b string) string { return filepath.Join(b, "a", "s.zarr") }, ""},
		{"existing dir", func(b string) string { os.Mkdir(filepath.Join(b, "d"), 0o755); return filepath.Join(b, "d") }, ""},
		{"under a file", func(b string) string {
			os.WriteFile(filepath.Join(b, "f"), nil, 0o644)
			return filepath.Join(b, "f", "s.zarr")
		}, "create output"},
		{"read-only file system", func(string) string { return filepath.Join(ro, "s.zarr") }, "read-only file system"},
		{"empty path", func(string) string { return "" }, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path(t.TempDir())
			d, err := NewDir(p, DirOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewDir(%q): err = %v, want it to contain %q", p, err, tc.wantErr)
				}
				if p != "" && !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the path", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := listFiles(t, p); len(got) != 0 {
				t.Errorf("directory not empty after NewDir (the probe was left?): %v", got)
			}
		})
	}
}

// readOnlyDir returns a directory on a read-only file system: a read-only
// tmpfs when the tests may mount one (root here and in CI), else /proc,
// where nothing can be created. Permission bits would not do: root ignores
// them.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		if err := syscall.Mount("zwrite-ro", dir, "tmpfs", syscall.MS_RDONLY, "size=64k"); err == nil {
			t.Cleanup(func() { syscall.Unmount(dir, 0) })
			return dir
		}
	}
	return "/proc/self"
}

func TestDirFiles(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(map[bool]string{false: "nofsync", true: "fsync"}[fsync], func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.zarr")
			d, err := NewDir(p, DirOptions{Fsync: fsync})
			if err != nil {
				t.Fatal(err)
			}
			// committed file
			f, err := d.Create("c/0/1")
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("hello "))
			f.Write([]byte("world"))
			if got := listFiles(t, p); len(got) != 1 || !strings.Contains(got[0], ".tmp-") {
				t.Errorf("before commit: files %v, want one temp", got)
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err != nil {
				t.Errorf("second Commit: %v", err)
			}
			if err := f.Abort(); err != nil {
				t.Errorf("Abort after Commit: %v", err)
			}
			// aborted file
			g, _ := d.Create("c/0/2")
			g.Write([]byte("x"))
			g.Abort()
			if err := g.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}
			// left open: Close removes it
			h, _ := d.Create("c/1/0")
			h.Write([]byte("y"))
			if err := d.Put("zarr.json", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			d.Close()
			got := strings.Join(listFiles(t, p), " ")
			if got != "c/0/1 zarr.json" {
				t.Errorf("files after Close: %q, want %q", got, "c/0/1 zarr.json")
			}
			b, _ := os.ReadFile(filepath.Join(p, "c", "0", "1"))
			if string(b) != "hello world" {
				t.Errorf("c/0/1 = %q", b)
			}
			if _, err := d.Create("../x"); err == nil {
				t.Error("Create(../x) succeeded")
			}
		})
	}
}

// failFile makes one of the calls Commit makes on the temp file fail.
type failFile struct {
	tempFile
	failSync, failClose bool
	short               bool // Stat reports one byte less than written
}

var errInjected = errors.New("injected failure")

func (f *failFile) Sync() error {
	if f.failSync {
		return errInjected
	}
	return f.tempFile.Sync()
}

func (f *failFile) Close() error {
	err := f.tempFile.Close()
	if f.failClose {
		return errInjected
	}
	return err
}

func (f *failFile) Stat() (fs.FileInfo, error) {
	fi, err := f.tempFile.Stat()
	if err != nil || !f.short {
		return fi, err
	}
	return shortInfo{fi}, nil
}

type shortInfo struct{ fs.FileInfo }

func (s shortInfo) Size() int64 { return s.FileInfo.Size() - 1 }

// TestDirCommitFailures: every OS call Commit makes can fail (a full or
// failing disk); then Commit reports it, nothing appears under the key, no
// temp file is left, and the previous content of the key is untouched.
func TestDirCommitFailures(t *testing.T) {
	tests := []struct {
		name  string
		fsync bool
		setup func(d *Dir)
		want  string
	}{
		{"fsync", true, func(d *Dir) { d.ops.wrap = func(f *os.File) tempFile { return &failFile{tempFile: f, failSync: true} } }, "injected"},
		{"close", false, func(d *Dir) {
			d.ops.wrap = func(f *os.File) tempFile { return &failFile{tempFile: f, failClose: true} }
		}, "injected"},
		{"short file", false, func(d *Dir) { d.ops.wrap = func(f *os.File) tempFile { return &failFile{tempFile: f, short: true} } }, "file has 4 bytes, wrote 5"},
		{"rename", false, func(d *Dir) { d.ops.rename = func(string, string) error { return errInjected } }, "rename: injected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := t.TempDir()
			d, err := NewDir(p, DirOptions{Fsync: tc.fsync})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Put("c/0", []byte("old")); err != nil {
				t.Fatal(err)
			}
			tc.setup(d)
			f, err := d.Create("c/0")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			err = f.Commit()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Commit: err = %v, want %q", err, tc.want)
			}
			if got := listFiles(t, p); strings.Join(got, " ") != "c/0" {
				t.Errorf("files after the failed commit: %v, want only c/0 (no temp file)", got)
			}
			if b, _ := os.ReadFile(filepath.Join(p, "c", "0")); string(b) != "old" {
				t.Errorf("c/0 = %q after the failed commit, want the old content", b)
			}
		})
	}
	// A failing directory sync comes after the rename: the file is in
	// place, but Commit must say it may not be durable.
	t.Run("sync directory", func(t *testing.T) {
		p := t.TempDir()
		d, _ := NewDir(p, DirOptions{Fsync: true})
		defer d.Close()
		d.ops.syncDir = func(string) error { return errInjected }
		f, _ := d.Create("k")
		f.Write([]byte("x"))
		if err := f.Commit(); err == nil || !strings.Contains(err.Error(), "sync directory: injected") {
			t.Fatalf("Commit: err = %v, want the directory sync failure", err)
		}
	})
}

// TestDirFull: a real full disk (a tiny tmpfs) fails the Write with ENOSPC
// and leaves no temp file once the file is aborted.
func TestDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("zwrite-full", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	defer syscall.Unmount(dir, 0)
	d, err := NewDir(dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, _ := d.Create("c/0")
	_, err = f.Write(make([]byte, 1<<20))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write of 1 MiB to a 64 KiB file system: err = %v, want ENOSPC", err)
	}
	f.Abort()
	if got := listFiles(t, dir); len(got) != 0 {
		t.Errorf("files after abort: %v", got)
	}
}
