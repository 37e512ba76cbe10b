package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// dirStore is a Store in a directory.
type dirStore struct {
	display string // the output as the user named it
	dir     string // the store's path
	work    string // where the sink writes: dir, or the new store beside it
	created bool   // Open created dir
	resume  bool   // continuing an existing node in place: never removed
	sink    *Dir
	lock    *storeLock
	notes   []string

	mu   sync.Mutex
	done bool
}

// openDir prepares the store directory at root for a new run.
func openDir(root string, o Options) (Store, error) {
	path, display := root, root
	if o.Path != "" {
		path = filepath.Join(root, filepath.FromSlash(o.Path))
		display = path
	}
	s := &dirStore{display: display, dir: path, work: path, resume: o.Resume}
	if err := checkInputs(path, o.Inputs); err != nil {
		return nil, err
	}
	if o.Path != "" {
		if err := ensureGroups(root, o.Path, o.Resume); err != nil {
			return nil, err
		}
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// An output named through a symlink: work on the directory it
		// points to, so that the final swap replaces that directory (and
		// not the link, which would leave the old data orphaned).
		if real, err := filepath.EvalSymlinks(path); err == nil {
			s.dir, s.work = real, real
		}
	}
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && o.Resume:
		return nil, &NothingToResumeError{Store: path, Reason: "it does not exist"}
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create output %s: %w", path, bare(err))
		}
		s.created = true
	case err != nil:
		return nil, fmt.Errorf("output %s: %w", path, bare(err))
	case !fi.IsDir():
		if !o.Overwrite {
			return nil, &ExistsError{Store: path}
		}
		return nil, &NotStoreError{Store: path, Reason: "it is a file, not a directory"}
	}
	// Lock first: a store another writer is filling must be reported as
	// such, not as "exists" (it is not empty) or as foreign.
	if s.lock, err = s.takeLock(s.dir, o.BreakLock); err != nil {
		if s.created {
			os.Remove(s.dir)
		}
		return nil, err
	}
	if err := s.prepare(o); err != nil {
		s.lock.release()
		if s.created {
			os.Remove(s.dir)
		}
		return nil, err
	}
	if s.sink, err = NewDir(s.work, DirOptions{Fsync: o.Fsync}); err != nil {
		s.abandonWork()
		s.lock.release()
		return nil, err
	}
	return s, nil
}

func (s *dirStore) takeLock(dir string, breakForeign bool) (*storeLock, error) {
	l, note, err := acquireLock(dir, s.display, breakForeign)
	if err != nil {
		return nil, err
	}
	if note != "" {
		s.notes = append(s.notes, note)
	}
	return l, nil
}

// prepare decides where the run writes: in place when the directory is
// empty (but for our lock and a crashed writer's temp files), beside it
// when an existing store is to be replaced.
func (s *dirStore) prepare(o Options) error {
	if o.Resume {
		return s.prepareResume()
	}
	empty, err := onlyOurs(s.dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", s.display, bare(err))
	}
	if empty {
		ents, _ := os.ReadDir(s.dir)
		for _, e := range ents {
			if e.Name() != LockName {
				os.Remove(filepath.Join(s.dir, e.Name()))
			}
		}
		return nil
	}
	if !o.Overwrite {
		return &ExistsError{Store: s.display}
	}
	paths, n, err := foreign(s.dir, maxForeignListed)
	if err != nil {
		return &NotStoreError{Store: s.display, Reason: err.Error()}
	}
	if n > 0 {
		return &NotStoreError{Store: s.display, Foreign: paths, N: n}
	}
	// The new store goes beside the old one, in the same directory so the
	// final swap is a rename within one file system.
	abs, err := filepath.Abs(s.dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", s.display, err)
	}
	parent, base := filepath.Split(abs)
	for try := 0; ; try++ {
		work := filepath.Join(parent, "."+base+".zwrite-new-"+strconv.FormatUint(rand.Uint64(), 36))
		err := os.Mkdir(work, 0o755)
		if err == nil {
			s.work = work
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || try > 100 {
			return fmt.Errorf("output %s: create the new store beside the old one (it replaces the old one only once the run succeeds): %w", s.display, bare(err))
		}
	}
}

// prepareResume checks that the node is a Zarr node holding nothing but
// Zarr's entries, and removes the temp files a crashed writer left in it.
func (s *dirStore) prepareResume() error {
	paths, n, err := foreign(s.dir, maxForeignListed)
	if err != nil {
		if empty, _ := onlyOurs(s.dir); empty {
			return &NothingToResumeError{Store: s.display, Reason: "it holds no data yet: a writer stopped before writing any"}
		}
		return &NotStoreError{Store: s.display, Reason: err.Error()}
	}
	if n > 0 {
		return &NotStoreError{Store: s.display, Foreign: paths, N: n}
	}
	var removed int
	err = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != LockName && ourName(d.Name()) {
			if err := os.Remove(p); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("output %s: remove stale temp files: %w", s.display, bare(err))
	}
	if removed > 0 {
		s.notes = append(s.notes, fmt.Sprintf("%s: removed %d temp files left by an earlier writer", s.display, removed))
	}
	return nil
}

// onlyOurs reports whether dir holds nothing but our lock and temp files.
func onlyOurs(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if !ourName(e.Name()) || !e.Type().IsRegular() {
			return false, nil
		}
	}
	return true, nil
}

