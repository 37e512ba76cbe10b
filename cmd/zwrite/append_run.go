package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/pyramid"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// runAppend writes the inputs into a new store. It holds no pipeline
// logic: it opens the backend, the sink and the Writer, copies the inputs
// into the Writer, and renders progress and the summary from its Stats.
func runAppend(ctx context.Context, o *appendOptions, args []string, io stdio, f *pflag.FlagSet) error {
	ins, err := checkInputs(args)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if in.name == "-" && isTerminal(io.in) {
			// Raw frames are never typed in: the user forgot the input.
			return usagef("stdin is a terminal; name the input FILE or pipe the frames in")
		}
	}
	if o.rs.resume && isURL(o.output) {
		// The part size is fixed when the store is opened: read the
		// store's shard geometry first. A failure is not said yet: the
		// open below says what is wrong with the output (no store, no
		// endpoint) in its own words, and checkResumeBound refuses a store
		// it did open with parts too small.
		o.rs.bound, o.rs.boundErr = storedShardBound(o)
	}
	store, err := openOutput(o, ins)
	if err != nil {
		return err
	}
	defer store.Close()
	for _, n := range store.Notes() {
		fmt.Fprintf(io.err, "warning: %s\n", n)
	}
	if o.rs.resume {
		// The array (or image) comes from the store; flags must agree.
		if err := resumePlan(o, f, store); err != nil {
			return err
		}
		if err := checkResumeBound(o); err != nil {
			return err
		}
	}
	var st stage.Stage
	if !o.img.image() {
		// An image's pyramid opens a stage per level itself.
		if st, err = openBackend(o.backend, stage.Config{Spec: o.spec}); err != nil {
			store.Abandon(false)
			return err
		}
		defer st.Close()
	}

	start := time.Now()
	w, err := newStreamWriter(ctx, o, st, store)
	if err != nil {
		// Nothing was written: a store Open created goes again, an old
		// store being replaced stays as it was.
		store.Abandon(false)
		if ue := writerUsage(err); ue != nil {
			return ue
		}
		return fmt.Errorf("start writer: %w", err)
	}
	// An interrupt aborts the Writer from here, even while a Write blocks
	// on a stalled sink; Abort leaves every delivered shard readable.
	stopAbort := context.AfterFunc(ctx, func() { w.Abort(context.Cause(ctx)) })
	defer stopAbort()

	if o.rs.resume {
		// The last, partial shard row is written again with the new
		// frames after it: read it back first.
		if err := refeed(ctx, o, store, w, o.rs.starts[0], o.rs.existing[0]); err != nil {
			w.Abort(err)
			store.Abandon(true)
			return err
		}
	}
	var bar *progress
	if o.progress {
		bar = startProgress(io.err, totalSize(ins), o.spec.FrameBytes(), w.Stats)
	}
	err = copyInputs(ctx, w, ins, o, io.in)
	var long *pipeline.TooManyFramesError
	var rerr *readError
	storeFailed := false // the input failed, and then the store's Close
	switch {
	case err == nil:
		err = w.Close()
	case ctx.Err() != nil:
		err = w.Abort(err)
	case errors.As(err, &long):
		// The declared frames are all in: Close stores them and reports
		// the surplus.
		err = w.Close()
	case errors.As(err, &rerr):
		// The input broke, not the store: keep every whole frame that
		// arrived, as for input that ends mid-frame. Close's complaints
		// about the input (a partial last frame, fewer frames than a fixed
		// shape declares) follow from the read error; any other is the
		// store's, said below with what the store holds.
		var cpf *pipeline.PartialFrameError
		var cshort *pipeline.ShortInputError
		if cerr := w.Close(); cerr != nil && !errors.As(cerr, &cpf) && !errors.As(cerr, &cshort) {
			err = fmt.Errorf("%w; then the store failed: %w", err, cerr)
			storeFailed = true
		} else {
			err = fmt.Errorf("%w; the whole frames read before it are kept: the array holds %d frames", err, w.Stats().Named)
		}
	default:
		// Abort keeps the first error: the reason the copy stopped.
		err = w.Abort(err)
	}
	wall := time.Since(start)
	if bar != nil {
		bar.stop()
	}
	stats := w.Stats()
	if ctx.Err() == nil && err == nil {
		// Only a run that succeeded replaces an old store.
		if err := store.Finish(); err != nil {
			return fmt.Errorf("%s: %w", o.output, err)
		}
		fmt.Fprintln(io.err, summary(o, stats, wall, store))
		if o.verbose {
			printStats(io.err, w.Settings(), stats, wall)
		}
		return nil
	}
	kept, kerr := store.Abandon(stats.Committed > 0)
	// What zarr.json names now (Named), not what this run committed: a
	// resume restarts at a row that zarr.json may name frames past (those
	// stay, in the old files, until the run commits beyond them), and a
	// full disk can refuse the zarr.json that names the last rows.
	where := fmt.Sprintf("%s holds the first %d frames (what its zarr.json names), readable; `zwrite verify %s` checks it", o.output, stats.Named, o.output)
	switch {
	case kerr != nil:
		where = fmt.Sprintf("%s: %v", o.output, kerr)
	case store.Replacing() && kept != "":
		where = fmt.Sprintf("%s is unchanged (a store is replaced only by a run that succeeds); the %d frames this run committed are in %s, readable", o.output, stats.Committed, kept)
	case store.Replacing():
		where = fmt.Sprintf("%s is unchanged (a store is replaced only by a run that succeeds); this run committed no frames", o.output)
	case stats.Committed == 0 && !o.rs.resume:
		where = fmt.Sprintf("no frames were committed, so %s was not kept; once the cause is fixed, run the same command again", o.output)
	}
	if ctx.Err() != nil {
		return &interruptedError{where}
	}
	var pf *pipeline.PartialFrameError
	var short *pipeline.ShortInputError
	if !storeFailed && (errors.As(err, &pf) || errors.As(err, &short) || errors.As(err, &long) || errors.As(err, &rerr)) {
		// The message already says what the store holds.
		if store.Replacing() {
			return fmt.Errorf("%s: %w; %s", o.output, err, where)
		}
		return fmt.Errorf("%s: %w", o.output, err)
	}
	return fmt.Errorf("%s: %w; %s", o.output, err, where)
}

