package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/zwrite/zwrite/internal/sink"
)

// S3's multipart limits (the same on every S3-compatible server we know).
const (
	minPartSize   = 5 << 20  // every part but the last
	maxPartSize   = 5 << 30  // any part
	maxParts      = 10000    // parts per upload
	maxObjectSize = 5 << 40  // one object
	basePartSize  = 8 << 20  // the smallest part we use: fewer requests than 5 MiB, as AWS advises
	firstPartCap  = 64 << 10 // a file's first part buffer starts this small and doubles
)

// DefaultMaxObjectSize is the object size assumed when Options says
// none: 10,000 parts of basePartSize (78 GiB).
const DefaultMaxObjectSize = maxParts * basePartSize

// PartSize is the part size a store uses for objects of up to maxObject
// bytes (0: DefaultMaxObjectSize): the smallest whole number of MiB, at
// least 8 MiB, with which 10,000 parts hold maxObject.
func PartSize(maxObject int64) (int64, error) {
	if maxObject <= 0 {
		maxObject = DefaultMaxObjectSize
	}
	if maxObject > maxObjectSize {
		return 0, fmt.Errorf("a file of this run may reach %s, more than the %s S3 stores in one object; use smaller shards", sizeString(maxObject), sizeString(maxObjectSize))
	}
	ps := (maxObject + maxParts - 1) / maxParts
	ps = (ps + 1<<20 - 1) &^ (1<<20 - 1)
	return max(ps, basePartSize), nil
}

// PoolParts is the number of part buffers a store of part size ps
// shares between its files (and so the most parts it uploads at once).
func PoolParts(ps int64) int { return poolParts(&defaultTuning, ps) }

func poolParts(t *tuning, ps int64) int {
	return max(2, min(t.parts, int(t.maxPoolBytes/ps)))
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<40 && n%(1<<40) == 0:
		return fmt.Sprintf("%d TiB", n>>40)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// memory counts the bytes of part buffers alive, and their peak: the
// store's memory bound made observable (tests check it).
type memory struct {
	cur, peak atomic.Int64
}

func (m *memory) add(n int64) {
	c := m.cur.Add(n)
	for {
		p := m.peak.Load()
		if c <= p || m.peak.CompareAndSwap(p, c) {
			return
		}
	}
}

// pool is the store's shared part buffers. Memory and upload concurrency
// are bounded by it:
//
//   - each file being written holds one buffer of its own, the part it is
//     filling (a file's first part starts at 64 KiB and doubles up to the
//     part size, so small files cost what they hold);
//   - when that part is full, the file takes a buffer from the pool and
//     hands the full one to an upload, which gives it to the pool when it
//     ends. So the pool always owns exactly n buffers, free or uploading,
//     and a file whose part is full blocks (in Write) while all n are
//     uploading: a slow server holds the writer back instead of growing
//     memory.
//
// Memory is therefore at most (n + files being written) x part size.
// There is no deadlock however many files are open: a pool buffer is
// only ever held by an upload, which ends.
type pool struct {
	size  int
	slots chan []byte // n entries: free buffers; nil = not yet allocated
	mem   *memory
}

func newPool(n, size int, mem *memory) *pool {
	p := &pool{size: size, slots: make(chan []byte, n), mem: mem}
	for range n {
		p.slots <- nil
	}
	return p
}

// get takes a free buffer, blocking while all are uploading.
func (p *pool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.slots:
		if b == nil {
			b = make([]byte, 0, p.size)
			p.mem.add(int64(p.size))
		}
		return b[:0], nil
	case <-ctx.Done():
		return nil, errAborted
	}
}

// put gives a full-size buffer back; it never blocks, since every put
// follows a get.
func (p *pool) put(b []byte) { p.slots <- b[:0] }

// free releases the pool's buffers (the store is done).
func (p *pool) free() {
	for {
		select {
		case b := <-p.slots:
			if b != nil {
				p.mem.add(-int64(cap(b)))
			}
		default:
			return
		}
	}
}

// objSink is the store's sink.Sink: keys relative to the node.
type objSink struct {
	c        *client
	node     string // key prefix of the node
	partSize int
	// maxObject is the largest file the run said it writes
	// (sink.Options.MaxObjectSize; 0: not said).
	maxObject int64
	maxParts  int // S3's limit (tests lower it)
	pool      *pool
	mem       memory
	tr        *tracer // nil unless TraceEnv is set

	// before runs once, before the first Create is served (an overwrite
	// removes the old store there); its error fails every Create.
	beforeOnce sync.Once
	before     func() error
	beforeErr  error

	mu        sync.Mutex
	open      map[*file]bool
	committed map[string]bool // sink keys this run committed
	closed    bool
	cleanups  sync.WaitGroup // background aborts of uploads
}

