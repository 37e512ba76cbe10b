package sink

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

func TestNewDir(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(p string)
		opt     DirOptions
		wantErr string // substring; "" = success
	}{
		{"fresh", func(string) {}, DirOptions{}, ""},
		{"empty dir", func(p string) { os.Mkdir(p, 0o755) }, DirOptions{}, ""},
		{"store without overwrite", func(p string) {
			os.Mkdir(p, 0o755)
			os.WriteFile(filepath.Join(p, "zarr.json"), []byte("{}"), 0o644)
		}, DirOptions{}, "exists; pass --overwrite to replace it"},
		{"store with overwrite", func(p string) {
			os.MkdirAll(filepath.Join(p, "c", "0"), 0o755)
			os.WriteFile(filepath.Join(p, "zarr.json"), []byte("{}"), 0o644)
			os.WriteFile(filepath.Join(p, "c", "0", "0"), []byte("x"), 0o644)
		}, DirOptions{Overwrite: true}, ""},
		{"non-store with overwrite", func(p string) {
			os.Mkdir(p, 0o755)
			os.WriteFile(filepath.Join(p, "precious.txt"), []byte("x"), 0o644)
		}, DirOptions{Overwrite: true}, "without zarr.json"},
		{"file without overwrite", func(p string) { os.WriteFile(p, []byte("x"), 0o644) }, DirOptions{}, "exists; pass --overwrite"},
		{"file with overwrite", func(p string) { os.WriteFile(p, []byte("x"), 0o644) }, DirOptions{Overwrite: true}, "is a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.zarr")
			tc.setup(p)
			d, err := NewDir(p, tc.opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewDir: err = %v, want it to contain %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the path", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := listFiles(t, p); len(got) != 0 {
				t.Errorf("store not empty after NewDir: %v", got)
			}
			d.Close()
		})
	}
}

func TestNewDirUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; use a path under a regular file.
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, nil, 0o644)
		if _, err := NewDir(filepath.Join(p, "s.zarr"), DirOptions{}); err == nil || !strings.Contains(err.Error(), "s.zarr") {
			t.Fatalf("err = %v, want an error naming the output", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if _, err := NewDir(filepath.Join(dir, "s.zarr"), DirOptions{}); err == nil {
		t.Fatal("NewDir in a read-only directory succeeded")
	}
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

func TestMemDiscard(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("a/b")
	f.Write([]byte("12"))
	f.Write([]byte("3"))
	if m.Temps() != 1 {
		t.Errorf("Temps = %d, want 1", m.Temps())
	}
	f.Commit()
	g, _ := m.Create("a/c")
	g.Write([]byte("zz"))
	g.Abort()
	m.Put("zarr.json", []byte("{}"))
	files := m.Files()
	if len(files) != 2 || string(files["a/b"]) != "123" || m.Temps() != 0 {
		t.Errorf("files %v temps %d", files, m.Temps())
	}
	d := NewDiscard()
	h, _ := d.Create("x")
	h.Write(make([]byte, 10))
	h.Commit()
	d.Put("y", make([]byte, 5))
	if d.Bytes() != 15 || d.Files() != 2 {
		t.Errorf("discard bytes %d files %d", d.Bytes(), d.Files())
	}
}

func TestSlow(t *testing.T) {
	s := NewSlow(NewMem(), 1<<20) // 1 MiB/s
	f, _ := s.Create("k")
	start := time.Now()
	for i := 0; i < 4; i++ {
		f.Write(make([]byte, 64<<10))
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("256 KiB at 1 MiB/s took %v, want >= 250ms", el)
	}
	// An abort interrupts a long write.
	g, _ := s.Create("k2")
	done := make(chan error)
	go func() { _, err := g.Write(make([]byte, 10<<20)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	g.Abort()
	select {
	case err := <-done:
		if err == nil {
			t.Error("interrupted write returned no error")
		}
	case <-time.After(time.Second):
		t.Fatal("Abort did not interrupt a slow write")
	}
}

func TestStalled(t *testing.T) {
	tests := []struct {
		name    string
		unblock func(s *Stalled, f File)
		wantErr bool
	}{
		{"release", func(s *Stalled, f File) { s.Release() }, false},
		{"abort", func(s *Stalled, f File) { f.Abort() }, true},
		{"close", func(s *Stalled, f File) { s.Close() }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			s := NewStalled(m, 10, func(k string) bool { return strings.HasPrefix(k, "c/") })
			if err := s.Put("zarr.json", make([]byte, 100)); err != nil {
				t.Fatal("unmatched key stalled:", err)
			}
			f, _ := s.Create("c/0")
			if n, err := f.Write(make([]byte, 5)); n != 5 || err != nil {
				t.Fatal(n, err)
			}
			done := make(chan error)
			go func() {
				_, err := f.Write(make([]byte, 20))
				if err == nil {
					err = f.Commit()
				}
				done <- err
			}()
			select {
			case <-s.Stalling():
			case <-time.After(time.Second):
				t.Fatal("write did not stall")
			}
			select {
			case <-done:
				t.Fatal("stalled write returned early")
			case <-time.After(20 * time.Millisecond):
			}
			tc.unblock(s, f)
			select {
			case err := <-done:
				if (err != nil) != tc.wantErr {
					t.Errorf("err = %v, wantErr %v", err, tc.wantErr)
				}
			case <-time.After(time.Second):
				t.Fatal("stalled write not released")
			}
			if !tc.wantErr && len(m.Files()["c/0"]) != 25 {
				t.Errorf("released file has %d bytes, want 25", len(m.Files()["c/0"]))
			}
		})
	}
}

func TestFailing(t *testing.T) {
	m := NewMem()
	s := NewFailing(m, 10)
	f, _ := s.Create("c/1/2")
	if _, err := f.Write(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	n, err := f.Write(make([]byte, 6))
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("n=%d err=%v, want 4 and ENOSPC", n, err)
	}
	f.Abort()
	if m.Temps() != 0 {
		t.Error("temp left after Abort")
	}
}

func TestRecording(t *testing.T) {
	r := NewRecording(NewMem())
	f, _ := r.Create("c/0")
	f.Write([]byte("abc"))
	f.Commit()
	g, _ := r.Create("c/1")
	g.Abort()
	var got []string
	for _, e := range r.Events() {
		got = append(got, e.String())
	}
	want := "create c/0,write c/0 3,commit c/0,create c/1,abort c/1"
	if strings.Join(got, ",") != want {
		t.Errorf("events %q, want %q", strings.Join(got, ","), want)
	}
}
