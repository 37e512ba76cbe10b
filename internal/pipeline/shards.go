package pipeline

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// shardWriter turns compressed batches into shard files and keeps
// zarr.json in step with what is committed. It is the shard bookkeeping
// of DESIGN.md's data flow, separate from the Writer's slot schedule:
//
//   - deliver (called oldest batch first, rule 3, from one goroutine)
//     checks a batch's output, places its chunks in the open shard row's
//     files (offsets and index entries are fixed here, in order) and
//     queues the bytes to a pool of I/O lanes;
//   - a lane owns the files assigned to it and writes each one's bytes in
//     order (create, data, index, commit), so several shards are written
//     at once while each file stays sequential;
//   - when every shard of a row has its index written, the row is ready;
//     ready rows are committed (every shard renamed into place) strictly
//     in row order, by whichever lane makes the lowest row ready, so the
//     committed shards are always a prefix of rows, also after a failure
//     in some later row's lane; a meta goroutine then rewrites zarr.json
//     to name them.
//
// A batch's done callback runs once every byte of it is written (or
// dropped after a failure): only then may its slot be refilled, since
// the queued writes point into the slot's output buffer.
//
// With no lanes (depth 1, rule 4) every task runs inline in deliver, and
// zarr.json is rewritten inline too: the simplest schedule, which the
// others must match byte for byte.
type shardWriter struct {
	spec   *zarr.Spec
	sink   sink.Sink
	fail   func(error) // records the run's first error (the Writer's)
	failed func() bool // whether the run has failed
	c      *counters

	// Delivery state, owned by the delivering goroutine.
	row     int64      // open shard row, -1 when none
	files   []*rowFile // open row's file per shard column (nil: none yet)
	entries [][]zarr.IndexEntry
	offs    []uint64
	perRow  int64 // epochs per shard row
	cps     int   // inner chunks per shard
	rowDone *rowCommit

	lanes    []chan task // nil: inline
	lanesWG  sync.WaitGroup
	inflight sync.WaitGroup // tasks queued and not yet run
	idxFree  chan []byte    // encoded-index buffers, reused
	// commitSig wakes waitRows when rows commit; limitRows: the sink
	// keeps buffers of its own per open file (sink.Buffered), so at most
	// OpenRows rows are open at once.
	commitSig chan struct{}
	limitRows bool

	// The commit frontier, advanced by whoever readies the lowest row.
	cmu       sync.Mutex
	ready     map[int64]*rowCommit // rows whose indexes are written, not yet committed
	nextRow   int64                // lowest row not yet committed
	stuck     bool                 // a commit failed: no row commits any more
	committed atomic.Int64         // frames in the committed prefix of rows
	// metaFrames is shape[0] of the last zarr.json written: stored by the
	// writer of it (under metaMu, or in an abort once the meta goroutine
	// stopped), read without a lock (Stats must not wait for a zarr.json
	// write a stalled sink holds).
	metaFrames  atomic.Int64
	metaMu      sync.Mutex
	metaSig     chan struct{} // nil: inline
	metaStop    chan struct{}
	metaDone    chan struct{}
	metaStopped bool
	derived     bool // Config.Derived: an abort names exactly the committed frames

	// Files being written, so that interrupt can abort a stalled one from
	// another goroutine (see sink.File).
	fmu       sync.Mutex
	aborting  bool
	open      map[sink.File]struct{}
	abortCh   chan struct{} // closed by interrupt
	abortOnce sync.Once
	// abortMu is held while interrupt aborts the files it took: a second
	// interrupt (abort's own, after a timer's fired) returns only once the
	// first one's aborts are done, so no temp file outlives the abort.
	abortMu sync.Mutex
}

// drainTimeout bounds how long an abort lets the lanes finish the writes
// already queued (rows whose frames all arrived, so that an interrupt
// keeps them) before it aborts every file: a healthy sink drains in
// milliseconds, a stalled one must not hold the abort.
const drainTimeout = 150 * time.Millisecond

