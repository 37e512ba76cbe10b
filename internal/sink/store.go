package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
)

// Options configure Open. The zero value opens a new (or empty) store and
// refuses an existing one.
type Options struct {
	// Path is where in the store the run writes its node (an array, or an
	// image group): "" is the store's root; "cam1/raw" is a node inside a
	// group store, whose missing parent groups are created. Other nodes of
	// the store are never touched, so separate runs (cameras, channels)
	// build one store, each locking only its own node.
	Path string
	// Resume opens an existing node to continue it in place (it must be a
	// Zarr node whose entries are all Zarr's); temp files a crashed writer
	// left are removed. Nothing of it is ever removed by Abandon.
	Resume bool
	// Overwrite allows replacing an existing store, but only a Zarr store
	// whose entries are all Zarr's (see foreign); anything else is refused
	// with the list of what would be lost. The new store is written beside
	// the old one and swapped in by Finish, so a run that fails, is
	// refused or is interrupted leaves the old store as it was. (Object
	// storage has no rename: there the old store's objects are removed
	// when the run creates its first object; see package s3.)
	Overwrite bool
	// Fsync makes every commit durable (see DirOptions.Fsync).
	Fsync bool
	// BreakLock takes over a lock that a writer on another host recorded.
	BreakLock bool
	// Inputs are the files the run will read: one that lies inside the
	// store is refused, since writing the store would destroy it.
	Inputs []string
	// Endpoint is the object-storage server for a URL target (e.g.
	// http://localhost:7070 for s3://): it overrides the endpoint the
	// environment names. "" uses the environment's, or the provider's.
	Endpoint string
	// MaxObjectSize bounds the largest file the run writes (a shard):
	// object stores size their upload parts from it (S3 allows 10,000
	// parts per object). 0 means a default the backend documents.
	MaxObjectSize int64
}

// ExistsError: the output exists, is not empty, and Overwrite is off.
type ExistsError struct{ Store string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("output %s already exists", e.Store)
}

// NotStoreError: Overwrite was asked for a path that is not a Zarr store,
// or holds entries that are not Zarr's; nothing was touched.
type NotStoreError struct {
	Store   string
	Reason  string   // why it is no store, or ""
	Foreign []string // entries that would be lost (the first few)
	N       int      // how many foreign entries in all
}

func (e *NotStoreError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("output %s is not a Zarr store (%s); refusing to replace it", e.Store, e.Reason)
	}
	list := strings.Join(e.Foreign, ", ")
	if e.N > len(e.Foreign) {
		list += fmt.Sprintf(" and %d more", e.N-len(e.Foreign))
	}
	return fmt.Sprintf("output %s holds %d entries that are not part of a Zarr store and would be lost: %s; refusing to replace it (move them out, or choose another output)", e.Store, e.N, list)
}

// NothingToResumeError: Resume was asked for an output that holds no
// store to continue (it does not exist, or a writer stopped before it
// wrote any frame); nothing was touched. Writing it anew is the remedy.
type NothingToResumeError struct {
	Store  string
	Reason string // why there is nothing to continue
	// Occupied: the output holds objects (what is left of a store whose
	// removal was cut short), so writing it anew needs Overwrite.
	Occupied bool
}

func (e *NothingToResumeError) Error() string {
	return fmt.Sprintf("output %s: nothing to resume (%s)", e.Store, e.Reason)
}

// InputInsideError: an input file lies inside the output store.
type InputInsideError struct{ Store, Input string }

func (e *InputInsideError) Error() string {
	return fmt.Sprintf("input %s lies inside the output store %s, which this run would replace; copy the input elsewhere first, or choose another output", e.Input, e.Store)
}

// maxForeignListed is how many foreign entries a NotStoreError names.
const maxForeignListed = 10