// openBackend opens the compress stage, mapping a backend this machine
// lacks to a usage error naming --backend.
func openBackend(name string, cfg stage.Config) (stage.Stage, error) {
	st, err := backend.Open(name, cfg)
	if err != nil {
		var ue *backend.UnavailableError
		if errors.As(err, &ue) {
			return nil, &usageError{fmt.Errorf("--backend %s: %w", name, err)}
		}
		return nil, fmt.Errorf("start %s backend: %w", name, err)
	}
	return st, nil
}

// streamWriter is what append feeds: one array's pipeline.Writer, or a
// pyramid of them.
type streamWriter interface {
	io.Writer
	ReadAt(r io.ReaderAt, size int64, readers int) (int64, error)
	Close() error
	Abort(error) error
	Stats() pipeline.Stats
	Settings() pipeline.Settings
}

// newStreamWriter starts the writer of the run: an array's Writer on st,
// or for an image a pyramid (its stages made per level, st unused but for
// level 0's backend choice) and the image group's zarr.json.
func newStreamWriter(ctx context.Context, o *appendOptions, st stage.Stage, store sink.Store) (streamWriter, error) {
	pc := pipeline.Config{
		Spec:       o.spec,
		Depth:      o.depth,
		IOWorkers:  o.ioWorkers,
		MaxPending: o.maxPendingBytes,
		// 0 on the command line is off; the writer's 0 is its default.
		FlushInterval: cmp.Or(o.flush, -1),
	}
	if !o.img.image() {
		pc.Stage, pc.Sink = st, store.Sink()
		if o.rs.resume {
			pc.StartFrame, pc.ExistingFrames = o.rs.starts[0], o.rs.existing[0]
		}
		return pipeline.New(ctx, pc)
	}
	pcfg := pyramid.Config{
		Spec: o.spec, Levels: o.img.nLevels, Reduce: o.img.reduce, Method: o.img.downMethod,
		NewStage: func(sc stage.Config) (stage.Stage, error) { return openBackend(o.backend, sc) },
		Sink:     store.Sink(),
		Writer:   pc,
	}
	if o.rs.resume {
		pcfg.Starts, pcfg.Existing = o.rs.starts, o.rs.existing
	}
	if !o.rs.resume {
		// The image group first: a run stopped at any point leaves a node
		// that says what it is (a level not yet created is created by a
		// resume); a reader meanwhile may find a level missing for the
		// moment it takes to create it.
		img, err := o.img.buildImage(&o.spec, version)
		if err != nil {
			return nil, err
		}
		b, err := zarr.MarshalImage(img)
		if err != nil {
			return nil, err
		}
		if err := store.Sink().Put("zarr.json", b); err != nil {
			return nil, err
		}
	}
	return pyramid.New(ctx, pcfg)
}