// rowFile is one shard file of one row: created, written and committed by
// its lane alone.
type rowFile struct {
	key    string
	lane   int
	f      sink.File
	broken bool // a write failed or was skipped: never commit it
	row    *rowCommit
}

// rowCommit counts the shards of a row whose index is still to be
// written; files is every file of the row, appended by delivery before any
// of the row's finish tasks is queued.
type rowCommit struct {
	row      int64
	endFrame int64 // frames up to the row's end (or the stream's, if it ends inside)
	pending  atomic.Int64
	files    []*rowFile
}

type taskKind uint8

const (
	taskWrite taskKind = iota
	taskFinish
)

// task is one step of one file, run by the file's lane in queue order.
type task struct {
	kind  taskKind
	rf    *rowFile
	data  []byte     // taskWrite: bytes to append; taskFinish: the encoded index
	batch *batchDone // taskWrite: the batch the bytes belong to
}

// batchDone runs fn once all of a batch's writes have run.
type batchDone struct {
	pending atomic.Int64
	fn      func()
}

func (b *batchDone) release() {
	if b.pending.Add(-1) == 0 {
		b.fn()
	}
}

func newShardWriter(spec *zarr.Spec, sk sink.Sink, lanes int, fail func(error), failed func() bool, c *counters) *shardWriter {
	n := spec.ShardsPerRow()
	sw := &shardWriter{
		spec:      spec,
		sink:      sk,
		fail:      fail,
		failed:    failed,
		c:         c,
		row:       -1,
		files:     make([]*rowFile, n),
		entries:   make([][]zarr.IndexEntry, n),
		offs:      make([]uint64, n),
		perRow:    spec.EpochsPerShardRow(),
		cps:       int(spec.ChunksPerShard()),
		ready:     map[int64]*rowCommit{},
		open:      map[sink.File]struct{}{},
		abortCh:   make(chan struct{}),
		idxFree:   make(chan []byte, 2*n+2),
		commitSig: make(chan struct{}, 1),
		limitRows: sink.BufferBytes(sk, 1) > 0,
	}
	if lanes > 0 {
		sw.lanes = make([]chan task, lanes)
		for i := range sw.lanes {
			// Enough room that delivery rarely waits for a lane; the real
			// bound on memory is the slots (queued tasks point into them).
			sw.lanes[i] = make(chan task, 64)
			sw.lanesWG.Add(1)
			go sw.lane(sw.lanes[i])
		}
		sw.metaSig = make(chan struct{}, 1)
		sw.metaStop = make(chan struct{})
		sw.metaDone = make(chan struct{})
		go sw.metaLoop()
	}
	return sw
}

// resumeAt continues an array whose rows before frame start are committed
// and whose zarr.json names existing frames.
func (sw *shardWriter) resumeAt(start, existing int64) {
	sw.nextRow = start / sw.spec.Shard[0]
	sw.committed.Store(start)
	sw.c.committed.Store(start)
	sw.metaFrames.Store(existing)
}

// deliver places batch b's output in the shard files and queues its
// bytes; done runs once they are all written. It returns an error, having
// queued nothing and without calling done, when the output is
// inconsistent (a broken backend): a bad batch must not reach a file.
func (sw *shardWriter) deliver(out *stage.Output, b stage.Batch, epochFrames int64, done func()) error {
	if err := sw.check(out, b); err != nil {
		return err
	}
	endFrame := b.FirstEpoch*epochFrames + b.Frames
	endEpoch := b.FirstEpoch + (b.Frames+epochFrames-1)/epochFrames
	bd := &batchDone{fn: done}
	bd.pending.Add(1) // ours, until everything is queued
	for i := range out.Segs {
		seg := &out.Segs[i]
		if seg.Row != sw.row {
			// Segments are ordered by row, and this batch reaches the new
			// row, so every epoch of the open row has been delivered.
			sw.finishRow(endFrame)
			sw.waitRows(seg.Row)
			sw.openRow(seg.Row, endFrame)
		}
		rf := sw.files[seg.Col]
		if rf == nil {
			rf = sw.openFile(seg.Row, seg.Col)
		}
		ents := sw.entries[seg.Col]
		for _, c := range out.Chunks[seg.First : seg.First+seg.N] {
			ents[c.Inner] = zarr.IndexEntry{Offset: sw.offs[seg.Col] + uint64(c.Off-seg.Off), Nbytes: uint64(c.Size)}
		}
		sw.offs[seg.Col] += uint64(seg.Len)
		bd.pending.Add(1)
		sw.submit(task{kind: taskWrite, rf: rf, data: out.Data[seg.Off : seg.Off+seg.Len], batch: bd})
	}
	if sw.row >= 0 && endEpoch >= (sw.row+1)*sw.perRow {
		sw.finishRow(endFrame)
	}
	bd.release()
	return nil
}