// ensureGroups makes every parent of the node at root/path a Zarr group:
// a missing one is created (its zarr.json written without ever replacing
// one that appears meanwhile, so concurrent runs building one store agree),
// an existing one must be a group already. The root may also be a new or
// empty directory; anything else is refused.
func ensureGroups(root, path string, resume bool) error {
	parts := strings.Split(path, "/")
	dir := root
	for i := 0; i < len(parts); i++ {
		if i > 0 {
			dir = filepath.Join(dir, parts[i-1])
		}
		if err := ensureGroup(dir, resume); err != nil {
			return err
		}
	}
	return nil
}

// groupMeta is the zarr.json of a group zwrite creates.
const groupZarrJSON = "{\n  \"zarr_format\": 3,\n  \"node_type\": \"group\",\n  \"attributes\": {}\n}\n"

func ensureGroup(dir string, resume bool) error {
	kind, kerr := nodeKind(dir)
	switch {
	case kerr == nil && kind == "group":
		return nil
	case kerr == nil:
		return &NotStoreError{Store: dir, Reason: "it is a Zarr " + kind + ", which cannot hold other nodes"}
	case resume:
		return &NotStoreError{Store: dir, Reason: kerr.Error()}
	}
	if _, err := os.Lstat(filepath.Join(dir, "zarr.json")); err == nil {
		// A zarr.json that is no Zarr group (broken, a link, a FIFO).
		return &NotStoreError{Store: dir, Reason: kerr.Error()}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create group %s: %w", dir, bare(err))
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("group %s: %w", dir, bare(err))
	}
	for _, e := range ents {
		if !e.IsDir() && !ourName(e.Name()) {
			return &NotStoreError{Store: dir, Reason: "it is not a Zarr group and holds other files (" + e.Name() + "); choose a new or empty directory, or a Zarr group"}
		}
	}
	f, err := createTemp(dir, ".zarr.json.tmp")
	if err != nil {
		return fmt.Errorf("create group %s: %w", dir, bare(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(groupZarrJSON)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create group %s: %w", dir, bare(err))
	}
	// link, not rename: it fails when another run created the group
	// first, and that group is as good as ours.
	if err := os.Link(tmp, filepath.Join(dir, "zarr.json")); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create group %s: %w", dir, bare(err))
	}
	if kind, err := nodeKind(dir); err != nil || kind != "group" {
		return &NotStoreError{Store: dir, Reason: "another writer made it a Zarr " + kind}
	}
	return nil
}

// Replacing reports whether the run writes a new store beside an old one.
func (s *dirStore) Replacing() bool { return s.work != s.dir }

// Sink is where the run's files go.
func (s *dirStore) Sink() Sink { return s.sink }

// Notes are warnings for the user from Open (a stale lock taken over).
func (s *dirStore) Notes() []string { return s.notes }

// Location is the node's path as the user's output and node path name it.
func (s *dirStore) Location() string { return s.display }

// FS reads where the run writes (the existing node, for a resume). It is
// rooted at the node; nothing resolves outside it (os.Root).
func (s *dirStore) FS() (fs.FS, error) {
	r, err := os.OpenRoot(s.work)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.display, bare(err))
	}
	return r.FS(), nil
}

// Finish ends a successful run: the sink is closed, a new store replaces
// the old one (atomically where the file system allows), the old one is
// removed and the lock released.
func (s *dirStore) Finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	err := s.sink.Close()
	if err != nil {
		return s.fail(fmt.Errorf("close %s: %w", s.display, err))
	}
	if s.Replacing() {
		if err := s.swap(); err != nil {
			return s.fail(err)
		}
	}
	if err := s.lock.release(); err != nil {
		return fmt.Errorf("%s: %w", s.display, err)
	}
	return nil
}

// fail ends a Finish that could not complete: the old store stays, and the
// new one is kept for the user (its path is in the error).
func (s *dirStore) fail(err error) error {
	s.lock.release()
	if s.Replacing() {
		if kept, kerr := s.keepWork(); kerr == nil {
			return fmt.Errorf("%w; %s is unchanged and the new store is kept at %s", err, s.display, kept)
		}
		return fmt.Errorf("%w; %s is unchanged and the new store is at %s", err, s.display, s.work)
	}
	return err
}

