package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/codec"
	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// DefaultWriteBytes is the size of each Write when the user gives none: a
// typical read size of a frame grabber's ring buffer, and large enough
// that the pipeline's parallel staging copy engages.
const DefaultWriteBytes = 64 << 20

// prefillMax bounds the --prefill buffer. It normally holds one epoch
// (every batch then sees data just like the first epoch's, and the codec
// ceiling's sample comes from that same epoch); an epoch above this falls
// back to the whole frames that cover one write.
const prefillMax = 2 << 30

// Options is one bench run. The CLI fills it from flags; the zero values
// of the optional fields mean the defaults documented on each.
type Options struct {
	Scenario Scenario
	DType    zarr.DType
	Codec    zarr.Codec
	Level    int // used as given: the CLI applies the codec's default
	// Shuffle is the blosc filter of the blosc codecs (zero value: byte
	// shuffle; ignored by the others).
	Shuffle zarr.Shuffle
	Fill    Fill
	// Frames along dim 0; 0 means DefaultFrames, unless Duration is set.
	Frames int64
	// Duration > 0 runs for that long (after Warmup) instead of a frame
	// count; dim 0 then grows. Warmup is written but not counted.
	Duration, Warmup time.Duration
	WriteBytes       int64 // bytes per Write; 0: DefaultWriteBytes
	Prefill          bool
	// Input, when set, is a raw file fed to the writer as zwrite append
	// feeds one (feedFile): the array is the scenario's frame shape with
	// as many frames as the file holds. Fill, Frames, Duration and Prefill
	// do not apply. The baselines then add the I/O ceilings: parallel
	// reads of the file and, with OutDir, parallel writes of the store's
	// shard files. (An object-store OutDir gets its write ceiling with or
	// without Input: see measureIOCeilings.)
	Input   string
	Backend string // auto, cpu or gpu
	Depth   int    // 0: the pipeline's default
	// IOWorkers and Readers are the writer's I/O lanes and an --input
	// file's positioned readers (0: the writer's defaults).
	IOWorkers, Readers int
	// Overwrite lets OutDir replace an existing Zarr store (see sink.Open).
	Overwrite bool
	// OutDir is the store to write: a directory or a URL sink.Open
	// takes (s3://BUCKET/PREFIX); "" writes to a discard sink. It must
	// not hold a store unless Overwrite is set.
	OutDir string
	// Endpoint and MaxObjectSize are as sink.Options' for an object-store
	// OutDir (the CLI's --s3-endpoint, and the largest shard the spec
	// can make, from which the upload part size follows).
	Endpoint      string
	MaxObjectSize int64
	// NoBaselines skips the same-run baselines (tests that only need the
	// pipeline's figures).
	NoBaselines bool
	// Progress, when set, is called with the bytes written so far and the
	// total (-1 for a timed run): after every Write on the producer
	// goroutine, or with Input from a ticker goroutine. It must be quick.
	Progress func(done, total int64)
	Command  []string // recorded in the report
	Version  string   // recorded in the report
}

// InputError is an --input file that cannot be the array: not whole
// frames of the given shape, or empty. The CLI shows it as a usage error.
type InputError struct {
	Path       string
	Size       int64
	FrameBytes int64
}

func (e *InputError) Error() string {
	return fmt.Sprintf("input %s: %d bytes is not a whole, non-zero number of %d-byte frames; check the frame shape and dtype", e.Path, e.Size, e.FrameBytes)
}