// check validates a batch's output before any of it is used: every
// segment and chunk inside the output, rows in order.
func (sw *shardWriter) check(out *stage.Output, b stage.Batch) error {
	row := sw.row
	for i := range out.Segs {
		seg := &out.Segs[i]
		if seg.Row != row {
			if seg.Row < row || seg.Row < b.FirstEpoch/sw.perRow {
				return fmt.Errorf("compress stage output: segment of shard row %d out of order (row %d is open, batch starts at epoch %d)", seg.Row, row, b.FirstEpoch)
			}
			row = seg.Row
		}
		if seg.Col < 0 || seg.Col >= int64(len(sw.files)) {
			return fmt.Errorf("compress stage output: shard column %d out of range (%d per row)", seg.Col, len(sw.files))
		}
		if seg.Off < 0 || seg.Len < 0 || seg.Off+seg.Len > int64(len(out.Data)) ||
			seg.First < 0 || seg.N < 0 || seg.First+seg.N > len(out.Chunks) {
			return fmt.Errorf("compress stage output: segment (row %d, column %d) outside the output", seg.Row, seg.Col)
		}
		for _, c := range out.Chunks[seg.First : seg.First+seg.N] {
			if c.Inner < 0 || c.Inner >= int64(sw.cps) || c.Off < seg.Off || c.Size < 0 || c.Off+c.Size > seg.Off+seg.Len {
				key := zarr.ShardKey(sw.spec.ShardCoords(seg.Row, seg.Col))
				return fmt.Errorf("compress stage output: chunk %d of shard %s outside its segment", c.Inner, key)
			}
		}
	}
	return nil
}

// OpenRows is the most shard rows a Writer has uncommitted at once on a
// sink with buffers of its own (sink.Buffered, sized for that many rows
// of files): the row being filled and the one before it, whose files may
// still be committing.
const OpenRows = 2

// waitRows holds delivery back before row opens while OpenRows rows are
// still uncommitted (commits far behind the data: a slow object store
// completing uploads), so that the files open at once stay within
// OpenRows rows. The rows waited for have all their tasks queued already,
// so they commit without this goroutine. A failed or aborting run does
// not wait.
func (sw *shardWriter) waitRows(row int64) {
	if sw.lanes == nil || !sw.limitRows {
		// Inline, every row commits before the next opens; a sink that
		// keeps nothing of its own needs no limit (and a limit would keep
		// lanes idle where each file is slow: whole-frame shards, one a
		// row, on a network file system).
		return
	}
	for {
		sw.cmu.Lock()
		next, stuck := sw.nextRow, sw.stuck
		sw.cmu.Unlock()
		if row-next < OpenRows || stuck || sw.failed() || sw.isAborting() {
			return
		}
		t0 := time.Now()
		select {
		case <-sw.commitSig:
		case <-sw.abortCh:
		case <-time.After(50 * time.Millisecond): // a failure elsewhere is polled
		}
		sw.c.stallRows.Add(int64(time.Since(t0)))
	}
}

