package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// What other storage backends (s3) share with the directory store, so
// that a store means the same on every backend: the lock's content, the
// group zarr.json zwrite creates, and which entries --overwrite may
// delete (ours.go's rules, applied to a list of keys).

// GroupZarrJSON is the zarr.json of a parent group zwrite creates.
const GroupZarrJSON = groupZarrJSON

// SelfLockInfo describes this process as its lock records it.
func SelfLockInfo() LockInfo { return selfInfo() }

// ParseLockInfo reads a lock's content; a garbled lock still locks, it
// just tells less.
func ParseLockInfo(b []byte) LockInfo { return readLockInfo(b) }

// Bytes is the lock's content as the directory store writes it.
func (l LockInfo) Bytes() []byte { return l.marshal() }

// IsLocalHost reports whether a lock was recorded on this machine.
func (l LockInfo) IsLocalHost() bool { return l.Host == "" || l.Host == lockHost() }

// StaleLockNote is the warning for a lock taken over: left by a writer of
// this host that no longer runs, or (foreign) broken as asked.
func StaleLockNote(store string, old LockInfo, foreign bool) string {
	return staleNote(store, old, foreign)
}

// HolderRuns reports whether the writer a lock of this host names may
// still be running: this process, or a live process whose command line
// names zwrite. Backends without an OS lock (object storage) have only
// this to tell a live lock from a crashed writer's.
func (l LockInfo) HolderRuns() bool {
	if l.PID <= 0 {
		return false
	}
	if l.PID == os.Getpid() {
		return true
	}
	p, err := os.FindProcess(l.PID)
	if err != nil {
		return false
	}
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return false // no such process
	}
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		return true // alive, and nothing tells what it runs: assume a writer
	}
	// A pid reused by another program is no writer.
	return looksLikeZwrite(l.PID)
}

// ParseNodeKind returns the node_type ("array" or "group") of a
// zarr.json's content, or why it is no Zarr v3 node.
func ParseNodeKind(b []byte) (string, error) {
	if len(b) > maxMetaBytes {
		return "", fmt.Errorf("its zarr.json is larger than %d MiB", maxMetaBytes>>20)
	}
	var m struct {
		ZarrFormat int    `json:"zarr_format"`
		NodeType   string `json:"node_type"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("its zarr.json is not JSON: %w", err)
	}
	if m.ZarrFormat != 3 || (m.NodeType != "array" && m.NodeType != "group") {
		return "", fmt.Errorf("its zarr.json is not a Zarr v3 array or group (zarr_format %d, node_type %q)", m.ZarrFormat, m.NodeType)
	}
	return m.NodeType, nil
}

// MaxMetaBytes caps a zarr.json read while checking a store.
const MaxMetaBytes = maxMetaBytes

// IsOurName reports whether a file name is one zwrite itself leaves in a
// store (its lock, a crashed writer's temp file).
func IsOurName(name string) bool { return ourName(name) }

// ForeignKeys applies foreign's rules to a store given as the list of its
// keys (relative to the store, "/"-separated, as object storage lists
// them): the root must be a Zarr v3 node (kind reads the node_type of the
// zarr.json in a directory, "" for the root), and every key must be
// zarr.json, our lock, or a chunk key of an array, in child nodes of a
// group that are themselves such nodes. A key ending in "/" (a directory
// marker) stands for the directory. Keys that are not clean paths are
// foreign. It returns up to max foreign paths (directories with a
// trailing "/"), sorted, and how many there are in all.
func ForeignKeys(keys []string, kind func(dir string) (string, error), max int) (paths []string, n int, err error) {
	type dir struct {
		files map[string]bool
		dirs  map[string]bool
	}
	tree := map[string]*dir{}
	get := func(d string) *dir {
		t := tree[d]
		if t == nil {
			t = &dir{files: map[string]bool{}, dirs: map[string]bool{}}
			tree[d] = t
		}
		return t
	}
	get("")
	var bad []string
	for _, k := range keys {
		marker := strings.HasSuffix(k, "/")
		clean := strings.TrimSuffix(k, "/")
		if clean == "" || CheckKey(clean) != nil {
			bad = append(bad, k)
			continue
		}
		// Every parent is a directory of its parent.
		parts := strings.Split(clean, "/")
		for i := 1; i < len(parts); i++ {
			get(strings.Join(parts[:i-1], "/")).dirs[parts[i-1]] = true
			get(strings.Join(parts[:i], "/"))
		}
		parent := path.Dir(clean)
		if parent == "." {
			parent = ""
		}
		base := path.Base(clean)
		if marker {
			get(parent).dirs[base] = true
			get(clean)
		} else {
			get(parent).files[base] = true
		}
	}
	rootKind, err := kind("")
	if err != nil {
		return nil, 0, err
	}
	var all []string
	add := func(rel string) { all = append(all, rel) }
	join := func(d, name string) string {
		if d == "" {
			return name
		}
		return d + "/" + name
	}
	var walkChunks func(d string)
	walkChunks = func(d string) {
		t := get(d)
		for name := range t.files {
			if !digits(name) && !ourName(name) {
				add(join(d, name))
			}
		}
		for name := range t.dirs {
			if digits(name) {
				walkChunks(join(d, name))
			} else {
				add(join(d, name) + "/")
			}
		}
	}
	var walkNode func(d, k string)
	walkNode = func(d, k string) {
		t := get(d)
		for name := range t.files {
			switch {
			case name == "zarr.json" || ourName(name):
			case k == "array" && chunkKeyName(name):
			default:
				add(join(d, name))
			}
		}
		for name := range t.dirs {
			r := join(d, name)
			switch {
			case k == "array" && name == "c":
				walkChunks(r)
			case k == "group":
				ck, err := "", error(nil)
				if tree[r] != nil && tree[r].files["zarr.json"] {
					ck, err = kind(r)
				} else {
					err = fmt.Errorf("no zarr.json")
				}
				if err != nil {
					add(r + "/")
					continue
				}
				walkNode(r, ck)
			default:
				add(r + "/")
			}
		}
	}
	walkNode("", rootKind)
	all = append(all, bad...)
	sort.Strings(all)
	if len(all) > max {
		return all[:max], len(all), nil
	}
	return all, len(all), nil
}
