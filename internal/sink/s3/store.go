package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zwrite/zwrite/internal/sink"
)

func init() {
	sink.Register(Scheme, func(u *url.URL, o sink.Options) (sink.Store, error) {
		return openStore(u, o, os.Getenv, defaultTuning)
	})
	sink.RegisterReader(Scheme, func(u *url.URL, endpoint string) (fs.FS, error) {
		return openReader(u, endpoint, os.Getenv, defaultTuning)
	})
}

// store is a sink.Store for s3://BUCKET/PREFIX: the policy of the
// directory store, on keys.
//
// S3 has no rename, so a store cannot be written beside the old one and
// swapped in: with Overwrite the old store's objects are all removed when
// the new run creates its first object (the writer has started: its
// settings were accepted and its first zarr.json is due), and the new
// store is written in place. Until then a refused or failed start leaves
// the old store as it was (Replacing reports true); after that, a run
// that fails leaves what it committed, never a mix with the old store.
type store struct {
	c       *client
	t       target
	node    string // the node's key prefix: PREFIX/PATH ("" = the bucket's root)
	display string // s3://BUCKET/NODE
	resume  bool
	sink    *objSink
	lock    *lockObject
	notes   []string

	old atomic.Bool // an old store is to be replaced and is untouched so far
	// cutShort: the old store is one whose removal an earlier run began
	// and did not finish (sink.RemovingName and no zarr.json).
	cutShort bool

	mu   sync.Mutex
	done bool
}

// openStore opens the output at u for one writing run.
func openStore(u *url.URL, o sink.Options, getenv environ, tune tuning) (sink.Store, error) {
	t, err := parseTarget(u)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", u.Redacted(), err)
	}
	node := join(t.prefix, o.Path)
	display := location(t.bucket, node)
	ps, err := PartSize(o.MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", display, err)
	}
	cfg, err := resolveConfig(getenv, o.Endpoint, true)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", display, err)
	}
	c, err := newClient(cfg, t.bucket, tune)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", display, err)
	}
	s := &store{c: c, t: t, node: node, display: display, resume: o.Resume}
	ctx := context.Background()
	// One listing answers first whether the endpoint, the credentials and
	// the bucket are right, before anything is written.
	if _, _, err := c.withTries(probeTries).listDir(ctx, dirPrefix(t.prefix)); err != nil {
		return nil, fmt.Errorf("output %s: %w", display, err)
	}
	if o.Path != "" {
		if err := s.ensureGroups(ctx, t.prefix, o.Path, o.Resume); err != nil {
			return nil, err
		}
	}
	// Lock first: a node another writer is filling must be reported as
	// such, not as "exists" or as foreign.
	l, note, err := acquireLock(ctx, c, join(node, sink.LockName), display, o.BreakLock)
	if err != nil {
		return nil, err
	}
	s.lock = l
	if note != "" {
		s.notes = append(s.notes, note)
	}
	if err := s.prepare(ctx, o); err != nil {
		s.releaseLock()
		return nil, err
	}
	parts := poolParts(&tune, ps)
	s.sink = newObjSink(c, node, ps, parts, o.MaxObjectSize)
	s.sink.tr = newTracer(getenv, fmt.Sprintf("sink %s: part %s, %d part buffers", display, sizeString(ps), parts))
	if s.old.Load() {
		s.sink.before = s.removeOld
	}
	return s, nil
}