func (sw *shardWriter) openRow(row, endFrame int64) {
	sw.row = row
	sw.rowDone = &rowCommit{row: row, endFrame: endFrame}
}

func (sw *shardWriter) openFile(row, col int64) *rowFile {
	rf := &rowFile{key: zarr.ShardKey(sw.spec.ShardCoords(row, col)), row: sw.rowDone}
	if len(sw.lanes) > 0 {
		// By the shard's index over the whole array, not its column: with
		// one shard per row (whole-frame shards) every file would share
		// lane 0, and one goroutine writing one file at a time caps the
		// output at a single write stream (tmpfs: ~2.6 GB/s on the GPU
		// machine). Rows still commit in order (rowCommit), and each
		// file's tasks stay on one lane, in order.
		rf.lane = int((row*sw.spec.ShardsPerRow() + col) % int64(len(sw.lanes)))
	}
	sw.rowDone.pending.Add(1)
	sw.rowDone.files = append(sw.rowDone.files, rf)
	sw.files[col] = rf
	if sw.entries[col] == nil {
		sw.entries[col] = make([]zarr.IndexEntry, sw.cps)
	}
	for i := range sw.entries[col] {
		sw.entries[col][i] = zarr.IndexEntry{Offset: zarr.EmptyEntry, Nbytes: zarr.EmptyEntry}
	}
	sw.offs[col] = 0
	return rf
}

// finishRow queues the index and the commit of every file of the open
// row. endFrame is the end of the input delivered so far: the row's
// frames up to it become committed once all its shards are.
func (sw *shardWriter) finishRow(endFrame int64) {
	if sw.row < 0 {
		return
	}
	rc := sw.rowDone
	rc.endFrame = min((sw.row+1)*sw.perRow*sw.spec.EpochFrames(), endFrame)
	// One count held while queuing, so a fast lane cannot see the row
	// complete before all its files are queued.
	rc.pending.Add(1)
	for col, rf := range sw.files {
		if rf == nil {
			continue
		}
		var idx []byte
		select {
		case idx = <-sw.idxFree:
		default:
		}
		idx = zarr.AppendIndex(idx[:0], sw.entries[col])
		sw.submit(task{kind: taskFinish, rf: rf, data: idx})
		sw.files[col] = nil
	}
	sw.rowReady(rc)
	sw.row = -1
}

// submit runs t on its file's lane, or inline without lanes. A lane
// that stalls fills its queue; an abort then unblocks the submit.
func (sw *shardWriter) submit(t task) {
	if sw.lanes == nil {
		sw.run(t)
		return
	}
	sw.inflight.Add(1)
	select {
	case sw.lanes[t.rf.lane] <- t:
	case <-sw.abortCh:
		// Its lane may still hold the file: leave the file to the lane
		// (and the abort), and only keep the bookkeeping.
		sw.skip(t)
		sw.inflight.Done()
	}
}

// skip completes a task's bookkeeping without running it.
func (sw *shardWriter) skip(t task) {
	switch t.kind {
	case taskWrite:
		t.batch.release()
	case taskFinish:
		sw.putIdx(t.data)
	}
}

func (sw *shardWriter) putIdx(b []byte) {
	select {
	case sw.idxFree <- b:
	default:
	}
}

// isAborting reports whether interrupt was called.
func (sw *shardWriter) isAborting() bool {
	select {
	case <-sw.abortCh:
		return true
	default:
		return false
	}
}

func (sw *shardWriter) lane(tasks chan task) {
	defer sw.lanesWG.Done()
	for t := range tasks {
		sw.run(t)
		sw.inflight.Done()
	}
}