// writerUsage maps the writer's refusals of its settings to the flags
// that change them; nil for any other error.
func writerUsage(err error) error {
	var me *pipeline.MemoryError
	var de *pipeline.DepthError
	var pe *pipeline.PendingError
	switch {
	case errors.As(err, &pe):
		return usagef("--max-pending: %v", err)
	case errors.As(err, &me) && me.IndexBound():
		return usagef("%v; use fewer inner chunks per shard row (a larger --chunk, or a smaller --shard in dims 1..)", err)
	case errors.As(err, &me) && me.Depth > 1:
		return usagef("%v; use a smaller --depth, or a smaller --chunk[0] (a slot holds at least one epoch of chunk[0] frames)", err)
	case errors.As(err, &me):
		return usagef("%v; use a smaller --chunk[0] (a slot holds at least one epoch of chunk[0] frames)", err)
	case errors.As(err, &de):
		return usagef("--depth: %v", err)
	}
	return nil
}

// openOutput opens the output for the run, turning the sink's refusals into
// messages that name the flags that change them.
func openOutput(o *appendOptions, ins []input) (sink.Store, error) {
	var files []string
	for _, in := range ins {
		if in.name != "-" {
			files = append(files, in.name)
		}
	}
	bound, err := shardBound(o)
	if err != nil {
		return nil, err
	}
	store, err := sink.Open(o.output, sink.Options{Overwrite: o.overwrite, Fsync: o.fsync, BreakLock: o.breakLock, Inputs: files, Path: o.img.arrayPath, Resume: o.rs.resume,
		Endpoint: o.s3Endpoint, MaxObjectSize: bound})
	if err != nil {
		if u := outputUsage(err); u != nil {
			return nil, u
		}
		return nil, s3Hint(err)
	}
	return store, nil
}

// shardBound is the largest shard the run writes (level 0's), for object
// stores to size their upload parts: from the flags, or for a resume from
// the store, read before it is opened (storedShardBound; 0, the store's
// default, when that failed or the output is a directory).
func shardBound(o *appendOptions) (int64, error) {
	if o.rs.resume {
		return o.rs.bound, nil
	}
	return maxShardBytes(&o.spec)
}

