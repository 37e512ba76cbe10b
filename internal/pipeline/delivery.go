package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// shardFile is one open shard of the current shard row: its temp file in
// the sink, the bytes appended so far and its index, filled in as chunks
// arrive. Only the index is held in memory (16 bytes per inner chunk);
// chunk bytes go straight to the file, so memory does not grow with the
// shard size.
type shardFile struct {
	f       sink.File
	key     string
	off     uint64
	entries []zarr.IndexEntry // reused from row to row
}

// delivery is the shard bookkeeping. It relies on batches arriving oldest
// first (rule 3): then at most one shard row is open at a time, and a row
// is complete as soon as a batch reaches its last epoch.
type delivery struct {
	row        int64 // open shard row, -1 when none
	shards     []shardFile
	perRow     int64 // epochs per shard row
	committed  int64 // frames in committed shard rows
	metaFrames int64 // shape[0] of the last zarr.json delivery wrote
	idx        []byte
	cps        int
}

func (d *delivery) init(spec *zarr.Spec) {
	d.row = -1
	d.shards = make([]shardFile, spec.ShardsPerRow())
	d.perRow = spec.EpochsPerShardRow()
	d.cps = int(spec.ChunksPerShard())
}

// deliver appends batch b's shard segments to the open shard files,
// finishing every shard row the batch completes, and rewrites zarr.json
// for a growing dim 0 when more frames became visible.
func (w *Writer) deliver(out *stage.Output, b stage.Batch) error {
	d := &w.d
	endFrame := b.FirstEpoch*w.epochFrames + b.Frames
	endEpoch := b.FirstEpoch + (b.Frames+w.epochFrames-1)/w.epochFrames
	for i := range out.Segs {
		seg := &out.Segs[i]
		if seg.Row != d.row {
			if seg.Row < d.row || seg.Row < b.FirstEpoch/d.perRow {
				return fmt.Errorf("compress stage output: segment of shard row %d out of order (row %d is open, batch starts at epoch %d)", seg.Row, d.row, b.FirstEpoch)
			}
			// Segments are ordered by row, and this batch reaches the new
			// row, so every epoch of the open row has been delivered.
			if err := d.finishRow(w, endFrame); err != nil {
				return err
			}
			d.row = seg.Row
		}
		if seg.Col < 0 || seg.Col >= int64(len(d.shards)) {
			return fmt.Errorf("compress stage output: shard column %d out of range (%d per row)", seg.Col, len(d.shards))
		}
		if seg.Off < 0 || seg.Len < 0 || seg.Off+seg.Len > int64(len(out.Data)) ||
			seg.First < 0 || seg.N < 0 || seg.First+seg.N > len(out.Chunks) {
			return fmt.Errorf("compress stage output: segment (row %d, column %d) outside the output", seg.Row, seg.Col)
		}
		sf := &d.shards[seg.Col]
		if sf.f == nil {
			if err := d.open(w, sf, seg.Row, seg.Col); err != nil {
				return err
			}
		}
		for _, c := range out.Chunks[seg.First : seg.First+seg.N] {
			if c.Inner < 0 || c.Inner >= int64(d.cps) || c.Off < seg.Off || c.Size < 0 || c.Off+c.Size > seg.Off+seg.Len {
				return fmt.Errorf("compress stage output: chunk %d of shard %s outside its segment", c.Inner, sf.key)
			}
			sf.entries[c.Inner] = zarr.IndexEntry{Offset: sf.off + uint64(c.Off-seg.Off), Nbytes: uint64(c.Size)}
		}
		if _, err := sf.f.Write(out.Data[seg.Off : seg.Off+seg.Len]); err != nil {
			return fmt.Errorf("write shard %s: %w", sf.key, err)
		}
		sf.off += uint64(seg.Len)
		w.c.bytesOut.Add(seg.Len)
	}
	if d.row >= 0 && endEpoch >= (d.row+1)*d.perRow {
		if err := d.finishRow(w, endFrame); err != nil {
			return err
		}
	}
	// Make the newly committed rows visible to readers. A fixed dim 0
	// grows the same way: zarr.json never names a frame that is not
	// committed (DESIGN.md rule 8), and says the declared size at Close.
	if d.committed > d.metaFrames {
		if err := w.putMeta(d.committed); err != nil {
			return err
		}
		d.metaFrames = d.committed
	}
	return nil
}

func (d *delivery) open(w *Writer, sf *shardFile, row, col int64) error {
	key := zarr.ShardKey(w.spec.ShardCoords(row, col))
	f, err := w.create(key)
	if err != nil {
		return fmt.Errorf("create shard %s: %w", key, err)
	}
	sf.f, sf.key, sf.off = f, key, 0
	if sf.entries == nil {
		sf.entries = make([]zarr.IndexEntry, d.cps)
	}
	for i := range sf.entries {
		sf.entries[i] = zarr.IndexEntry{Offset: zarr.EmptyEntry, Nbytes: zarr.EmptyEntry}
	}
	return nil
}