// Store is an output store opened for one writing run: the sink the writer
// fills, the lock that keeps every other writer out of the node for the
// run, and (with Options.Overwrite) the new node written beside the old
// one until Finish swaps it in. End every Store with Finish (the run
// succeeded) or Abandon (it did not); Close after either releases what is
// left.
type Store interface {
	// Sink is where the run's files go, keys relative to the node.
	Sink() Sink
	// FS reads the node as it is on storage (the existing node for a
	// resume; what the run wrote otherwise).
	FS() (fs.FS, error)
	// Location names the node for messages: the path or URL the user gave,
	// with the node's path inside the store.
	Location() string
	// Replacing reports whether the run writes a new node beside an old one.
	Replacing() bool
	// Notes are warnings for the user from Open (a stale lock taken over).
	Notes() []string
	// Finish ends a successful run: a new node replaces the old one, the
	// lock is released.
	Finish() error
	// Abandon ends a run that failed or was interrupted; keep says whether
	// it committed data worth keeping. It returns where a new node beside
	// an old one was kept ("" when nothing was kept elsewhere).
	Abandon(keep bool) (kept string, err error)
	// Close abandons a run ended by neither Finish nor Abandon, keeping
	// nothing, and releases the store.
	Close() error
	// Size is the total size of the node's files (where the run writes, or
	// the node once finished), zwrite's lock excluded.
	Size() (int64, error)
}

// Opener opens a store for a URL scheme (see Register).
type Opener func(u *url.URL, o Options) (Store, error)

var (
	openersMu sync.Mutex
	openers   = map[string]Opener{}
)

// Register makes Open hand URLs of scheme (e.g. "s3") to open. Packages of
// other storage backends call it from init, so that this package needs
// none of their dependencies.
func Register(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[scheme] = open
}

// Open prepares the output store at target for a new run: a directory
// path, or a URL of a registered scheme (s3://bucket/prefix).
func Open(target string, o Options) (Store, error) {
	if target == "" {
		return nil, errors.New("output path is empty")
	}
	if o.Path != "" {
		if err := CheckKey(o.Path); err != nil {
			return nil, fmt.Errorf("node path %q: want a relative path such as cam1/raw", o.Path)
		}
	}
	if scheme, _, ok := strings.Cut(target, "://"); ok && !strings.ContainsAny(scheme, "/\\") {
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", target, err)
		}
		openersMu.Lock()
		open := openers[u.Scheme]
		openersMu.Unlock()
		if open == nil {
			return nil, fmt.Errorf("output %s: storage scheme %q is not supported (want a directory path or s3://BUCKET/PREFIX)", target, u.Scheme)
		}
		return open(u, o)
	}
	return openDir(target, o)
}

// ReadOpener opens a store of a URL scheme for reading only (see
// RegisterReader); endpoint is as Options.Endpoint.
type ReadOpener func(u *url.URL, endpoint string) (fs.FS, error)

var readers = map[string]ReadOpener{} // under openersMu

// RegisterReader makes OpenFS hand URLs of scheme to open, as Register
// does for Open.
func RegisterReader(scheme string, open ReadOpener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	readers[scheme] = open
}

// IsURL reports whether target names a URL (scheme://...) rather than a
// directory path.
func IsURL(target string) bool {
	scheme, _, ok := strings.Cut(target, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, "/\\")
}

// OpenFS opens the store at target for reading: a directory (rooted
// there, nothing resolves outside it) or a URL of a registered scheme;
// endpoint is passed to the scheme's reader.
func OpenFS(target, endpoint string) (fs.FS, error) {
	if target == "" {
		return nil, errors.New("store path is empty")
	}
	if !IsURL(target) {
		r, err := os.OpenRoot(target)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", target, bare(err))
		}
		return r.FS(), nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", target, err)
	}
	openersMu.Lock()
	open := readers[u.Scheme]
	openersMu.Unlock()
	if open == nil {
		return nil, fmt.Errorf("store %s: storage scheme %q is not supported (want a directory path or s3://BUCKET/PREFIX)", target, u.Scheme)
	}
	return open(u, endpoint)
}