// outputUsage maps the sink's refusals of an output to messages that name
// the flags that change them; nil for any other error.
func outputUsage(err error) error {
	var exists *sink.ExistsError
	var notStore *sink.NotStoreError
	var inside *sink.InputInsideError
	var foreignLock *sink.ForeignLockError
	var nothing *sink.NothingToResumeError
	switch {
	case errors.As(err, &nothing) && nothing.Occupied:
		return usagef("%v; run the command with --overwrite instead of --resume to write it anew", err)
	case errors.As(err, &nothing):
		return usagef("%v; run the command without --resume to write it anew", err)
	case errors.As(err, &exists):
		return usagef("%v; pass --overwrite to replace it, or choose another -o", err)
	case errors.As(err, &notStore), errors.As(err, &inside):
		return &usageError{err}
	case errors.As(err, &foreignLock):
		return fmt.Errorf("%w; --break-lock takes it over", err)
	}
	return nil
}

// copyInputs feeds every input to w in order. Regular files are read by
// the Writer itself with positioned reads from a pool of readers straight
// into its staging (Writer.ReadAt); their reads never block for long, so
// an interrupt's Abort ends them promptly. Pipes and terminals go through
// copyInput, whose reads cannot hold up an interrupt. --read-size forces
// copyInput with that piece size.
func copyInputs(ctx context.Context, w streamWriter, ins []input, o *appendOptions, stdin io.Reader) error {
	skip := o.rs.skipFrames * o.spec.FrameBytes() // --skip: bytes of input not written
	for _, in := range ins {
		var r io.Reader = stdin
		name := "stdin"
		if in.name != "-" {
			f, err := os.Open(in.name)
			if err != nil {
				return fmt.Errorf("input %s: %w", in.name, unwrapPath(err))
			}
			defer f.Close()
			r, name = f, in.name
		}
		var err error
		if size, ok := regularSize(r); ok && o.readSize == "" {
			if skip >= size {
				skip -= size
				continue
			}
			_, err = w.ReadAt(io.NewSectionReader(r.(io.ReaderAt), skip, size-skip), size-skip, o.readers)
			skip = 0
			var ie *pipeline.InputError
			if errors.As(err, &ie) {
				err = &readError{ie.Err}
			}
		} else {
			enlargePipe(r)
			var skipped int64
			_, skipped, err = copyInputSkip(ctx, w, r, o.readBytes, o.readSize != "", skip)
			skip -= skipped
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			var rerr *readError
			if errors.As(err, &rerr) {
				return &readError{fmt.Errorf("read %s: %w", name, rerr.err)}
			}
			return err
		}
	}
	return nil
}

// copyInputSkip is copyInput after dropping the first skip bytes of r; it
// also returns how many were dropped (fewer when r ends first).
func copyInputSkip(ctx context.Context, w io.Writer, r io.Reader, bufSize int, exact bool, skip int64) (int64, int64, error) {
	if skip == 0 {
		n, err := copyInput(ctx, w, r, bufSize, exact)
		return n, 0, err
	}
	d := &dropWriter{w: w, left: skip}
	n, err := copyInput(ctx, d, r, bufSize, exact)
	return n - (skip - d.left), skip - d.left, err
}

// dropWriter drops its first left bytes and passes the rest on.
type dropWriter struct {
	w    io.Writer
	left int64
}