// run does one task. Once aborting, or after this file failed, it skips
// the work but still completes the bookkeeping, so every batch's done and
// every wait returns. A failure elsewhere (a stage error, another file's)
// does not stop it: the batches already delivered were good, and their
// complete rows are committed while an abort drains.
func (sw *shardWriter) run(t task) {
	rf := t.rf
	start := time.Now()
	defer func() { sw.c.deliver.Add(int64(time.Since(start))) }()
	switch t.kind {
	case taskWrite:
		defer t.batch.release()
		if rf.broken || sw.isAborting() {
			sw.drop(rf)
			return
		}
		if rf.f == nil {
			f, err := sw.create(rf.key)
			if err != nil {
				sw.fail(fmt.Errorf("create shard %s: %w", rf.key, err))
				rf.broken = true
				return
			}
			rf.f = f
		}
		if _, err := rf.f.Write(t.data); err != nil {
			sw.fail(fmt.Errorf("write shard %s: %w", rf.key, err))
			sw.drop(rf)
			return
		}
		sw.c.bytesOut.Add(int64(len(t.data)))
	case taskFinish:
		defer sw.putIdx(t.data)
		if rf.broken || rf.f == nil || sw.isAborting() {
			sw.drop(rf)
			return
		}
		if _, err := rf.f.Write(t.data); err != nil {
			sw.fail(fmt.Errorf("write shard %s: %w", rf.key, err))
			sw.drop(rf)
			return
		}
		sw.c.bytesOut.Add(int64(len(t.data)))
		sw.rowReady(rf.row)
	}
}

// drop aborts a file that will not be committed.
func (sw *shardWriter) drop(rf *rowFile) {
	rf.broken = true
	if rf.f != nil {
		rf.f.Abort()
		sw.untrack(rf.f)
		rf.f = nil
	}
}

// rowReady counts one shard of row rc whose index is written (or the
// queuing hold); when the row is complete it joins the ready rows, and
// every ready row at the frontier is committed, in row order.
func (sw *shardWriter) rowReady(rc *rowCommit) {
	if rc.pending.Add(-1) != 0 {
		return
	}
	sw.cmu.Lock()
	sw.ready[rc.row] = rc
	advanced := false
	for !sw.stuck && !sw.isAborting() {
		r, ok := sw.ready[sw.nextRow]
		if !ok {
			break
		}
		if err := sw.commitRow(r); err != nil {
			sw.stuck = true
			sw.fail(err)
			break
		}
		delete(sw.ready, sw.nextRow)
		sw.nextRow++
		sw.committed.Store(r.endFrame)
		advanced = true
	}
	sw.cmu.Unlock()
	if !advanced {
		return
	}
	select {
	case sw.commitSig <- struct{}{}:
	default: // the deliverer will see this commit when it looks
	}
	sw.c.committed.Store(sw.committed.Load())
	if sw.metaSig == nil {
		if err := sw.updateMeta(); err != nil {
			sw.fail(err)
		}
		return
	}
	select {
	case sw.metaSig <- struct{}{}:
	default: // a rewrite is already due; it will name these rows too
	}
}

// MaxRowCommits bounds the files of a row committed at once. A commit is
// mostly a wait on the sink (an object store's CompleteMultipartUpload,
// which a posix-backed server answers only once it has copied the parts
// into the object; a directory's fsync and rename), and the row's files
// are independent, so they commit together: one after another, the 16
// shards of a 400 MB row on versitygw took 16 x 0.25 s at the end of a
// run whose uploads took 2.4 s (issue 17).
const MaxRowCommits = 16

// commitRow makes every shard of a ready row visible. Its files are no
// longer touched by their lanes (their last task is done), so the lane
// that advances the frontier may commit them, up to MaxRowCommits at once
// (inline, without lanes, one after another: rule 4's simplest schedule).
// The row counts as committed only when all are; after a failure the
// others may be visible, complete, but zarr.json never names them. cmu
// is held.
func (sw *shardWriter) commitRow(rc *rowCommit) error {
	if sw.lanes == nil || len(rc.files) < 2 {
		return sw.commitFiles(rc)
	}
	errs := make([]error, len(rc.files))
	sem := make(chan struct{}, MaxRowCommits)
	var wg sync.WaitGroup
	for i, rf := range rc.files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = rf.f.Commit()
		})
	}
	wg.Wait()
	var first error
	for i, rf := range rc.files {
		sw.untrack(rf.f)
		rf.f = nil
		if errs[i] != nil {
			if first == nil {
				first = fmt.Errorf("commit shard %s: %w", rf.key, errs[i])
			}
			continue
		}
		sw.c.shards.Add(1)
	}
	return first
}

