//go:build linux

package main

import (
	byteorder "encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStoreFSNeverOpensSpecialFiles: a named pipe or device in a store is
// refused by its stat, before any open (opening a device can act on it:
// rewind a tape, hang up a line). inotify sees every open of a watched
// file, so an open that happened, even one refused afterwards, shows.
func TestStoreFSNeverOpensSpecialFiles(t *testing.T) {
	store := t.TempDir()
	fifo := filepath.Join(store, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"fifo"}
	// /dev/null's numbers (1, 3); needs CAP_MKNOD.
	if err := syscall.Mknod(filepath.Join(store, "dev"), syscall.S_IFCHR|0o644, 1<<8|3); err == nil {
		names = append(names, "dev")
	} else {
		t.Logf("no device node (%v); checking the named pipe only", err)
	}
	root, err := os.OpenRoot(store)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fsys := storeFS{root}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			in, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
			if err != nil {
				t.Skipf("no inotify: %v", err)
			}
			defer syscall.Close(in)
			if _, err := syscall.InotifyAddWatch(in, filepath.Join(store, name), syscall.IN_OPEN); err != nil {
				t.Fatal(err)
			}
			if f, err := fsys.Open(name); err == nil {
				f.Close()
				t.Fatalf("Open(%s) succeeded", name)
			}
			if _, err := fsys.Stat(name); err == nil {
				t.Fatalf("Stat(%s) succeeded", name)
			}
			// The check is sound only if a real open shows: open it once,
			// without blocking, after the reader's attempts.
			opens := func() int {
				var buf [4096]byte
				n, err := syscall.Read(in, buf[:])
				if err == syscall.EAGAIN {
					return 0
				}
				if err != nil {
					t.Fatal(err)
				}
				// struct inotify_event: wd int32, mask, cookie, len uint32,
				// then len bytes of name; host byte order.
				count := 0
				for off := 0; off+syscall.SizeofInotifyEvent <= n; {
					if byteorder.NativeEndian.Uint32(buf[off+4:])&syscall.IN_OPEN != 0 {
						count++
					}
					off += syscall.SizeofInotifyEvent + int(byteorder.NativeEndian.Uint32(buf[off+12:]))
				}
				return count
			}
			if n := opens(); n != 0 {
				t.Errorf("the reader opened %s %d times; it must refuse it by its stat", name, n)
			}
			fd, err := syscall.Open(filepath.Join(store, name), syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			syscall.Close(fd)
			if n := opens(); n != 1 {
				t.Fatalf("inotify saw %d opens of an open, want 1: this check sees nothing", n)
			}
		})
	}
}