// swap puts the new store (s.work) at s.dir and removes the old one.
func (s *dirStore) swap() error {
	old := s.work // after the exchange, the old store lives here
	ok, err := exchange(s.work, s.dir)
	if err != nil {
		return fmt.Errorf("replace %s with the new store: %w", s.display, err)
	}
	if !ok {
		// Two renames: for a moment s.dir does not exist; a reader then
		// finds no store rather than a mixed one.
		abs, _ := filepath.Abs(s.dir)
		parent, base := filepath.Split(abs)
		old = filepath.Join(parent, "."+base+".zwrite-old-"+strconv.FormatUint(rand.Uint64(), 36))
		if err := os.Rename(s.dir, old); err != nil {
			return fmt.Errorf("replace %s: move the old store aside: %w", s.display, bare(err))
		}
		if err := os.Rename(s.work, s.dir); err != nil {
			os.Rename(old, s.dir)
			return fmt.Errorf("replace %s: move the new store in: %w", s.display, bare(err))
		}
	}
	s.lock.moved(old)
	s.work = s.dir
	// Check the old store again before deleting it: something may have
	// been put into it during the run. Then keep it and say where.
	if _, n, err := foreign(old, 1); err != nil || n > 0 {
		s.notes = append(s.notes, fmt.Sprintf("%s: the old store gained entries that are not Zarr's during the run; it was kept at %s", s.display, old))
		return nil
	}
	s.lock.release()
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("%s was replaced, but removing the old store at %s failed: %w", s.display, old, bare(err))
	}
	return nil
}

// Abandon ends a run that failed or was interrupted. keep says whether the
// run committed data worth keeping. A store written in place keeps what
// was committed (or is removed again when nothing was and Open created
// it). When replacing, the old store stays as it was; the new one is kept
// under a visible name beside it when keep is set, which Abandon returns
// ("" when nothing was kept elsewhere).
func (s *dirStore) Abandon(keep bool) (kept string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return "", nil
	}
	s.done = true
	err = s.sink.Close()
	switch {
	case s.Replacing() && keep:
		kept, err = s.keepWork()
	case !keep:
		s.abandonWork()
	}
	if rerr := s.lock.release(); err == nil {
		err = rerr
	}
	return kept, err
}

// keepWork renames the new store beside the old one to a visible name.
func (s *dirStore) keepWork() (string, error) {
	for n := 1; ; n++ {
		p := fmt.Sprintf("%s.zwrite-kept-%d", strings.TrimRight(s.dir, string(filepath.Separator)), n)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Rename(s.work, p); err != nil {
			return s.work, fmt.Errorf("keep the new store: %w (it is at %s)", bare(err), s.work)
		}
		s.work = p
		return p, nil
	}
}

// abandonWork removes what the run wrote when it committed nothing: the
// new store beside an old one (a directory only this run knows), or the
// files of a store written in place, and its directory when Open created
// it. In place, only zarr.json, the chunk tree and our own names are
// removed, so files another program put there meanwhile survive.
func (s *dirStore) abandonWork() {
	if s.resume {
		return // an existing store: what it held, it keeps
	}
	if s.Replacing() {
		os.RemoveAll(s.work)
		return
	}
	s.lock.release()
	if _, n, err := foreign(s.dir, 1); err == nil && n == 0 {
		// Every entry is Zarr's (what this run wrote: an array, or an
		// image's group and levels).
		if s.created {
			os.RemoveAll(s.dir)
			return
		}
		ents, _ := os.ReadDir(s.dir)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
		return
	}
	removeOurs(s.dir)
	if s.created {
		os.Remove(s.dir) // only if empty now
	}
}

// removeOurs removes dir/zarr.json, our temp and lock files, and the
// decimal-named entries of dir/c (then the directories left empty).
func removeOurs(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == "zarr.json" || (ourName(e.Name()) && e.Type().IsRegular()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	var chunks func(d string)
	chunks = func(d string) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			switch {
			case e.IsDir() && digits(e.Name()):
				chunks(p)
				os.Remove(p)
			case e.Type().IsRegular() && (digits(e.Name()) || ourName(e.Name())):
				os.Remove(p)
			}
		}
	}
	chunks(filepath.Join(dir, "c"))
	os.Remove(filepath.Join(dir, "c"))
}

// Close releases the store; a run ended by neither Finish nor Abandon is
// abandoned with nothing kept.
func (s *dirStore) Close() error {
	_, err := s.Abandon(false)
	return err
}

// Size is the total size of the store's files (where the run writes, or
// the store itself once finished), our lock excluded.
func (s *dirStore) Size() (int64, error) {
	var n int64
	err := filepath.WalkDir(s.work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != LockName {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// checkInputs refuses inputs inside the output store. Paths are compared
// after resolving symlinks, so a link into the store is caught too.
func checkInputs(out string, inputs []string) error {
	if len(inputs) == 0 {
		return nil
	}
	root, err := filepath.Abs(out)
	if err != nil {
		return nil
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	for _, in := range inputs {
		p, err := filepath.Abs(in)
		if err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if rel, err := filepath.Rel(root, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return &InputInsideError{Store: out, Input: in}
		}
	}
	return nil
}
