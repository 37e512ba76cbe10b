package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/zarr"
)

// readStore is a store opened for reading: the array and the directory
// handle that confines every file it opens to the store.
type readStore struct {
	*zarr.Array
	root *os.Root
}

// Close closes the array, then the directory. The reading commands call
// it only after their read has returned (the reads run on the command's
// goroutine and stop at an interrupt), so nothing reads a closed array.
func (s *readStore) Close() error {
	err := s.Array.Close()
	if cerr := s.root.Close(); err == nil {
		err = cerr
	}
	return err
}

// openStore opens the array store at path for reading, with a message
// that says what is wrong with a path that is no store. Every file is read
// through storeFS: nothing outside the store, nothing but regular files.
func openStore(path string) (*readStore, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store %s is a file; want a Zarr store directory", path)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(err))
	}
	a, err := zarr.Open(storeFS{root})
	if err != nil {
		root.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s has no zarr.json; it is not a Zarr v3 array store (or a writer never got to write one)", path)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &readStore{Array: a, root: root}, nil
}

// storeFS is a store directory as the reader's fs.FS, hardened against
// stores built to attack a reader:
//   - names resolve through os.Root, so neither ".." nor a symbolic link
//     (absolute, or relative and climbing out) reaches outside the store;
//   - only regular files and directories are opened: a named pipe, device
//     or socket is refused by its stat before any open (opening a device
//     can act on it), and files are opened with O_NONBLOCK so that one
//     swapped in after the stat cannot block the open, then checked again
//     on the open file.
type storeFS struct{ root *os.Root }

func (s storeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if _, err := s.Stat(name); err != nil {
		return nil, err
	}
	return s.openChecked(name)
}

// openChecked opens name without blocking and keeps it only if the open
// file is a regular file or a directory: what Open relies on when the
// file changed since its stat.
func (s storeFS) openChecked(name string) (*os.File, error) {
	// O_NONBLOCK changes nothing for regular files and directories.
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, s.explain(name, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = refuseIrregular(name, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Stat follows symbolic links inside the store and refuses what Open would.
func (s storeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	fi, err := s.root.Stat(name)
	if err != nil {
		return nil, s.explain(name, err)
	}
	if err := refuseIrregular(name, fi); err != nil {
		return nil, err
	}
	return fi, nil
}

func refuseIrregular(name string, fi fs.FileInfo) error {
	if m := fi.Mode(); !m.IsRegular() && !m.IsDir() {
		return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("a store holds regular files only; this is a %s", zarr.ModeName(m))}
	}
	return nil
}

// explain turns os.Root's refusal of a symbolic link into a message that
// names the link and says why. A name that simply does not exist keeps
// fs.ErrNotExist (a missing shard reads as the fill value).
func (s storeFS) explain(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	target, lerr := s.root.Readlink(name)
	if lerr != nil {
		return err
	}
	const rule = "readers follow only relative links that stay inside the store"
	var why error
	switch t := path.Join(path.Dir(name), filepath.ToSlash(target)); {
	case filepath.IsAbs(target):
		why = fmt.Errorf("symbolic link to %q is absolute: %s", target, rule)
	case t == ".." || strings.HasPrefix(t, "../"):
		why = fmt.Errorf("symbolic link to %q leads outside the store: %s", target, rule)
	default:
		why = fmt.Errorf("symbolic link to %q: %w", target, unwrapPath(err))
	}
	return &fs.PathError{Op: "open", Path: name, Err: why}
}

// storeArg checks that exactly one STORE is given.
func storeArg(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		return usagef("no STORE given")
	case 1:
		return nil
	}
	return usagef("one STORE at a time; got %d arguments (%q ...)", len(args), args[1])
}