// Run performs one bench run and returns its report. It prints nothing.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.WriteBytes == 0 {
		o.WriteBytes = DefaultWriteBytes
	}
	es := int64(o.DType.Size())
	if es == 0 {
		return nil, errors.New("bench: dtype is not set")
	}
	if o.WriteBytes < es {
		return nil, fmt.Errorf("bench: write size %d is smaller than one %d-byte element", o.WriteBytes, es)
	}
	o.WriteBytes -= o.WriteBytes % es // fills work on whole elements
	if o.Fill == 0 {
		o.Fill = FillThirds
	}
	var in *os.File
	if o.Input != "" {
		if o.Duration > 0 || o.Prefill {
			return nil, errors.New("bench: an input file is written whole: no duration, warmup or prefill")
		}
		var err error
		if in, err = os.Open(o.Input); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		geo, err := o.Scenario.Spec(o.DType, o.Codec, o.Level, 0)
		if err != nil {
			return nil, err
		}
		fb := geo.FrameBytes()
		if !st.Mode().IsRegular() || st.Size() == 0 || st.Size()%fb != 0 {
			return nil, &InputError{Path: o.Input, Size: st.Size(), FrameBytes: fb}
		}
		o.Frames, o.Fill = st.Size()/fb, fillFile
	}
	timed := o.Duration > 0
	frames := o.Frames
	if frames == 0 && !timed {
		frames = o.Scenario.DefaultFrames(o.DType)
	}
	specFrames := frames
	if timed {
		specFrames = 0 // grows: the run decides how many frames arrive
	}
	spec, err := o.Scenario.Spec(o.DType, o.Codec, o.Level, specFrames)
	if err != nil {
		return nil, err
	}
	spec.Shuffle = o.Shuffle
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", o.Scenario.Name, err)
	}
	fb := spec.FrameBytes()
	total := frames * fb

	r := &Report{
		Schema: Schema, Tool: "zwrite", Time: time.Now().UTC(), Command: o.Command, Version: o.Version,
		Machine: DescribeMachine(),
		Scenario: ScenarioInfo{
			Name: o.Scenario.Name, Chunk: spec.Chunk, Shard: spec.Shard,
			DType: spec.DType.String(), Codec: spec.Codec.String(), Level: spec.Level,
			Fill: o.Fill.String(), FrameBytes: fb, DimNames: spec.DimNames,
		},
		Config: RunConfig{
			Depth: o.Depth, WriteBytes: o.WriteBytes, Prefill: o.Prefill, Sink: "discard",
			DurationS: o.Duration.Seconds(), WarmupS: o.Warmup.Seconds(),
		},
	}
	if spec.Codec.Blosc() {
		r.Scenario.Shuffle = zarr.ShuffleName(spec.Shuffle)
	}
	if o.OutDir != "" {
		r.Config.Sink = o.OutDir
	}
	if in != nil {
		r.Config.Input, r.Config.InputNote, r.Config.WriteBytes = o.Input, InputNote, 0
	}

	// Data: one epoch (or the frames covering one write) made once and
	// cycled, or a write-sized buffer refilled before every write; none
	// for an input file.
	var buf []byte
	switch {
	case in != nil:
	case o.Prefill:
		n := spec.EpochFrames()
		if n*fb > prefillMax {
			n = max((o.WriteBytes+fb-1)/fb, 1)
		}
		buf = make([]byte, n*fb)
		if err := FillFrames(o.Fill, &spec, 0, buf); err != nil {
			return nil, err
		}
		r.Config.PrefillBuf = int64(len(buf))
	default:
		buf = make([]byte, o.WriteBytes)
	}

	// The codec ceiling's first half, before the run (see ceiling).
	var ceil *ceiling
	var ceilBefore ceilingRun
	if !o.NoBaselines {
		var src io.ReaderAt
		if in != nil {
			src = in
		}
		if ceil, err = newCeiling(o.Fill, src, &spec, stageEncoder(&spec)); err != nil {
			return nil, err
		}
		defer ceil.close()
		if ceilBefore, err = runCeiling(ceil); err != nil {
			return nil, err
		}
	}

	// Init: the compress stage, the sink and the pipeline's slots.
	t0 := time.Now()
	st, err := backend.Open(o.Backend, stage.Config{Spec: spec})
	if err != nil {
		var ue *backend.UnavailableError
		if errors.As(err, &ue) {
			return nil, err // the CLI shows it as a usage error, unwrapped
		}
		return nil, fmt.Errorf("open %s backend: %w", o.Backend, err)
	}
	defer st.Close()
	r.Config.Backend = st.Name()
	var sk sink.Sink = sink.NewDiscard()
	var store sink.Store
	if o.OutDir != "" {
		// The same output policy as append: only a Zarr store is
		// replaced, and only once the run succeeded.
		if store, err = sink.Open(o.OutDir, sink.Options{Overwrite: o.Overwrite, Endpoint: o.Endpoint, MaxObjectSize: o.MaxObjectSize}); err != nil {
			return nil, err
		}
		defer store.Close()
		sk = store.Sink()
	}
	defer sk.Close()
	w, err := pipeline.New(ctx, pipeline.Config{Spec: spec, Stage: st, Sink: sk, Depth: o.Depth, IOWorkers: o.IOWorkers})
	if err != nil {
		return nil, fmt.Errorf("start writer: %w", err)
	}
	r.Config.Depth = w.Settings().Depth
	r.Result.InitS = time.Since(t0).Seconds()

	// The timed part.
	var (
		pos      int64 // bytes of the stream written
		fillTime time.Duration
		fillBusy atomic.Int64   // fill time summed over its workers
		base     pipeline.Stats // counters at the end of the warmup
		basePos  int64
		start    = time.Now()
		cpu0     = cpuTime()
	)
	abort := func(err error) (*Report, error) {
		_ = w.Abort(err)
		return nil, err
	}
	if in != nil {
		if err := feedInput(ctx, w, in, total, o.Readers, o.Progress); err != nil {
			return abort(fmt.Errorf("input %s: %w", o.Input, err))
		}
		pos = w.Stats().BytesIn
	} else {
		warm := !timed || o.Warmup == 0
		for {
			if err := ctx.Err(); err != nil {
				return abort(err)
			}
			var n int64
			if timed {
				el := time.Since(start)
				n = o.WriteBytes
				if !warm && el >= o.Warmup {
					// The counted part starts at a frame boundary: finish
					// the frame in progress first.
					if pos%fb == 0 {
						warm, base, basePos, start, cpu0 = true, w.Stats(), pos, time.Now(), cpuTime()
						fillTime = 0
						fillBusy.Store(0)
						el = 0
					} else {
						n = min(fb-pos%fb, o.WriteBytes)
					}
				}
				if warm && el >= o.Duration {
					// Time is up: finish the frame in progress, then stop.
					n = min((fb-pos%fb)%fb, o.WriteBytes)
					if n == 0 {
						break
					}
				}
			} else {
				if pos >= total {
					break
				}
				n = min(o.WriteBytes, total-pos)
			}
			var p []byte
			if o.Prefill {
				off := pos % int64(len(buf))
				n = min(n, int64(len(buf))-off)
				p = buf[off : off+n]
			} else {
				n = min(n, int64(len(buf)))
				p = buf[:n]
				tf := time.Now()
				if err := fillElems(o.Fill, &spec, pos/es, p, &fillBusy); err != nil {
					return abort(err)
				}
				fillTime += time.Since(tf)
			}
			if _, err := w.Write(p); err != nil {
				return abort(fmt.Errorf("write at byte %d: %w", pos, err))
			}
			pos += n
			if o.Progress != nil {
				if timed {
					o.Progress(pos-basePos, -1)
				} else {
					o.Progress(pos, total)
				}
			}
		}
	}
	tc := time.Now()
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close writer: %w", err)
	}
	if store != nil {
		if err := store.Finish(); err != nil {
			return nil, err
		}
	}
	end := time.Now()
	r.Result.CPUS = (cpuTime() - cpu0).Seconds()
	r.Result.FlushS = end.Sub(tc).Seconds()
	wall := end.Sub(start).Seconds()
	all := w.Stats()
	s := diffStats(all, base)

	inBytes := pos - basePos
	res := &r.Result
	res.Frames = inBytes / fb
	res.InputBytes = inBytes
	res.OutputBytes = s.BytesOut
	res.WallS = wall
	res.FillS = fillTime.Seconds()
	res.InputGBps = float64(inBytes) / wall / 1e9
	res.InputGiBps = float64(inBytes) / wall / (1 << 30)
	res.OutputGBps = float64(s.BytesOut) / wall / 1e9
	// The ratio over the whole run: at the end of a warmup some written
	// bytes are not yet compressed, so the window's in and out differ in
	// what they cover; the totals do not. Over the stored data (shards
	// and their indexes), not zarr.json's rewrites, which the output rate
	// counts: what a store's size compares, and how the peer scripts
	// count tensorstore's.
	if data := all.BytesOut - all.MetaBytes; data > 0 {
		res.Ratio = float64(all.BytesIn) / float64(data)
	}
	res.StallJoinS = s.StallJoin.Seconds()
	res.StallBackS = s.StallPending.Seconds()
	res.ProducerStallS = res.StallJoinS + res.StallBackS
	r.Scenario.Shape = append([]int64{pos / fb}, spec.Shape[1:]...)
	acc := accounting{
		wall: wall, cores: r.Machine.GOMAXPROCS, gpu: r.Config.Backend == "gpu",
		fill: time.Duration(fillBusy.Load()), copyParts: copyParts(w.Settings(), o.WriteBytes),
	}
	if in != nil {
		acc.copyParts = 1 // ReadFrom: the producer reads alone
	}
	r.Stages = acc.figures(s, inBytes)
	r.CoreUse = acc.coreUse(r.Stages, res.CPUS)

	if !o.NoBaselines {
		if in != nil {
			if buf, err = readHead(in, min(int64(DefaultWriteBytes), total)); err != nil {
				return nil, err
			}
		}
		if err := measureBaselines(r, ceil, ceilBefore, buf, inBytes); err != nil {
			return nil, err
		}
		if in != nil || sink.IsURL(o.OutDir) {
			if err := measureIOCeilings(ctx, r, &o, uploadLanes(w.Settings().IOWorkers, spec.ShardsPerRow())); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// uploadLanes is how many objects the upload ceiling sends at once: as
// many as the writer has open at once. Its I/O lanes write all the shards
// of the open row together (every batch adds to each of them) and commit
// them together (up to pipeline.MaxRowCommits at once), so a row wider
// than the lanes has all its shards in flight, not one per lane. A
// ceiling of one object per lane would complete some objects while the
// others still upload, an overlap that the store's layout allows no
// writer (a row's shards all end with its last frame): on versitygw,
// whose complete copies the parts into the object, that hid half the
// completes of a one-row run behind the uploads (issue 17). Inline (no
// lanes), one goroutine writes and commits one file after another: 1.
func uploadLanes(ioWorkers int, shardsPerRow int64) int {
	if ioWorkers <= 0 {
		return 1
	}
	return max(ioWorkers, int(min(shardsPerRow, pipeline.MaxRowCommits)))
}

// feedInput feeds the file to w (feedFile) and, with progress set, reports
// the writer's accepted bytes every 200 ms meanwhile.
func feedInput(ctx context.Context, w *pipeline.Writer, f *os.File, total int64, readers int, progress func(done, total int64)) error {
	// An interrupt aborts the writer even while a read blocks.
	stop := context.AfterFunc(ctx, func() { _ = w.Abort(context.Cause(ctx)) })
	defer stop()
	if progress != nil {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					progress(w.Stats().BytesIn, total)
				}
			}
		})
		defer func() {
			close(done)
			wg.Wait()
			progress(w.Stats().BytesIn, total)
		}()
	}
	if err := feedFile(ctx, w, f, readers); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// readHead reads the first n bytes of f (the memmove baseline's buffer).
