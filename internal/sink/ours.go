package sink

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxMetaBytes caps the zarr.json read while checking a store: a real one
// is a few KiB, and a hostile path (a FIFO, /dev/zero behind a name) must
// not make the check read forever.
const maxMetaBytes = 16 << 20

// nodeKind reads dir/zarr.json and returns its node_type ("array" or
// "group"). It is an error when zarr.json is missing, is not a regular file
// (a symlink, a FIFO, a directory), or is not a Zarr v3 node.
func nodeKind(dir string) (string, error) {
	p := filepath.Join(dir, "zarr.json")
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("it has no zarr.json")
		}
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("its zarr.json is not a regular file (%s)", fi.Mode().Type())
	}
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaBytes+1))
	if err != nil {
		return "", err
	}
	return ParseNodeKind(b)
}

// ourName reports whether a directory entry is one zwrite itself leaves in
// a store: the lock, or a temp file of a crashed writer (a dot name with
// ".tmp-", or the writability probe). (RemovingName is object storage's
// alone: a directory store never writes it, so there it is foreign.)
func ourName(name string) bool {
	return name == LockName ||
		(strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")) ||
		strings.HasPrefix(name, ".zwrite-probe-")
}

// digits reports whether s is a decimal chunk coordinate.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// chunkKeyName reports whether a top-level file name of an array is a
// chunk key in one of the encodings other writers use: "c" (rank 0),
// "c.0.1" (default encoding with "."), or "0.1" (v2 encoding).
func chunkKeyName(name string) bool {
	if name == "c" {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "c."); ok {
		name = rest
	}
	for _, part := range strings.Split(name, ".") {
		if !digits(part) {
			return false
		}
	}
	return true
}

// foreign lists what in the store at dir is not part of a Zarr store, so
// that --overwrite deletes nothing else. A store is ours to delete when
// its root is a Zarr v3 node and every entry below is one of: zarr.json,
// our lock and temp names; for an array, chunk keys (a "c" tree of
// decimal names, or chunk-key files at the top); for a group, child
// directories that are themselves such nodes. Symlinks, devices, FIFOs and
// anything else are foreign. It returns up to max foreign paths (relative
// to dir, directories with a trailing "/") and how many there are in all.
func foreign(dir string, max int) (paths []string, n int, err error) {
	kind, err := nodeKind(dir)
	if err != nil {
		return nil, 0, err
	}
	add := func(rel string) {
		n++
		if len(paths) < max {
			paths = append(paths, rel)
		}
	}
	var walkNode func(rel, kind string) error
	// walkChunks checks a "c" tree: directories and files with decimal
	// names (and our temp files) only.
	var walkChunks func(rel string) error
	walkChunks = func(rel string) error {
		ents, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			r := filepath.Join(rel, e.Name())
			switch {
			case e.Type().IsRegular() && (digits(e.Name()) || ourName(e.Name())):
			case e.IsDir() && digits(e.Name()):
				if err := walkChunks(r); err != nil {
					return err
				}
			case e.IsDir():
				add(r + "/")
			default:
				add(r)
			}
		}
		return nil
	}
	walkNode = func(rel, kind string) error {
		ents, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			r := filepath.Join(rel, name)
			switch {
			case name == "zarr.json" || (e.Type().IsRegular() && ourName(name)):
				// zarr.json itself was checked by nodeKind.
			case kind == "array" && name == "c" && e.IsDir():
				if err := walkChunks(r); err != nil {
					return err
				}
			case kind == "array" && e.Type().IsRegular() && chunkKeyName(name):
			case kind == "group" && e.IsDir():
				k, err := nodeKind(filepath.Join(dir, r))
				if err != nil {
					add(r + "/")
					continue
				}
				if err := walkNode(r, k); err != nil {
					return err
				}
			case e.IsDir():
				add(r + "/")
			default:
				add(r)
			}
		}
		return nil
	}
	if err := walkNode(".", kind); err != nil {
		return nil, 0, err
	}
	return paths, n, nil
}
