package bench

import (
	"context"
	"errors"
	"fmt"
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
	Level    int          // used as given: the CLI applies the codec's default
	Shuffle  zarr.Shuffle // blosc filter of the blosc codecs (zero: byte)
	Fill     Fill
	// Frames along dim 0; 0 means DefaultFrames, unless Duration is set.
	Frames int64
	// Duration > 0 runs for that long (after Warmup) instead of a frame
	// count; dim 0 then grows. Warmup is written but not counted.
	Duration, Warmup time.Duration
	WriteBytes       int64 // bytes per Write; 0: DefaultWriteBytes
	Prefill          bool
	Backend          string // auto, cpu or gpu
	Depth            int    // 0: the pipeline's default
	// OutDir is the store to write; "" writes to a discard sink. The
	// directory must not hold a store (the CLI checks --overwrite).
	OutDir string
	// NoBaselines skips the same-run baselines (tests that only need the
	// pipeline's figures).
	NoBaselines bool
	// Progress, when set, is called after every Write with the bytes
	// written so far and the total (-1 for a timed run). It runs on the
	// producer goroutine and must be quick.
	Progress func(done, total int64)
	Command  []string // recorded in the report
	Version  string   // recorded in the report
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
	fb := spec.FrameBytes()
	total := frames * fb

	r := &Report{
		Schema: Schema, Tool: "zwrite", Time: time.Now().UTC(), Command: o.Command, Version: o.Version,
		Machine: DescribeMachine(),
		Scenario: ScenarioInfo{
			Name: o.Scenario.Name, Chunk: spec.Chunk, Shard: spec.Shard,
			DType: spec.DType.String(), Codec: spec.Codec.String(), Level: spec.Level, Shuffle: shuffleName(&spec),
			Fill: o.Fill.String(), FrameBytes: fb, DimNames: spec.DimNames,
		},
		Config: RunConfig{
			Depth: o.Depth, WriteBytes: o.WriteBytes, Prefill: o.Prefill, Sink: "discard",
			DurationS: o.Duration.Seconds(), WarmupS: o.Warmup.Seconds(),
		},
	}
	if o.OutDir != "" {
		r.Config.Sink = o.OutDir
	}

	// Data: one epoch (or the frames covering one write) made once and
	// cycled, or a write-sized buffer refilled before every write.
	var buf []byte
	if o.Prefill {
		n := spec.EpochFrames()
		if n*fb > prefillMax {
			n = max((o.WriteBytes+fb-1)/fb, 1)
		}
		buf = make([]byte, n*fb)
		if err := FillFrames(o.Fill, &spec, 0, buf); err != nil {
			return nil, err
		}
		r.Config.PrefillBuf = int64(len(buf))
	} else {
		buf = make([]byte, o.WriteBytes)
	}

	// The codec ceiling's first half, before the run (see ceiling).
	var ceil *ceiling
	var ceilBefore ceilingRun
	if !o.NoBaselines {
		if ceil, err = newCeiling(o.Fill, &spec, stageEncoder(&spec)); err != nil {
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
	var sk sink.Sink
	if o.OutDir == "" {
		sk = sink.NewDiscard()
	} else if sk, err = sink.NewDir(o.OutDir, sink.DirOptions{}); err != nil {
		return nil, fmt.Errorf("open store %s: %w", o.OutDir, err)
	}
	defer sk.Close()
	w, err := pipeline.New(ctx, pipeline.Config{Spec: spec, Stage: st, Sink: sk, Depth: o.Depth})
	if err != nil {
		return nil, fmt.Errorf("start writer: %w", err)
	}
	r.Config.Depth = w.Settings().Depth
	r.Result.InitS = time.Since(t0).Seconds()

	// The timed loop.
	var (
		pos      int64 // bytes of the stream written
		fillTime time.Duration
		base     pipeline.Stats // counters at the end of the warmup
		basePos  int64
		start    = time.Now()
		cpu0     = cpuTime()
		warm     = !timed || o.Warmup == 0
	)
	abort := func(err error) (*Report, error) {
		_ = w.Abort(err)
		return nil, err
	}
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
			if err := FillElems(o.Fill, &spec, pos/es, p); err != nil {
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
	tc := time.Now()
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close writer: %w", err)
	}
	end := time.Now()
	r.Result.CPUS = (cpuTime() - cpu0).Seconds()
	r.Result.FlushS = end.Sub(tc).Seconds()
	wall := end.Sub(start).Seconds()
	all := w.Stats()
	s := diffStats(all, base)

	in := pos - basePos
	res := &r.Result
	res.Frames = in / fb
	res.InputBytes = in
	res.OutputBytes = s.BytesOut
	res.WallS = wall
	res.FillS = fillTime.Seconds()
	res.InputGBps = float64(in) / wall / 1e9
	res.InputGiBps = float64(in) / wall / (1 << 30)
	res.OutputGBps = float64(s.BytesOut) / wall / 1e9
	// The ratio over the whole run: at the end of a warmup some written
	// bytes are not yet compressed, so the window's in and out differ in
	// what they cover; the totals do not.
	if all.BytesOut > 0 {
		res.Ratio = float64(all.BytesIn) / float64(all.BytesOut)
	}
	res.StallJoinS = s.StallJoin.Seconds()
	res.StallBackS = s.StallPending.Seconds()
	res.ProducerStallS = res.StallJoinS + res.StallBackS
	r.Scenario.Shape = append([]int64{pos / fb}, spec.Shape[1:]...)
	r.Stages = stageFigures(s, in)

	if !o.NoBaselines {
		if err := measureBaselines(r, ceil, ceilBefore, buf, in); err != nil {
			return nil, err
		}
	}
	return r, nil
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
	s.Copy -= b.Copy
	s.StallJoin -= b.StallJoin
	s.StallPending -= b.StallPending
	s.StageWait -= b.StageWait
	s.Deliver -= b.Deliver
	s.Stage.H2D -= b.Stage.H2D
	s.Stage.Tile -= b.Stage.Tile
	s.Stage.Shuffle -= b.Stage.Shuffle
	s.Stage.Compress -= b.Stage.Compress
	s.Stage.Aggregate -= b.Stage.Aggregate
	s.Stage.D2H -= b.Stage.D2H
	s.Stage.Wall -= b.Stage.Wall
	return s
}

// stageFigures lists the pipeline's stages in data-flow order. Steps the
// backend does not have (zero time) are left out, except the ones every
// backend has.
func stageFigures(s pipeline.Stats, in int64) []StageFigure {
	type fig struct {
		name   string
		d      time.Duration
		always bool
	}
	figs := []fig{
		{"copy", s.Copy, true},
		{"h2d", s.Stage.H2D, false},
		{"tile", s.Stage.Tile, false},
		{"shuffle", s.Stage.Shuffle, false},
		{"compress", s.Stage.Compress, true},
		{"aggregate", s.Stage.Aggregate, false},
		{"d2h", s.Stage.D2H, false},
		{"stage wall", s.Stage.Wall, true},
		{"stage wait", s.StageWait, true},
		{"deliver", s.Deliver, true},
	}
	out := make([]StageFigure, 0, len(figs))
	for _, f := range figs {
		if f.d <= 0 && !f.always {
			continue
		}
		sf := StageFigure{Name: f.name, BusyS: f.d.Seconds()}
		if f.d > 0 {
			sf.GBps = float64(in) / f.d.Seconds() / 1e9
		}
		out = append(out, sf)
	}
	return out
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

// shuffleName is the blosc filter the report records: "" for codecs
// without one.
func shuffleName(s *zarr.Spec) string {
	if !s.Codec.Blosc() {
		return ""
	}
	return zarr.ShuffleName(s.Shuffle)
}