func readHead(f *os.File, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("input: read the first %d bytes: %w", n, err)
	}
	return b, nil
}

// measureIOCeilings adds the I/O ceilings: with an input file, its
// parallel read rate and, with an output directory, the parallel write
// rate of its shard files; with an object-store output (with or without
// an input file), the upload rate of its shard objects through the client
// library alone with the sink's concurrency (lanes: the objects the
// writer has open at once, uploadLanes).
func measureIOCeilings(ctx context.Context, r *Report, o *Options, lanes int) error {
	bl := &r.Baselines
	cores := r.Machine.GOMAXPROCS
	if o.Input != "" {
		rc, err := readCeiling(o.Input, cores)
		if err != nil {
			return err
		}
		bl.Read = rc
		if rc.BestGBps > 0 {
			bl.OverRead = r.Result.InputGBps / rc.BestGBps
		}
	}
	if o.OutDir == "" {
		return nil
	}
	fsys, err := sink.OpenFS(o.OutDir, o.Endpoint)
	if err != nil {
		return fmt.Errorf("write ceiling: %w", err)
	}
	sizes, err := shardSizes(fsys)
	if err != nil {
		return fmt.Errorf("write ceiling: list the store's shards: %w", err)
	}
	var wc *IOCeiling
	if sink.IsURL(o.OutDir) {
		wc, err = uploadCeiling(ctx, o, sizes, lanes)
	} else {
		wc, err = writeCeiling(o.OutDir, sizes, cores)
	}
	if err != nil {
		return err
	}
	bl.Write = wc
	if wc.BestGBps > 0 {
		bl.OverWrite = r.Result.OutputGBps / wc.BestGBps
	}
	return nil
}