func newObjSink(c *client, node string, partSize int64, parts int, maxObject int64) *objSink {
	s := &objSink{c: c, node: node, partSize: int(partSize), maxObject: maxObject, maxParts: maxParts, open: map[*file]bool{}, committed: map[string]bool{}}
	s.pool = newPool(parts, int(partSize), &s.mem)
	return s
}

// BufferBytes implements sink.Buffered: the pool's buffers, one part per
// file being written (see pool), and a first part for one small file
// beside them (zarr.json, which the writer rewrites while shards are
// open). Files that never fill a part (maxObject below the part size)
// never draw on the pool, and their own buffer doubles only to cover
// them (grow): at most twice their size.
func (s *objSink) BufferBytes(files int) int64 {
	ps := int64(s.partSize)
	perFile, pool := ps, int64(cap(s.pool.slots))*ps
	if m := s.maxObject; m > 0 && m < ps {
		perFile, pool = min(ps, max(firstPartCap, 2*m)), 0
	}
	return pool + int64(max(files, 0))*perFile + firstPartCap
}

// Create implements sink.Sink. Nothing is sent yet: a file becomes a
// multipart upload when its first part is full, or one PUT at Commit.
func (s *objSink) Create(key string) (sink.File, error) {
	if err := sink.CheckKey(key); err != nil {
		return nil, err
	}
	if s.before != nil {
		s.beforeOnce.Do(func() { s.beforeErr = s.before() })
		if s.beforeErr != nil {
			return nil, s.beforeErr
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("sink is closed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &file{s: s, rel: key, key: join(s.node, key), ctx: ctx, cancel: cancel}
	s.open[f] = true
	return f, nil
}

// Put implements sink.Sink.
func (s *objSink) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// Close aborts every file not committed and waits (within the cleanup
// bound) for their uploads to be aborted on the server.
func (s *objSink) Close() error {
	s.mu.Lock()
	s.closed = true
	files := make([]*file, 0, len(s.open))
	for f := range s.open {
		files = append(files, f)
	}
	s.mu.Unlock()
	for _, f := range files {
		f.Abort()
	}
	s.cleanups.Wait()
	s.pool.free()
	s.tr.flush()
	return nil
}

// committedKeys are the keys this run committed, for Abandon.
func (s *objSink) committedKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.committed))
	for k := range s.committed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *objSink) done(f *file, committed bool) {
	s.mu.Lock()
	delete(s.open, f)
	if committed {
		s.committed[f.rel] = true
	}
	s.mu.Unlock()
}

// abortUpload aborts a multipart upload on the server, in the
// background and within the cleanup bound: an upload never completed
// never becomes visible, so this only frees the server's space, and a
// stalled server must not hold up the Abort that asked for it. One that
// fails is found again by the next resume or overwrite of the node
// (ListMultipartUploads).
func (s *objSink) abortUpload(key, uploadID string) {
	s.cleanups.Add(1)
	go func() {
		defer s.cleanups.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.c.tune.cleanup)
		defer cancel()
		abort := func() error {
			return s.c.doTries(ctx, "abort upload of "+key, 0, cleanupTries, func(ctx context.Context) error {
				err := s.c.core.AbortMultipartUpload(ctx, s.c.bucket, key, uploadID)
				if isCode(err, "NoSuchUpload") {
					return nil
				}
				return err
			})
		}
		if abort() != nil {
			return
		}
		// A part whose request was cancelled client-side may still be
		// landing on the server, and a part that lands after the abort
		// can bring the upload back (S3's documentation says an abort
		// may have to be repeated for that reason; seen with versitygw
		// under load in TestPartLimit). Abort once more a moment later:
		// NoSuchUpload then means it is gone.
		select {
		case <-time.After(lateAbortDelay):
			abort()
		case <-ctx.Done():
		}
	}()
}

// lateAbortDelay is how long abortUpload waits before its second abort.
const lateAbortDelay = 250 * time.Millisecond

const (
	fileOpen int32 = iota
	fileCommitting
	fileCommitted
	fileAborted
)

var errCommitted = errors.New("file was already committed")