// prepare checks what the node holds: nothing (but our lock and a
// crashed writer's unfinished uploads) is written in place; an existing
// node is refused, resumed, or (Overwrite, Zarr's entries only) replaced.
func (s *store) prepare(ctx context.Context, o sink.Options) error {
	keys, err := s.c.listAll(ctx, dirPrefix(s.node))
	if err != nil {
		return fmt.Errorf("output %s: %w", s.display, err)
	}
	var rest []string
	for _, k := range keys {
		if k.rel != sink.LockName {
			rest = append(rest, k.rel)
		}
	}
	cutShort := slices.Contains(rest, sink.RemovingName) && !slices.Contains(rest, "zarr.json")
	switch {
	case o.Resume && len(rest) == 0:
		return &sink.NothingToResumeError{Store: s.display, Reason: "it does not exist"}
	case o.Resume && cutShort:
		return &sink.NothingToResumeError{Store: s.display, Reason: "an earlier run with overwrite began to remove it and did not finish: its zarr.json is gone", Occupied: true}
	case o.Resume:
		// Checked below, once a leftover marker is gone.
	case len(rest) == 0:
		return s.abortStale(ctx)
	case !o.Overwrite:
		return &sink.ExistsError{Store: s.display}
	case cutShort:
		// What is left of a store zwrite was removing: finish that, if
		// all of it is Zarr's.
		if err := s.checkCutShort(ctx, without(rest, sink.RemovingName)); err != nil {
			return err
		}
		s.cutShort = true
		s.old.Store(true)
		return nil
	}
	if slices.Contains(rest, sink.RemovingName) {
		// A removal that stopped before the store's zarr.json went: the
		// store is whole, and the marker must not outlive this run.
		if err := s.c.deleteKeys(ctx, []string{join(s.node, sink.RemovingName)}); err != nil {
			return fmt.Errorf("output %s: %w", s.display, err)
		}
		rest = without(rest, sink.RemovingName)
	}
	if err := s.checkStore(ctx, rest); err != nil {
		return err
	}
	if o.Resume {
		return s.abortStale(ctx)
	}
	s.old.Store(true)
	return nil
}

// checkStore refuses a node that is no Zarr store or holds keys that are
// not Zarr's (sink.ForeignKeys), naming what would be lost.
func (s *store) checkStore(ctx context.Context, keys []string) error {
	return s.checkStoreAs(ctx, keys, "")
}

// checkCutShort is checkStore for what a removal cut short left: the
// root's zarr.json is gone, so the rest must be Zarr's keys below a root
// array or below a root group (the marker alone proves nothing: anyone
// can put an object of that name).
func (s *store) checkCutShort(ctx context.Context, keys []string) error {
	err := s.checkStoreAs(ctx, keys, "array")
	if err == nil || s.checkStoreAs(ctx, keys, "group") == nil {
		return nil
	}
	return err
}

// checkStoreAs is checkStore with the root's node type given (rootKind)
// instead of read from its zarr.json, when rootKind is not "".
func (s *store) checkStoreAs(ctx context.Context, keys []string, rootKind string) error {
	var reqErr error // a failed request is no verdict on the store
	paths, n, err := sink.ForeignKeys(keys, func(dir string) (string, error) {
		if dir == "" && rootKind != "" {
			return rootKind, nil
		}
		kind, err := s.nodeKind(ctx, join(s.node, dir))
		var ne *notNodeError
		if err != nil && !errors.As(err, &ne) && reqErr == nil {
			reqErr = err
		}
		return kind, err
	}, 10)
	switch {
	case reqErr != nil:
		return fmt.Errorf("output %s: %w", s.display, reqErr)
	case err != nil:
		return &sink.NotStoreError{Store: s.display, Reason: err.Error()}
	case n > 0:
		return &sink.NotStoreError{Store: s.display, Foreign: paths, N: n}
	}
	return nil
}

// notNodeError: the prefix is no Zarr node (why is in words); missing
// says it has no zarr.json at all.
type notNodeError struct {
	why     string
	missing bool
}

func (e *notNodeError) Error() string { return e.why }

// nodeKind reads the node_type of the zarr.json at prefix dir: a
// *notNodeError when there is none or it is no Zarr v3 node, another
// error when it could not be read.
func (s *store) nodeKind(ctx context.Context, dir string) (string, error) {
	b, _, err := s.c.getSmall(ctx, join(dir, "zarr.json"), sink.MaxMetaBytes)
	switch {
	case notFound(err):
		return "", &notNodeError{why: "it has no zarr.json", missing: true}
	case errors.Is(err, errTooLarge):
		return "", &notNodeError{why: fmt.Sprintf("its zarr.json is larger than %d MiB", sink.MaxMetaBytes>>20)}
	case err != nil:
		return "", err
	}
	kind, err := sink.ParseNodeKind(b)
	if err != nil {
		return "", &notNodeError{why: err.Error()}
	}
	return kind, nil
}