// commitFiles commits a row's files one after another, stopping at the
// first failure.
func (sw *shardWriter) commitFiles(rc *rowCommit) error {
	for _, rf := range rc.files {
		if err := rf.f.Commit(); err != nil {
			sw.untrack(rf.f)
			rf.f = nil
			return fmt.Errorf("commit shard %s: %w", rf.key, err)
		}
		sw.untrack(rf.f)
		rf.f = nil
		sw.c.shards.Add(1)
	}
	return nil
}

// dropReady aborts the files of rows that were ready but never committed
// (a failure stopped the frontier). Called after the lanes stopped.
func (sw *shardWriter) dropReady() {
	sw.cmu.Lock()
	defer sw.cmu.Unlock()
	for row, rc := range sw.ready {
		for _, rf := range rc.files {
			sw.drop(rf)
		}
		delete(sw.ready, row)
	}
}

// metaLoop rewrites zarr.json whenever more rows are committed.
func (sw *shardWriter) metaLoop() {
	defer close(sw.metaDone)
	for {
		select {
		case <-sw.metaStop:
			return
		case <-sw.metaSig:
			if sw.isAborting() {
				continue
			}
			if err := sw.updateMeta(); err != nil {
				sw.fail(err)
			}
		}
	}
}

// updateMeta writes zarr.json naming the committed frames, if that is more
// than it names now.
func (sw *shardWriter) updateMeta() error {
	sw.metaMu.Lock()
	defer sw.metaMu.Unlock()
	n := sw.committed.Load()
	if n <= sw.metaFrames.Load() {
		return nil
	}
	if err := sw.putMetaLocked(n); err != nil {
		return err
	}
	sw.metaFrames.Store(n)
	return nil
}

// putMeta writes zarr.json with shape[0] = shape0 now.
func (sw *shardWriter) putMeta(shape0 int64) error {
	sw.metaMu.Lock()
	defer sw.metaMu.Unlock()
	if err := sw.putMetaLocked(shape0); err != nil {
		return err
	}
	sw.metaFrames.Store(shape0)
	return nil
}

func (sw *shardWriter) putMetaLocked(shape0 int64) error {
	b, err := zarr.MarshalArray(sw.spec, shape0)
	if err != nil {
		return err
	}
	f, err := sw.create("zarr.json")
	if err != nil {
		return fmt.Errorf("create zarr.json: %w", err)
	}
	defer sw.untrack(f)
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return fmt.Errorf("write zarr.json: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("commit zarr.json: %w", err)
	}
	sw.c.bytesOut.Add(int64(len(b)))
	sw.c.metaBytes.Add(int64(len(b)))
	return nil
}

// drain waits until every queued task has run (every done called).
func (sw *shardWriter) drain() { sw.inflight.Wait() }

// stop ends the lanes and the meta goroutine after draining. Safe to call
// twice.
func (sw *shardWriter) stop() {
	sw.drain()
	if sw.lanes != nil {
		for _, l := range sw.lanes {
			close(l)
		}
		sw.lanesWG.Wait()
		sw.lanes = nil
	}
	if sw.metaStop != nil && !sw.metaStopped {
		sw.metaStopped = true
		close(sw.metaStop)
		<-sw.metaDone
	}
}

// close ends a stream that went well: the open (partial) row is finished
// with frames as its end, everything is written and committed, and the
// lanes stop. The caller writes the final zarr.json.
func (sw *shardWriter) close(frames int64) {
	sw.finishRow(frames)
	sw.stop()
	sw.dropReady() // empty unless something failed
}

