package zarr

// A store's hierarchy: the nodes (arrays, groups, OME-Zarr images) at
// paths below its root, read through the same fs.FS as the arrays.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Node is one node of a store: the directory holding a zarr.json.
type Node struct {
	// Path is the node's directory, slash-separated and relative to the
	// store root; "." is the root.
	Path string
	Type NodeType
	// Meta is an array's parsed metadata (nil for a group).
	Meta *Meta
	// Attributes is a group's attributes object (nil when it has none).
	Attributes json.RawMessage
	// Image is set for a group whose attributes hold an OME-Zarr image
	// (attributes.ome).
	Image *Image
}

// Kind names the node for people: "array", "group" or "image".
func (n *Node) Kind() string {
	switch {
	case n.Image != nil:
		return "image"
	case n.Type == NodeArray:
		return "array"
	case n.Type == NodeGroup:
		return "group"
	}
	return "unknown"
}

// ReadNode reads the node at dir ("." for the store root): its zarr.json
// (capped at MaxMetadataBytes, a regular file only, as Open reads an
// array's) parsed as an array or a group, and a group's attributes.ome
// as an OME-Zarr image. A directory without a zarr.json gives an error
// that is fs.ErrNotExist; an image whose ome attributes do not parse is
// an error (the group says it is an image and is not a valid one).
func ReadNode(fsys fs.FS, dir string) (*Node, error) {
	dir = path.Clean(dir)
	if !fs.ValidPath(dir) {
		return nil, &fs.PathError{Op: "read node", Path: dir, Err: fs.ErrInvalid}
	}
	b, err := readMetadataAt(fsys, path.Join(dir, "zarr.json"))
	if err != nil {
		return nil, err
	}
	return parseNode(dir, b)
}

func parseNode(dir string, b []byte) (*Node, error) {
	t, err := ParseNode(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Path: dir, Type: t}
	if t == NodeArray {
		if n.Meta, err = ParseArray(b); err != nil {
			return nil, err
		}
		return n, nil
	}
	if n.Attributes, err = ParseGroup(b); err != nil {
		return nil, err
	}
	if n.Attributes == nil {
		return n, nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(n.Attributes, &top) == nil {
		if _, ok := top["ome"]; ok {
			if n.Image, err = ParseImage(n.Attributes); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// NodeError is a node that WalkNodes found but could not read.
type NodeError struct {
	Path string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

// WalkNodes calls fn for the node at dir and then every node below it,
// parents before children, children in lexical order. A node is a
// directory holding a zarr.json. The walk descends only into groups
// (arrays have no children), and there only into child directories:
// never through a symbolic link (the nodes it would reach are either
// inside the store already or outside it), never into a directory whose
// name starts with "." (reserved: zwrite's temp work lives there), and
// never into a directory without a zarr.json (Zarr v3 has no implicit
// groups). A node whose zarr.json cannot be read or parsed goes to fn as
// a *NodeError instead, with n nil; the walk goes on unless fn returns an
// error, which WalkNodes then returns. ctx is checked before every node.
// The node at dir itself must be readable: its error is returned.
func WalkNodes(ctx context.Context, fsys fs.FS, dir string, fn func(n *Node, err error) error) error {
	n, err := ReadNode(fsys, dir)
	if err != nil {
		return err
	}
	return walkNode(ctx, fsys, n, fn)
}

func walkNode(ctx context.Context, fsys fs.FS, n *Node, fn func(*Node, error) error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := fn(n, nil); err != nil {
		return err
	}
	if n.Type != NodeGroup {
		return nil
	}
	entries, err := fs.ReadDir(fsys, n.Path)
	if err != nil {
		return fn(nil, &NodeError{Path: n.Path, Err: fmt.Errorf("list the group: %w", err)})
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		p := path.Join(n.Path, e.Name())
		c, err := ReadNode(fsys, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // a plain directory: no node
		case err != nil:
			if err := fn(nil, &NodeError{Path: p, Err: err}); err != nil {
				return err
			}
			continue
		}
		if err := walkNode(ctx, fsys, c, fn); err != nil {
			return err
		}
	}
	return nil
}

// OpenArray opens the array at dir ("." for the root) of the store fsys,
// like Open of a store rooted there.
func OpenArray(fsys fs.FS, dir string) (*Array, error) {
	dir = path.Clean(dir)
	if dir == "." {
		return Open(fsys)
	}
	// fs.Sub refuses a path that is not inside fsys (fs.ErrInvalid).
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	return Open(sub)
}