// abortStale aborts the unfinished uploads crashed writers left in the
// node (we hold its lock, so none is a live writer's).
func (s *store) abortStale(ctx context.Context) error {
	n, err := s.c.abortUploads(ctx, dirPrefix(s.node))
	if err != nil {
		return fmt.Errorf("output %s: %w", s.display, err)
	}
	if n > 0 {
		s.notes = append(s.notes, fmt.Sprintf("%s: aborted %d unfinished uploads left by an earlier writer", s.display, n))
	}
	return nil
}

// removeOld removes the old store before the new run's first object.
// It first puts the removal marker (sink.RemovingName), then deletes the
// zarr.json files (a reader then finds no store rather than one naming
// missing shards), every other key and unfinished uploads, and the
// marker last: a removal cut short between (a crash, a failed delete)
// leaves a node the next run with overwrite recognises and finishes. It
// lists the node again and checks it once more, since something may
// have been put there since Open.
func (s *store) removeOld() error {
	ctx := context.Background()
	keys, err := s.c.listAll(ctx, dirPrefix(s.node))
	if err != nil {
		return fmt.Errorf("remove the old store %s: %w (it is unchanged)", s.display, err)
	}
	var rels []string
	for _, k := range keys {
		if k.rel != sink.LockName && k.rel != sink.RemovingName {
			rels = append(rels, k.rel)
		}
	}
	check := s.checkStore
	if s.cutShort {
		check = s.checkCutShort
	}
	if err := check(ctx, rels); err != nil {
		return fmt.Errorf("the old store changed since the run started, so it was not removed: %w", err)
	}
	s.old.Store(false)
	marker := join(s.node, sink.RemovingName)
	if _, err := s.c.putSmall(ctx, marker, []byte("zwrite is removing the store here to write a new one (overwrite)\n"), always, ""); err != nil {
		return fmt.Errorf("remove the old store %s: %w (it is unchanged)", s.display, err)
	}
	var meta, data []string
	for _, r := range rels {
		if path.Base(r) == "zarr.json" {
			meta = append(meta, join(s.node, r))
		} else {
			data = append(data, join(s.node, r))
		}
	}
	// Shallowest zarr.json first: the root's goes before any child's.
	slices.SortFunc(meta, func(a, b string) int { return strings.Count(a, "/") - strings.Count(b, "/") })
	for _, k := range meta {
		if err := s.c.deleteKeys(ctx, []string{k}); err != nil {
			return fmt.Errorf("remove the old store %s: %w", s.display, err)
		}
	}
	if err := s.c.deleteKeys(ctx, data); err != nil {
		return fmt.Errorf("remove the old store %s: %w (its zarr.json is gone; it is partly removed, and a run with overwrite finishes that)", s.display, err)
	}
	if _, err := s.c.abortUploads(ctx, dirPrefix(s.node)); err != nil {
		return fmt.Errorf("remove the old store %s: %w", s.display, err)
	}
	if err := s.c.deleteKeys(ctx, []string{marker}); err != nil {
		return fmt.Errorf("remove the old store %s: %w", s.display, err)
	}
	return nil
}