// file is one object being written (see pool for its buffers). Write,
// Commit and Abort follow sink.File: the owner writes; Abort, from any
// goroutine, cancels every request of the file, so a Write or Commit
// stalled on the server returns at once.
type file struct {
	s        *objSink
	rel, key string
	ctx      context.Context
	cancel   context.CancelFunc
	state    atomic.Int32

	// mu is held by Write and Commit while they run, so that Abort, once
	// it has cancelled them, can release the file's buffer safely.
	mu       sync.Mutex
	buf      []byte // the part being filled (the file's own)
	n        int64  // bytes written
	uploadID string
	next     int // parts started
	uploads  sync.WaitGroup
	released bool

	emu   sync.Mutex
	err   error                // the first upload failure
	parts []minio.CompletePart // by part number - 1

	abortOnce sync.Once
}

func (f *file) failed() error {
	f.emu.Lock()
	defer f.emu.Unlock()
	return f.err
}

// fail records an upload's failure and stops the file's other requests.
func (f *file) fail(err error) {
	f.emu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.emu.Unlock()
	f.cancel()
}

// check returns the error a call on a file that is no longer open gets.
func (f *file) check() error {
	switch f.state.Load() {
	case fileOpen:
		if err := f.failed(); err != nil {
			return err
		}
		return nil
	case fileAborted:
		if err := f.failed(); err != nil {
			return err
		}
		return errAborted
	}
	return errCommitted
}

