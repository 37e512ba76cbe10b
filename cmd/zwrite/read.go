package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/zarr"
)

// readStore is a store opened for reading: the file system that confines
// every file it opens to the store, and what Close releases.
type readStore struct {
	path   string // as the user named it
	fsys   fs.FS
	closer io.Closer
}

// Close releases the store. The reading commands call it only after their
// reads have returned (the reads run on the command's goroutine and stop
// at an interrupt), and close every array they opened first.
func (s *readStore) Close() error { return s.closer.Close() }

// openStore opens the store at path for reading, with a message that says
// what is wrong with a path that is no store directory. Every file is
// read through storeFS: nothing outside the store, nothing but regular
// files. It reads no file yet (node and openArray do).
//
// A URL (s3://BUCKET/PREFIX) is read from endpoint ("" for the AWS
// defaults) through the object store's own file system, which refuses
// keys outside the prefix and reads with ranged requests.
func openStore(path, endpoint string) (*readStore, error) {
	if isURL(path) {
		fsys, err := sink.OpenFS(path, endpoint)
		if err != nil {
			return nil, s3Hint(err)
		}
		return &readStore{path: path, fsys: fsys, closer: io.NopCloser(nil)}, nil
	}
	if endpoint != "" {
		return nil, usagef("--s3-endpoint is for s3:// stores; %s is a directory", path)
	}
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
	return &readStore{path: path, fsys: storeFS{root}, closer: root}, nil
}

// name is how messages name the node at p ("." is the store itself).
func (s *readStore) name(p string) string {
	if p == "." {
		return s.path
	}
	return strings.TrimRight(s.path, "/") + "/" + p
}

// node reads the node at p ("." for the store root).
func (s *readStore) node(p string) (*zarr.Node, error) {
	n, err := zarr.ReadNode(s.fsys, p)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, fs.ErrNotExist) && p == ".":
		return nil, fmt.Errorf("store %s has no zarr.json; it is not a Zarr v3 store (or a writer never got to write one)", s.path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, &missingNodeError{fmt.Errorf("%s has no zarr.json: no node there", s.name(p))}
	case p == ".":
		return nil, fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil, fmt.Errorf("%s: %w", s.name(p), err)
}

// arrayArg is node for the path --array named: a path that holds no node
// is a usage error that lists the nodes the store holds (levelFlag as for
// storeNodes).
func (s *readStore) arrayArg(ctx context.Context, p string, levelFlag bool) (*zarr.Node, error) {
	n, err := s.node(p)
	if err != nil && isMissingNode(err) {
		return nil, usagef("--array %s: %v; the store holds %s", p, err, orNone(storeNodes(ctx, s, ".", levelFlag)))
	}
	return n, err
}

// missingNodeError is a PATH that names no node of the store.
type missingNodeError struct{ err error }

func (e *missingNodeError) Error() string { return e.err.Error() }
func (e *missingNodeError) Unwrap() error { return e.err }

// sub is the file system of the node at p.
func (s *readStore) sub(p string) (fs.FS, error) {
	if p == "." {
		return s.fsys, nil
	}
	return fs.Sub(s.fsys, p)
}

// openArray opens the array at p ("." for the store root).
func (s *readStore) openArray(p string) (*zarr.Array, error) {
	a, err := zarr.OpenArray(s.fsys, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s has no zarr.json; it is not a Zarr v3 array", s.name(p))
		}
		if p == "." {
			return nil, fmt.Errorf("store %s: %w", s.path, err)
		}
		return nil, fmt.Errorf("%s: %w", s.name(p), err)
	}
	return a, nil
}

// nodePath checks --array PATH: a relative path inside the store, "." (or
// nothing) for the store itself.
func nodePath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	c := path.Clean(p)
	if strings.Contains(p, "\\") || !fs.ValidPath(c) {
		return "", usagef("--array %q: want a path inside the store, such as cam1 or pos3/raw", p)
	}
	return c, nil
}

// storeNodes lists the readable nodes at and below p, for messages that
// say what a group holds: arrays by path, images with their levels ("img
// (an image: --level 0..2)" for cat, "img (an image of 3 levels)"
// otherwise). Nodes that do not read are left out.
func storeNodes(ctx context.Context, s *readStore, p string, levelFlag bool) []string {
	var out []string
	levels := map[string]bool{}
	_ = zarr.WalkNodes(ctx, s.fsys, p, func(n *zarr.Node, err error) error {
		switch {
		case err != nil || levels[n.Path]:
		case n.Image != nil:
			ms := &n.Image.Multiscales[0]
			for _, ds := range ms.Datasets {
				levels[path.Join(n.Path, ds.Path)] = true
			}
			name := n.Path
			if name == "." {
				name = "the store itself"
			}
			if levelFlag {
				out = append(out, fmt.Sprintf("%s (an image: --level 0..%d)", name, len(ms.Datasets)-1))
			} else {
				out = append(out, fmt.Sprintf("%s (an image of %d levels)", name, len(ms.Datasets)))
			}
		case n.Type == zarr.NodeArray:
			out = append(out, n.Path)
		}
		return nil
	})
	return out
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
// names the link and says why: name itself, or a directory on the way to
// it (a node or a level that is a link out of the store). A name that
// simply does not exist keeps fs.ErrNotExist (a missing shard reads as
// the fill value).
func (s storeFS) explain(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	const rule = "readers follow only relative links that stay inside the store"
	// The deepest link first: it is the one the walk met last.
	for p := name; p != "." && p != "/"; p = path.Dir(p) {
		target, lerr := s.root.Readlink(p)
		if lerr != nil {
			continue
		}
		link := "symbolic link"
		if p != name {
			link = p + ": symbolic link" // a directory on the way
		}
		var why error
		switch t := path.Join(path.Dir(p), filepath.ToSlash(target)); {
		case filepath.IsAbs(target):
			why = fmt.Errorf("%s to %q is absolute: %s", link, target, rule)
		case t == ".." || strings.HasPrefix(t, "../"):
			why = fmt.Errorf("%s to %q leads outside the store: %s", link, target, rule)
		case p == name:
			why = fmt.Errorf("%s to %q: %w", link, target, unwrapPath(err))
		default:
			continue // a link inside the store: not the reason
		}
		return &fs.PathError{Op: "open", Path: name, Err: why}
	}
	return err
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
