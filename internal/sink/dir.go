package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

// DirOptions configure a directory sink. The zero value does not fsync.
type DirOptions struct {
	// Fsync makes Commit fsync the file before the rename and the
	// directory after it, so a committed file survives a power loss.
	// Off by default: it costs throughput and a crash of zwrite itself
	// (not of the machine) is already safe with rename alone.
	Fsync bool
}

// Dir writes files into a directory. Every file is written to a hidden
// temp name in its final directory and renamed when committed, so a reader
// (or a crash) sees either the previous file or the complete new one. It
// holds no policy about what may be replaced: Open decides that before it
// hands out a Dir.
type Dir struct {
	root string
	opt  DirOptions
	// The OS calls Commit makes, replaceable by tests to make the rare
	// failures (fsync, close, rename, directory sync) happen on demand.
	ops dirOps

	mu     sync.Mutex
	dirs   map[string]bool   // directories known to exist
	open   map[*dirFile]bool // uncommitted files, removed by Close
	closed bool
}

// tempFile is what a dirFile needs of its *os.File.
type tempFile interface {
	Write(p []byte) (int, error)
	Stat() (fs.FileInfo, error)
	Sync() error
	Close() error
}

type dirOps struct {
	wrap    func(f *os.File) tempFile // nil: the file itself
	rename  func(oldpath, newpath string) error
	syncDir func(dir string) error
}

func defaultOps() dirOps {
	return dirOps{rename: os.Rename, syncDir: syncDir}
}

// syncDir fsyncs a directory, so that a rename in it survives a power loss.
func syncDir(dir string) error {
	dh, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = dh.Sync()
	if cerr := dh.Close(); err == nil {
		err = cerr
	}
	return err
}

// NewDir returns a sink writing into the directory p, creating it (and its
// parents) if needed. It checks that p is writable, so that an unusable
// output fails before any data is read rather than at the first shard.
func NewDir(p string, o DirOptions) (*Dir, error) {
	if p == "" {
		return nil, errors.New("output path is empty")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, fmt.Errorf("create output %s: %w", p, bare(err))
	}
	f, err := createTemp(p, ".zwrite-probe")
	if err != nil {
		return nil, fmt.Errorf("output %s is not writable: %w", p, bare(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return &Dir{root: p, opt: o, ops: defaultOps(), dirs: map[string]bool{".": true}, open: map[*dirFile]bool{}}, nil
}

// createTemp creates a new file named prefix-<random> in dir, as
// os.CreateTemp does, but with mode 0666 minus the process umask (what
// os.Create gives) rather than CreateTemp's 0600: the temp file is renamed
// into place as a store file, which readers other than its owner must be
// able to open. Asking open(2) for 0666 lets the kernel apply the umask, so
// we never have to read it (syscall.Umask can only read by setting, which
// would race with other goroutines creating files).
func createTemp(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+"-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue // name taken (vanishingly rare with 64 random bits)
		}
		return f, err
	}
}

// Root is the store directory.
func (d *Dir) Root() string { return d.root }

// Create implements Sink.
func (d *Dir) Create(key string) (File, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("sink is closed")
	}
	rel := path.Dir(key)
	dir := filepath.Join(d.root, filepath.FromSlash(rel))
	if !d.dirs[rel] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		d.dirs[rel] = true
	}
	f, err := createTemp(dir, "."+path.Base(key)+".tmp")
	if err != nil {
		return nil, bare(err)
	}
	var tf tempFile = f
	if d.ops.wrap != nil {
		tf = d.ops.wrap(f)
	}
	df := &dirFile{d: d, key: key, f: tf, tmp: f.Name(), final: filepath.Join(dir, path.Base(key)), dir: dir}
	d.open[df] = true
	return df, nil
}

// Put implements Sink.
func (d *Dir) Put(key string, data []byte) error { return Put(d, key, data) }

// Close removes every file that was created but not committed.
func (d *Dir) Close() error {
	d.mu.Lock()
	d.closed = true
	files := make([]*dirFile, 0, len(d.open))
	for f := range d.open {
		files = append(files, f)
	}
	d.mu.Unlock()
	var first error
	for _, f := range files {
		if err := f.Abort(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (d *Dir) forget(f *dirFile) {
	d.mu.Lock()
	delete(d.open, f)
	d.mu.Unlock()
}

const (
	fileOpen int32 = iota
	fileCommitted
	fileAborted
)

// errCommitted is what Write returns after Commit.
var errCommitted = errors.New("file was already committed")

// bare strips the *os.PathError around err: its path is the temp file's,
// which means nothing to a user, and the caller names the key anyway
// (File errors leave the key to the caller, see sink.go).
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// errAborted is what Write and Commit return after an Abort, so that a
// writer interrupted from another goroutine never believes its file landed.
var errAborted = errors.New("file was aborted")

type dirFile struct {
	d                    *Dir
	key, tmp, final, dir string
	f                    tempFile
	n                    int64
	// state moves once, from open to committed or aborted, by CAS: that
	// settles a race between the owner's Commit and an interrupting Abort.
	state     atomic.Int32
	abortOnce sync.Once
	abortErr  error
}

func (f *dirFile) Write(p []byte) (int, error) {
	if st := f.state.Load(); st != fileOpen {
		if st == fileAborted {
			return 0, errAborted
		}
		return 0, errCommitted
	}
	// os.File is safe against a concurrent Close from Abort: the write
	// then fails with os.ErrClosed.
	n, err := f.f.Write(p)
	f.n += int64(n)
	if err != nil {
		if f.state.Load() == fileAborted {
			err = errAborted
		}
		return n, bare(err)
	}
	return n, nil
}

func (f *dirFile) Commit() error {
	if !f.state.CompareAndSwap(fileOpen, fileCommitted) {
		if f.state.Load() == fileAborted {
			return errAborted
		}
		return nil
	}
	defer f.d.forget(f)
	fail := func(err error) error {
		f.f.Close()
		os.Remove(f.tmp)
		return bare(err)
	}
	// Check the byte count the OS holds against what we wrote, as restic
	// does: a short file must never be renamed into place.
	st, err := f.f.Stat()
	if err != nil {
		return fail(err)
	}
	if st.Size() != f.n {
		return fail(fmt.Errorf("file has %d bytes, wrote %d", st.Size(), f.n))
	}
	if f.d.opt.Fsync {
		if err := f.f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.f.Close(); err != nil {
		os.Remove(f.tmp)
		return bare(err)
	}
	if err := f.d.ops.rename(f.tmp, f.final); err != nil {
		os.Remove(f.tmp)
		return fmt.Errorf("rename: %w", bare(err))
	}
	if f.d.opt.Fsync {
		// The file is in place but may not survive a power loss: report
		// it, since the caller asked for durability.
		if err := f.d.ops.syncDir(f.dir); err != nil {
			return fmt.Errorf("sync directory: %w", bare(err))
		}
	}
	return nil
}

func (f *dirFile) Abort() error {
	if !f.state.CompareAndSwap(fileOpen, fileAborted) && f.state.Load() != fileAborted {
		return nil // committed
	}
	// Once makes a second, concurrent Abort wait until the temp file is
	// really gone, so that no caller returns while it still exists.
	f.abortOnce.Do(func() {
		defer f.d.forget(f)
		// Closing the file is what interrupts a Write blocked in the kernel.
		f.f.Close()
		if err := os.Remove(f.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.abortErr = fmt.Errorf("remove temp file: %w", bare(err))
		}
	})
	return f.abortErr
}