// ensureGroups makes every parent of the node PREFIX/PATH a Zarr group,
// as the directory store does: a missing one is created (conditionally,
// never replacing one that appears meanwhile), an existing one must be a
// group, and a prefix holding other objects is refused.
func (s *store) ensureGroups(ctx context.Context, root, p string, resume bool) error {
	parts := strings.Split(p, "/")
	dir := root
	for i := range parts {
		if i > 0 {
			dir = join(dir, parts[i-1])
		}
		if err := s.ensureGroup(ctx, dir, resume); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) ensureGroup(ctx context.Context, dir string, resume bool) error {
	display := location(s.t.bucket, dir)
	kind, err := s.nodeKind(ctx, dir)
	var ne *notNodeError
	switch {
	case err == nil && kind == "group":
		return nil
	case err == nil:
		return &sink.NotStoreError{Store: display, Reason: "it is a Zarr " + kind + ", which cannot hold other nodes"}
	case !errors.As(err, &ne):
		return fmt.Errorf("group %s: %w", display, err)
	case resume || !ne.missing:
		// A zarr.json that is no Zarr group is never replaced.
		return &sink.NotStoreError{Store: display, Reason: ne.why}
	}
	files, _, err := s.c.listDir(ctx, dirPrefix(dir))
	if err != nil {
		return fmt.Errorf("group %s: %w", display, err)
	}
	for _, f := range files {
		// A zarr.json here now is another run's group, created since we
		// looked: the conditional PUT below keeps it, and it is checked.
		if !sink.IsOurName(f.rel) && f.rel != "zarr.json" {
			return &sink.NotStoreError{Store: display, Reason: "it is not a Zarr group and holds other objects (" + f.rel + "); choose a new or empty prefix, or a Zarr group"}
		}
	}
	// If-None-Match: a group another run created meanwhile is as good as
	// ours, and is never replaced.
	if _, err := s.c.putSmall(ctx, join(dir, "zarr.json"), []byte(sink.GroupZarrJSON), ifAbsent, ""); err != nil && !errors.Is(err, errPrecondition) {
		return fmt.Errorf("create group %s: %w", display, err)
	}
	if kind, err := s.nodeKind(ctx, dir); err != nil || kind != "group" {
		return &sink.NotStoreError{Store: display, Reason: "another writer made it a Zarr " + kind}
	}
	return nil
}

// Sink is where the run's objects go, keys relative to the node.
func (s *store) Sink() sink.Sink { return s.sink }

// FS reads the node as it is on the server.
func (s *store) FS() (fs.FS, error) { return &objFS{c: s.c, prefix: s.node}, nil }

// Location is the node's URL.
func (s *store) Location() string { return s.display }

// Replacing reports whether an old store is still to be replaced: true
// from an Open with Overwrite until the run's first object removes it.
func (s *store) Replacing() bool { return s.old.Load() }

// Notes are warnings from Open (a stale lock taken over, stale uploads
// aborted).
func (s *store) Notes() []string { return s.notes }

// Finish ends a successful run: every file is committed or aborted, an
// old store not yet removed (a run that wrote nothing) is removed, and
// the lock is released.
func (s *store) Finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	s.sink.Close()
	if s.old.Load() {
		if err := s.removeOld(); err != nil {
			s.releaseLock()
			return err
		}
	}
	return s.releaseLock()
}

// Abandon ends a run that failed or was interrupted. With keep, what it
// committed stays. Without, the objects this run committed are removed
// again (a new store that committed nothing leaves nothing), unless it
// resumed an existing node; nothing else is ever removed (an old store
// not yet replaced is untouched: the run committed nothing). Nothing is kept elsewhere, so
// kept is always "".
func (s *store) Abandon(keep bool) (kept string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return "", nil
	}
	s.done = true
	s.sink.Close()
	if !keep && !s.resume {
		ctx, cancel := context.WithTimeout(context.Background(), s.c.tune.cleanup)
		var keys []string
		for _, k := range s.sink.committedKeys() {
			keys = append(keys, join(s.node, k))
		}
		err = s.c.withTries(cleanupTries).deleteKeys(ctx, keys)
		cancel()
		if err != nil {
			err = fmt.Errorf("remove what the run wrote to %s: %w", s.display, err)
		}
	}
	// A lock the server could not be reached to remove stays; the run's
	// own error already says the server is gone, and the lock is no harm:
	// its pid is dead, so the next writer of this host takes it over, and
	// one of another host is told how to clear it.
	if rerr := s.releaseLock(); err == nil && !errors.As(rerr, new(*EndpointError)) {
		err = rerr
	}
	return "", err
}

// releaseLock releases the lock within the cleanup bound.
func (s *store) releaseLock() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.c.tune.cleanup)
	defer cancel()
	if err := s.lock.release(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.display, err)
	}
	return nil
}

// Close abandons a run ended by neither Finish nor Abandon, keeping
// nothing.
func (s *store) Close() error {
	_, err := s.Abandon(false)
	return err
}

// Size sums the sizes of the node's objects, the lock excluded.
func (s *store) Size() (int64, error) {
	keys, err := s.c.listAll(context.Background(), dirPrefix(s.node))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, k := range keys {
		if k.rel != sink.LockName {
			n += k.size
		}
	}
	return n, nil
}

// without is keys less every key equal to k.
func without(keys []string, k string) []string {
	return slices.DeleteFunc(slices.Clone(keys), func(x string) bool { return x == k })
}