// abort ends a stream that failed or was interrupted: the open row is
// dropped (it is incomplete), the lanes get drainTimeout to write what is
// queued for complete rows, which are then committed; after that every
// file still open is aborted. zarr.json is rewritten to name the
// committed rows, within timeout: a stalled sink must not make it hang
// (the previous zarr.json, which names at most the committed frames too,
// then stays). It is rewritten only when it would name more (or, for a
// derived level, differently): a resume
// that restarts inside the frames zarr.json names (the last, partial row
// is written again) has those frames on disk, in the old files, until it
// commits the rows again, and must not hide them when it stops before.
func (sw *shardWriter) abort(timeout time.Duration) {
	t := time.AfterFunc(drainTimeout, sw.interrupt)
	clear(sw.files) // nothing more is queued for the open row
	sw.row = -1
	sw.drain()
	t.Stop()
	sw.interrupt() // the open row's files, and no new ones
	sw.stop()
	sw.dropReady()
	named := sw.named()
	if n := sw.committed.Load(); n > named || (sw.derived && n != named) {
		sw.putMetaBounded(n, timeout)
	}
}

// named is shape[0] of the last zarr.json written. It never waits (Stats
// calls it while a stalled sink may hold a zarr.json write).
func (sw *shardWriter) named() int64 { return sw.metaFrames.Load() }

// putMetaBounded writes zarr.json during an abort, giving up (and
// dropping the temp file) after timeout. It goes around the file
// tracking: interrupt has already aborted every tracked file.
func (sw *shardWriter) putMetaBounded(shape0 int64, timeout time.Duration) {
	b, err := zarr.MarshalArray(sw.spec, shape0)
	if err != nil {
		sw.fail(err)
		return
	}
	f, err := sw.sink.Create("zarr.json")
	if err != nil {
		sw.fail(fmt.Errorf("create zarr.json: %w", err))
		return
	}
	t := time.AfterFunc(timeout, func() { f.Abort() })
	defer func() {
		if !t.Stop() {
			// The watchdog fired: wait until its Abort has removed the
			// temp file (Abort is idempotent and a second call waits).
			f.Abort()
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Abort()
		sw.fail(fmt.Errorf("write zarr.json: %w", err))
		return
	}
	if err := f.Commit(); err != nil {
		sw.fail(fmt.Errorf("commit zarr.json: %w", err))
		return
	}
	sw.c.bytesOut.Add(int64(len(b)))
	sw.c.metaBytes.Add(int64(len(b)))
	sw.metaFrames.Store(shape0)
}

// errInterrupted is what a sink operation gets once an abort began.
var errInterrupted = errors.New("writer is aborting")

// create opens a sink file and registers it, so that interrupt can
// abort a Write blocked on it from another goroutine.
func (sw *shardWriter) create(key string) (sink.File, error) {
	f, err := sw.sink.Create(key)
	if err != nil {
		return nil, err
	}
	sw.fmu.Lock()
	if sw.aborting {
		sw.fmu.Unlock()
		f.Abort()
		return nil, errInterrupted
	}
	sw.open[f] = struct{}{}
	sw.fmu.Unlock()
	return f, nil
}

func (sw *shardWriter) untrack(f sink.File) {
	sw.fmu.Lock()
	delete(sw.open, f)
	sw.fmu.Unlock()
}

// interrupt aborts every file being written and refuses new ones; the
// owner of a file sees its blocked or next call fail and unwinds. Safe
// from any goroutine.
func (sw *shardWriter) interrupt() {
	sw.abortOnce.Do(func() { close(sw.abortCh) })
	sw.abortMu.Lock()
	defer sw.abortMu.Unlock()
	sw.fmu.Lock()
	sw.aborting = true
	fs := make([]sink.File, 0, len(sw.open))
	for f := range sw.open {
		fs = append(fs, f)
	}
	clear(sw.open)
	sw.fmu.Unlock()
	for _, f := range fs {
		f.Abort()
	}
}
