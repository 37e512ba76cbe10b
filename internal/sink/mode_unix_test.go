//go:build unix

package sink

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDirFileMode checks that committed files get 0666 minus the umask, as
// os.Create would give, and not os.CreateTemp's 0600 (which made stores
// unreadable to anyone but their writer). The test sets the process umask,
// so it must not run in parallel with tests that create files.
func TestDirFileMode(t *testing.T) {
	tests := []struct {
		name  string
		umask int
		want  os.FileMode
	}{
		{"umask 022", 0o022, 0o644},
		{"umask 002", 0o002, 0o664},
		{"umask 077", 0o077, 0o600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := syscall.Umask(tc.umask)
			defer syscall.Umask(old)
			p := filepath.Join(t.TempDir(), "s.zarr")
			d, err := NewDir(p, DirOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Put("c/0/1", []byte("shard")); err != nil {
				t.Fatal(err)
			}
			if err := d.Put("zarr.json", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"c/0/1", "zarr.json"} {
				st, err := os.Stat(filepath.Join(p, filepath.FromSlash(key)))
				if err != nil {
					t.Fatal(err)
				}
				if got := st.Mode().Perm(); got != tc.want {
					t.Errorf("umask %03o: %s has mode %v, want %v", tc.umask, key, got, tc.want)
				}
			}
		})
	}
}