// stageEncoder makes the CPU stage's own per-chunk encoder, the one the CPU
// backend runs, for the codec ceiling.
func stageEncoder(spec *zarr.Spec) func() (ChunkEncoder, error) {
	return func() (ChunkEncoder, error) {
		e, err := codec.NewChunkEncoder(spec)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// ceilingRun is one timed measurement of the ceiling.
type ceilingRun struct {
	bytes     int64
	wall, cpu time.Duration
}

func runCeiling(c *ceiling) (ceilingRun, error) {
	b, w, cpu, err := c.measure()
	return ceilingRun{b, w, cpu}, err
}

func (c ceilingRun) gbps() float64 {
	if c.wall <= 0 {
		return 0
	}
	return float64(c.bytes) / c.wall.Seconds() / 1e9
}

// diffStats is s minus the counters b had at the end of the warmup.
func diffStats(s, b pipeline.Stats) pipeline.Stats {
	s.BytesIn -= b.BytesIn
	s.BytesOut -= b.BytesOut
	s.MetaBytes -= b.MetaBytes
	s.Copy -= b.Copy
	s.StallJoin -= b.StallJoin
	s.StallPending -= b.StallPending
	s.StageWait -= b.StageWait
	s.Deliver -= b.Deliver
	s.Stage.H2D -= b.Stage.H2D
	s.Stage.Scatter -= b.Stage.Scatter
	s.Stage.Tile -= b.Stage.Tile
	s.Stage.Shuffle -= b.Stage.Shuffle
	s.Stage.Compress -= b.Stage.Compress
	s.Stage.Aggregate -= b.Stage.Aggregate
	s.Stage.D2H -= b.Stage.D2H
	s.Stage.Wall -= b.Stage.Wall
	return s
}

// accounting turns the run's busy times into what each core did (issue
// 15): per stage, busy time summed over its workers over wall × cores, so
// that a stage or a run that leaves cores idle shows it.
type accounting struct {
	wall  float64 // the run's wall seconds
	cores int     // GOMAXPROCS: the cores the run could use
	gpu   bool    // the stage's steps ran on a GPU (device time)
	fill  time.Duration
	// copyParts is how many goroutines share each copy into staging: the
	// pipeline times the producer's copy wall, its helpers run alongside.
	copyParts int
}

// copyParts is the number of goroutines a Write of n bytes is copied by
// (the pipeline's copier: the producer plus up to CopyHelpers helpers, in
// parts of at least half the threshold).
func copyParts(set pipeline.Settings, n int64) int {
	if set.CopyHelpers <= 0 || n < int64(set.CopyThreshold) {
		return 1
	}
	return int(min(int64(set.CopyHelpers+1), max(1, n/max(1, int64(set.CopyThreshold)/2))))
}

// figures lists the pipeline's stages in data-flow order. Steps the
// backend does not have (zero time) are left out, except the ones every
// backend has.
func (a *accounting) figures(s pipeline.Stats, in int64) []StageFigure {
	type fig struct {
		name   string
		d      time.Duration
		kind   string
		always bool
		parts  int // > 1: d is the wall of parts goroutines working together
	}
	dev := KindCPU
	if a.gpu {
		dev = KindGPU
	}
	figs := []fig{
		{"fill", a.fill, KindCPU, false, 0},
		{"copy", s.Copy, KindCPU, true, a.copyParts},
		// The producer's copy into a FrameWriter slot (part of copy's
		// time above, which includes it; timed by the slot).
		{"scatter", s.Stage.Scatter, KindCPU, false, 0},
		{"h2d", s.Stage.H2D, dev, false, 0},
		{"tile", s.Stage.Tile, dev, false, 0},
		{"shuffle", s.Stage.Shuffle, dev, false, 0},
		{"compress", s.Stage.Compress, dev, true, 0},
		{"aggregate", s.Stage.Aggregate, dev, false, 0},
		{"d2h", s.Stage.D2H, dev, false, 0},
		{"stage wall", s.Stage.Wall, KindWait, true, 0},
		{"stage wait", s.StageWait, KindWait, true, 0},
		{"deliver", s.Deliver, KindCPU, true, 0},
	}
	out := make([]StageFigure, 0, len(figs))
	for _, f := range figs {
		if f.d <= 0 && !f.always {
			continue
		}
		sf := StageFigure{Name: f.name, Kind: f.kind, BusyS: f.d.Seconds()}
		if f.parts > 1 {
			sf.BusyS *= float64(f.parts)
			sf.Estimated = true
		}
		if f.d > 0 {
			sf.GBps = float64(in) / sf.BusyS / 1e9
		}
		if a.wall > 0 && f.kind != KindWait {
			sf.Cores = sf.BusyS / a.wall
			units := float64(a.cores)
			if f.kind == KindGPU {
				units = 1 // one device's time
			}
			sf.BusyFraction = sf.Cores / units
		}
		out = append(out, sf)
	}
	return out
}

// coreUse is the run's total: process CPU time over wall × cores (what
// the machine really did, measured), beside the host stages' sum.
func (a *accounting) coreUse(figs []StageFigure, cpuS float64) CoreUse {
	u := CoreUse{Cores: a.cores}
	if a.wall <= 0 || a.cores <= 0 {
		return u
	}
	u.BusyCores = cpuS / a.wall
	u.BusyFraction = u.BusyCores / float64(a.cores)
	for _, f := range figs {
		if f.countsInCores() {
			u.StagesBusyFraction += f.BusyFraction
		}
	}
	return u
}

// countsInCores tells whether f's busy time adds to the stages' share of
// the cores: CPU stages do, except scatter, which is part of copy (the
// producer's copy scatters into the slot), so counting both would count
// its time twice.
func (f StageFigure) countsInCores() bool {
	return f.Kind == KindCPU && f.Name != "scatter"
}

// measureBaselines runs the memmove baseline and the second half of the
// codec ceiling after the pipeline has released its memory, so that
// neither competes with it.
func measureBaselines(r *Report, ceil *ceiling, before ceilingRun, buf []byte, in int64) error {
	bl := &r.Baselines
	if len(buf) > 0 {
		dst := make([]byte, len(buf))
		bl.MemmoveGBps, bl.MemmoveBytes = memmoveGBps(buf, dst, min(in, 4<<30))
		if bl.MemmoveGBps > 0 {
			bl.OverMemmove = r.Result.InputGBps / bl.MemmoveGBps
		}
	}
	if r.Config.Backend == "gpu" {
		// 256 MiB copies: large enough for the link's full rate.
		cb, err := gpu.MeasureCopyBandwidth(256 << 20)
		if err != nil {
			return fmt.Errorf("gpu copy bandwidth: %w", err)
		}
		bl.Copy = &cb
		if cb.H2DGBs > 0 {
			bl.OverH2D = r.Result.InputGBps / cb.H2DGBs
		}
	}
	after, err := runCeiling(ceil)
	if err != nil {
		return err
	}
	bl.CeilingBeforeGBps, bl.CeilingAfterGBps = before.gbps(), after.gbps()
	both := ceilingRun{before.bytes + after.bytes, before.wall + after.wall, before.cpu + after.cpu}
	bl.CeilingGBps, bl.CeilingBytes, bl.CeilingCPUS = both.gbps(), both.bytes, both.cpu.Seconds()
	bl.CeilingChunks, bl.CeilingRatio = int(ceil.n), ceil.ratio()
	if bl.CeilingGBps > 0 {
		bl.OverCeiling = r.Result.InputGBps / bl.CeilingGBps
	}
	if bl.CeilingCPUS > 0 && r.Result.CPUS > 0 {
		bl.OverCeilingCPU = (float64(r.Result.InputBytes) / r.Result.CPUS) / (float64(bl.CeilingBytes) / bl.CeilingCPUS)
	}
	return nil
}