func (f *file) Write(p []byte) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil { // aborted while we waited for mu
		return 0, err
	}
	written := 0
	ps := f.s.partSize
	for len(p) > 0 {
		k := min(ps-len(f.buf), len(p))
		if cap(f.buf)-len(f.buf) < k {
			f.grow(len(f.buf) + k)
		}
		f.buf = append(f.buf, p[:k]...)
		p = p[k:]
		written += k
		f.n += int64(k)
		if len(f.buf) == ps {
			if err := f.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// grow makes room for need bytes in the file's first part: doubling, up
// to the part size (which it reaches exactly, so a full first part can
// join the pool).
func (f *file) grow(need int) {
	c := min(f.s.partSize, max(2*cap(f.buf), need, firstPartCap))
	nb := make([]byte, len(f.buf), c)
	copy(nb, f.buf)
	f.s.mem.add(int64(c - cap(f.buf)))
	f.buf = nb
}

// flush hands the full part to an upload and takes a pool buffer for the
// next one, blocking while every pool buffer is uploading.
func (f *file) flush() error {
	if err := f.checkParts(); err != nil {
		return err
	}
	tr := f.s.tr
	if f.uploadID == "" {
		t0 := tr.begin()
		err := f.s.c.do(f.ctx, "start upload", 0, func(ctx context.Context) error {
			id, err := f.s.c.core.NewMultipartUpload(ctx, f.s.c.bucket, f.key, minio.PutObjectOptions{})
			f.uploadID = id
			return err
		})
		tr.add(opInit, f.rel, 0, 0, t0)
		if err != nil {
			return f.callErr(err)
		}
	}
	t0 := tr.begin()
	next, err := f.s.pool.get(f.ctx)
	tr.add(opPoolWait, f.rel, f.next+1, 0, t0)
	if err != nil {
		return f.callErr(err)
	}
	part := f.buf
	f.buf = next // the full part becomes the pool's, next the file's
	f.next++
	f.uploads.Add(1)
	go func(num int, data []byte) {
		defer f.uploads.Done()
		defer f.s.pool.put(data)
		t0 := tr.begin()
		err := f.uploadPart(num, data)
		tr.add(opPart, f.rel, num, int64(len(data)), t0)
		if err != nil {
			f.fail(err)
		}
	}(f.next, part)
	return nil
}

// checkParts refuses a part beyond S3's 10,000 (the part size was chosen
// from the largest object the run declared: more means a wrong bound).
func (f *file) checkParts() error {
	if f.next >= f.s.maxParts {
		return fmt.Errorf("object grew past %d parts of %s (%s so far); the run declared a smaller largest object", f.s.maxParts, sizeString(int64(f.s.partSize)), sizeString(f.n))
	}
	return nil
}

// callErr is the error a Write or Commit returns for err: the upload
// failure that stopped the file, or the abort.
func (f *file) callErr(err error) error {
	if ferr := f.failed(); ferr != nil {
		return ferr
	}
	return err
}

func (f *file) uploadPart(num int, data []byte) error {
	what := fmt.Sprintf("upload part %d", num)
	return f.s.c.do(f.ctx, what, int64(len(data)), func(ctx context.Context) error {
		p, err := f.s.c.core.PutObjectPart(ctx, f.s.c.bucket, f.key, f.uploadID, num,
			bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{DisableContentSha256: true})
		if err != nil {
			return err
		}
		f.emu.Lock()
		for len(f.parts) < num {
			f.parts = append(f.parts, minio.CompletePart{})
		}
		f.parts[num-1] = minio.CompletePart{PartNumber: num, ETag: p.ETag}
		f.emu.Unlock()
		return nil
	})
}

// Commit uploads what is left and makes the object visible: one PUT for
// a file smaller than a part, else the last part and
// CompleteMultipartUpload. It returns only once the object exists, so
// whatever names it (zarr.json) is written after it. On any failure the
// upload is aborted: no partial object is ever visible.
//
// An Abort that interrupts a Commit whose last request already reached
// the server cannot take it back: the object may then appear, complete.
func (f *file) Commit() error {
	if !f.state.CompareAndSwap(fileOpen, fileCommitting) {
		if err := f.check(); err != errCommitted {
			return err
		}
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.s.tr.add(opCommit, f.rel, 0, f.n, f.s.tr.begin())
	if err := f.commit(); err != nil {
		err = f.callErr(err)
		f.state.Store(fileAborted)
		f.release()
		f.s.done(f, false)
		return err
	}
	// The object is in place, even if an Abort came in meanwhile: say
	// so, since the caller may then name it.
	f.state.Store(fileCommitted)
	f.release()
	f.s.done(f, true)
	return nil
}

func (f *file) commit() error {
	if err := f.failed(); err != nil {
		return err
	}
	c, tr := f.s.c, f.s.tr
	if f.uploadID == "" {
		data := f.buf
		defer tr.add(opPut, f.rel, 0, int64(len(data)), tr.begin())
		return c.do(f.ctx, "put", int64(len(data)), func(ctx context.Context) error {
			_, err := c.core.PutObject(ctx, c.bucket, f.key, bytes.NewReader(data), int64(len(data)), "", "",
				minio.PutObjectOptions{DisableContentSha256: true})
			return err
		})
	}
	if len(f.buf) > 0 {
		if err := f.checkParts(); err != nil {
			return err
		}
		f.next++
		t0 := tr.begin()
		err := f.uploadPart(f.next, f.buf)
		tr.add(opLast, f.rel, f.next, int64(len(f.buf)), t0)
		if err != nil {
			return err
		}
	}
	t0 := tr.begin()
	f.uploads.Wait()
	tr.add(opPartWait, f.rel, 0, 0, t0)
	if err := f.failed(); err != nil {
		return err
	}
	f.emu.Lock()
	parts := slices.Clone(f.parts)
	f.emu.Unlock()
	if len(parts) != f.next {
		return fmt.Errorf("internal error: %d of %d parts uploaded", len(parts), f.next)
	}
	defer tr.add(opComplete, f.rel, len(parts), f.n, tr.begin())
	return c.do(f.ctx, "complete upload", f.n, func(ctx context.Context) error {
		_, err := c.core.CompleteMultipartUpload(ctx, c.bucket, f.key, f.uploadID, parts, minio.PutObjectOptions{})
		return err
	})
}

// release ends the file after Commit or Abort: its requests are
// cancelled, its buffer dropped, and an upload that was not completed is
// aborted on the server. mu is held; it runs once.
func (f *file) release() {
	if f.released {
		return
	}
	f.released = true
	f.cancel()
	f.uploads.Wait()
	f.s.mem.add(-int64(cap(f.buf)))
	f.buf = nil
	if f.uploadID != "" && f.state.Load() != fileCommitted {
		f.s.abortUpload(f.key, f.uploadID)
	}
}

// Abort drops the file: it cancels every request of the file (a stalled
// Write or Commit returns within milliseconds), then aborts the upload on
// the server in the background. Safe from any goroutine, and to call
// again; after a Commit that succeeded it does nothing.
func (f *file) Abort() error {
	for {
		st := f.state.Load()
		if st == fileCommitted {
			return nil
		}
		if st == fileAborted || f.state.CompareAndSwap(st, fileAborted) {
			break
		}
	}
	f.abortOnce.Do(func() {
		f.cancel()
		// The owner's call, if any, now returns promptly: every wait in
		// it (a request, a pool buffer, the uploads) ends on the cancel.
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.state.Load() == fileCommitted || f.released {
			return // a Commit finished first (and released the file)
		}
		f.release()
		f.s.done(f, false)
	})
	return nil
}