func (d *dropWriter) Write(p []byte) (int, error) {
	n := len(p)
	if d.left > 0 {
		k := min(int64(len(p)), d.left)
		d.left -= k
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	m, err := d.w.Write(p)
	return n - len(p) + m, err
}

// regularSize reports whether r is a regular file, and its size now.
func regularSize(r io.Reader) (int64, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// readError marks a failure to read the input, as opposed to the writer's.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// summary is the one line append prints when it succeeds. The bytes on
// disk are counted from the store itself, not from the writer's counters,
// so the ratio is what the user's disk sees.
func summary(o *appendOptions, s pipeline.Stats, wall time.Duration, store sink.Store) string {
	disk, err := store.Size()
	onDisk := humanBytes(disk) + " on disk"
	if err != nil {
		onDisk = "size on disk unknown (" + err.Error() + ")"
	}
	what := fmt.Sprintf("%d frames", s.Frames)
	total := s.Frames // frames the store holds (level 0)
	if o.rs.resume {
		refed := o.rs.existing[0] - o.rs.starts[0]
		total = o.rs.starts[0] + s.Frames
		what = fmt.Sprintf("resumed at frame %d: %d new frames (and %d rewritten), now %d", o.rs.existing[0], s.Frames-refed, refed, total)
	}
	if o.img.image() {
		what += fmt.Sprintf(" in %d levels", o.img.nLevels)
	}
	ratio := "-"
	if raw := total * o.spec.FrameBytes(); disk > 0 && raw > 0 {
		// Level 0's bytes over everything on disk (all levels).
		ratio = fmt.Sprintf("%.2f", float64(raw)/float64(disk))
	}
	return fmt.Sprintf("%s: %s, %s in %.2f s (%s), %s, ratio %s, %d shards, %s %s",
		store.Location(), what, humanBytes(s.BytesIn), wall.Seconds(), rate(s.BytesIn, wall),
		onDisk, ratio, s.Shards, o.spec.DType, o.spec.Codec)
}

// rate formats bytes per duration: GB/s (decimal, as disks and links are
// quoted), or MB/s below 1 GB/s.
func rate(n int64, d time.Duration) string {
	if d <= 0 || n <= 0 {
		return "- GB/s"
	}
	r := float64(n) / d.Seconds()
	if r < 1e9 {
		return fmt.Sprintf("%.1f MB/s", r/1e6)
	}
	return fmt.Sprintf("%.2f GB/s", r/1e9)
}

// printStats renders the Writer's per-stage figures (--verbose).
func printStats(w io.Writer, set pipeline.Settings, s pipeline.Stats, wall time.Duration) {
	fmt.Fprintf(w, "writer: depth %d, batch %d frames (%s), %d copy helpers (threshold %s), %d I/O workers, max pending %s\n",
		set.Depth, set.BatchFrames, humanBytes(set.BatchBytes), set.CopyHelpers, humanBytes(int64(set.CopyThreshold)), set.IOWorkers, humanBytes(set.MaxPending))
	if set.SinkBytes > 0 {
		fmt.Fprintf(w, "store upload buffers: up to %s (--max-pending covers them and the pending bytes above)\n", humanBytes(set.SinkBytes))
	}
	if s.StallRows > 0 {
		fmt.Fprintf(w, "delivery waited %.3f s for the rows before to commit\n", s.StallRows.Seconds())
	}
	fmt.Fprintf(w, "batches %d kicked, %d delivered; pending high-water %s\n", s.Batches, s.Delivered, humanBytes(s.PendingMax))
	fmt.Fprintf(w, "start-up: first slot allocated in %.3f s (input accepted after it), the other %d in %.3f s in the background (producer waited %.3f s for them)\n",
		s.AllocFirst.Seconds(), set.Depth-1, s.AllocRest.Seconds(), s.StallAlloc.Seconds())
	row := func(name string, d time.Duration, note string) {
		fmt.Fprintf(w, "  %-14s %9.3f s  %10s  %s\n", name, d.Seconds(), rate(s.BytesIn, d), note)
	}
	fmt.Fprintf(w, "  %-14s %9s    %10s  (input bytes over busy time)\n", "stage", "busy", "rate")
	row("wall", wall, "")
	row("copy", s.Copy, "producer copy into staging")
	row("stall join", s.StallJoin, "producer waiting for a slot")
	row("stall pending", s.StallPending, "producer held by --max-pending")
	row("h2d", s.Stage.H2D, "")
	row("tile", s.Stage.Tile, "summed over workers")
	row("shuffle", s.Stage.Shuffle, "summed over workers")
	row("compress", s.Stage.Compress, "summed over workers")
	row("aggregate", s.Stage.Aggregate, "")
	row("d2h", s.Stage.D2H, "")
	row("stage wait", s.StageWait, "delivery waiting for the stage")
	row("deliver", s.Deliver, "writing to the sink, summed over I/O workers")
}