// finishRow appends the index to every open shard of the open row and
// commits them. All indexes are written before the first commit, so a
// failing disk usually leaves the row wholly uncommitted rather than half.
// endFrame is the end of the input delivered so far; the row's frames up
// to it become committed.
func (d *delivery) finishRow(w *Writer, endFrame int64) error {
	if d.row < 0 {
		return nil
	}
	for i := range d.shards {
		sf := &d.shards[i]
		if sf.f == nil {
			continue
		}
		d.idx = zarr.AppendIndex(d.idx[:0], sf.entries)
		if _, err := sf.f.Write(d.idx); err != nil {
			return fmt.Errorf("write shard %s: %w", sf.key, err)
		}
		w.c.bytesOut.Add(int64(len(d.idx)))
	}
	for i := range d.shards {
		sf := &d.shards[i]
		if sf.f == nil {
			continue
		}
		if err := sf.f.Commit(); err != nil {
			return fmt.Errorf("commit shard %s: %w", sf.key, err)
		}
		w.untrack(sf.f)
		sf.f = nil
		w.c.shards.Add(1)
	}
	d.committed = min((d.row+1)*d.perRow*w.epochFrames, endFrame)
	w.c.committed.Store(d.committed)
	d.row = -1
	return nil
}

// abortOpen drops every open shard file (their temp files vanish).
func (d *delivery) abortOpen(w *Writer) {
	for i := range d.shards {
		sf := &d.shards[i]
		if sf.f != nil {
			sf.f.Abort()
			w.untrack(sf.f)
			sf.f = nil
		}
	}
	d.row = -1
}

// errInterrupted is what a sink operation gets once Abort began.
var errInterrupted = errors.New("writer is aborting")

// create opens a sink file and registers it, so that Abort can interrupt
// a Write blocked on it from another goroutine (see sink.File).
func (w *Writer) create(key string) (sink.File, error) {
	f, err := w.sink.Create(key)
	if err != nil {
		return nil, err
	}
	w.fmu.Lock()
	if w.aborting {
		w.fmu.Unlock()
		f.Abort()
		return nil, errInterrupted
	}
	w.files[f] = struct{}{}
	w.fmu.Unlock()
	return f, nil
}

func (w *Writer) untrack(f sink.File) {
	w.fmu.Lock()
	delete(w.files, f)
	w.fmu.Unlock()
}

// interrupt aborts every registered file and refuses new ones. The owner
// of a file sees its blocked or next Write or Commit fail and unwinds.
func (w *Writer) interrupt() {
	w.fmu.Lock()
	w.aborting = true
	fs := make([]sink.File, 0, len(w.files))
	for f := range w.files {
		fs = append(fs, f)
	}
	clear(w.files)
	w.fmu.Unlock()
	for _, f := range fs {
		f.Abort()
	}
}

// putMeta writes zarr.json with shape[0] = shape0 through a registered
// file, so that Abort can interrupt it too.
func (w *Writer) putMeta(shape0 int64) error {
	b, err := zarr.MarshalArray(&w.spec, shape0)
	if err != nil {
		return err
	}
	f, err := w.create("zarr.json")
	if err != nil {
		return fmt.Errorf("create zarr.json: %w", err)
	}
	defer w.untrack(f)
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return fmt.Errorf("write zarr.json: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("commit zarr.json: %w", err)
	}
	w.c.bytesOut.Add(int64(len(b)))
	return nil
}

// abortMetaTimeout bounds the zarr.json rewrite during an abort: a sink
// that stalls must not make Abort hang. If it runs out, the previous
// zarr.json stays, which names at most the committed frames too.
const abortMetaTimeout = 300 * time.Millisecond

// putMetaBounded writes zarr.json during teardown, giving up (and dropping
// the temp file) after abortMetaTimeout.
func (w *Writer) putMetaBounded(shape0 int64) {
	b, err := zarr.MarshalArray(&w.spec, shape0)
	if err != nil {
		w.fail(err)
		return
	}
	f, err := w.sink.Create("zarr.json")
	if err != nil {
		w.fail(fmt.Errorf("create zarr.json: %w", err))
		return
	}
	t := time.AfterFunc(abortMetaTimeout, func() { f.Abort() })
	defer func() {
		if !t.Stop() {
			// The watchdog fired: wait until its Abort has removed the
			// temp file (Abort is idempotent and a second call waits).
			f.Abort()
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Abort()
		w.fail(fmt.Errorf("write zarr.json: %w", err))
		return
	}
	if err := f.Commit(); err != nil {
		w.fail(fmt.Errorf("commit zarr.json: %w", err))
		return
	}
	w.c.bytesOut.Add(int64(len(b)))
}
