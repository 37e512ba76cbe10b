// Package pyramid writes a multiscale image in the stream: level 0 is the
// input, level k+1 is level k reduced by 2 along chosen dimensions. Each
// level is a full sharded array written by its own pipeline.Writer, into
// its own part of one store (Sub(sink, "k")); level k's compress stage
// computes level k+1's frames from each batch where the batch already is
// (on the GPU for the GPU backend), and level k's delivery hands them to
// level k+1's Writer in stream order. So the levels are as exact as the
// downsample package makes them, the memory is fixed (each level's slots),
// and every level's zarr.json names only its committed frames.
//
// It knows nothing of OME metadata (the caller writes the image group's
// zarr.json) or of backends (the caller gives a stage factory).
package pyramid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// MaxLevels bounds the levels of a pyramid.
const MaxLevels = 32

// LevelSpecs returns the spec of every level: level 0 is spec; each next
// level halves (rounding up) the reduced dimensions of the shape, keeps
// the chunk and shard shape but clips them to the level's shape (a chunk
// never exceeds the array in a bounded dimension), and keeps the codec.
// A growing dimension 0 stays growing.
func LevelSpecs(spec zarr.Spec, levels int, reduce []bool) ([]zarr.Spec, error) {
	if levels < 1 || levels > MaxLevels {
		return nil, fmt.Errorf("%d levels: want 1 to %d", levels, MaxLevels)
	}
	if len(reduce) != spec.Rank() {
		return nil, fmt.Errorf("%d reduce flags for %d dimensions", len(reduce), spec.Rank())
	}
	specs := []zarr.Spec{spec.Clone()}
	for k := 1; k < levels; k++ {
		prev := specs[k-1]
		s := prev.Clone()
		for d := range s.Shape {
			if reduce[d] {
				s.Shape[d] = (prev.Shape[d] + 1) / 2
			}
			if s.Shape[d] > 0 && s.Chunk[d] > s.Shape[d] {
				// Clip the chunk to the level; the shard to the chunks
				// that cover the level.
				s.Chunk[d] = s.Shape[d]
			}
			if s.Shape[d] > 0 {
				need := (s.Shape[d] + s.Chunk[d] - 1) / s.Chunk[d] * s.Chunk[d]
				s.Shard[d] = min(s.Shard[d], need)
				s.Shard[d] = max(s.Chunk[d], s.Shard[d]/s.Chunk[d]*s.Chunk[d])
			}
		}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("level %d: %w", k, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// AutoLevels is how many levels "auto" means: levels until the smallest
// fits in one chunk along every reduced dimension other than a growing
// dim 0 (at least 1, at most MaxLevels).
func AutoLevels(spec zarr.Spec, reduce []bool) int {
	shape := append([]int64(nil), spec.Shape...)
	for n := 1; n < MaxLevels; n++ {
		fits := true
		for d := range shape {
			if reduce[d] && shape[d] > 0 && shape[d] > spec.Chunk[d] {
				fits = false
			}
		}
		if fits {
			return n
		}
		for d := range shape {
			if reduce[d] {
				shape[d] = (shape[d] + 1) / 2
			}
		}
	}
	return MaxLevels
}

// Config describes a pyramid. Zero values mean "default" as in
// pipeline.Config.
type Config struct {
	Spec   zarr.Spec // level 0
	Levels int       // 1: level 0 alone
	Reduce []bool    // per dimension
	Method downsample.Method
	// NewStage builds a compress stage for one level (the CLI picks the
	// backend); the pyramid closes the stages it made.
	NewStage func(stage.Config) (stage.Stage, error)
	// Sink is the image: level k's files go under "k/".
	Sink sink.Sink
	// Starts and Existing continue an image (a resume): level k's writer
	// starts at frame Starts[k], its zarr.json naming Existing[k] now (see
	// pipeline.Config.StartFrame). nil: a new image.
	Starts, Existing []int64
	// Writer is the template of every level's pipeline.Config (Depth,
	// IOWorkers, FlushInterval, MaxPending, ...); Spec, Stage, Sink, Down,
	// KickAlign are set per level. Its MemoryBudget (0: the default) is
	// split among the levels by their frame sizes.
	Writer pipeline.Config
}

// Writer writes a pyramid. Its methods are those of pipeline.Writer for
// level 0; the other levels are fed by the levels above them.
type Writer struct {
	specs  []zarr.Spec
	halveT bool // every level halves dim 0
	levels []*pipeline.Writer
	stages []stage.Stage
	once   sync.Once // closes the stages, after Close or Abort tore the levels down
}

// New builds every level's stage and Writer, the last level first (each
// level needs the next one's Writer to hand its frames to).
func New(ctx context.Context, cfg Config) (_ *Writer, err error) {
	specs, err := LevelSpecs(cfg.Spec, cfg.Levels, cfg.Reduce)
	if err != nil {
		return nil, err
	}
	if cfg.NewStage == nil || cfg.Sink == nil {
		return nil, errors.New("pyramid: NewStage and Sink are required")
	}
	w := &Writer{specs: specs, halveT: cfg.Reduce[0], levels: make([]*pipeline.Writer, len(specs)), stages: make([]stage.Stage, len(specs))}
	defer func() {
		if err != nil {
			// Tear down the levels already started.
			w.abort(errors.New("pyramid start failed"))
			w.closeStages()
		}
	}()
	budgets := splitBudget(cfg.Writer.MemoryBudget, specs)
	align := int64(1)
	if cfg.Reduce[0] {
		align = 2
	}
	var next io.Writer
	for k := len(specs) - 1; k >= 0; k-- {
		sc := stage.Config{Spec: specs[k]}
		if k < len(specs)-1 {
			sc.Down = &stage.Downsample{Reduce: append([]bool(nil), cfg.Reduce...), Method: cfg.Method}
		}
		st, err := cfg.NewStage(sc)
		if err != nil {
			return nil, fmt.Errorf("level %d: %w", k, err)
		}
		w.stages[k] = st
		sub, err := sink.Sub(cfg.Sink, strconv.Itoa(k))
		if err != nil {
			return nil, err
		}
		pc := cfg.Writer
		pc.Spec, pc.Stage, pc.Sink, pc.Down = specs[k], st, sub, next
		pc.MemoryBudget = budgets[k]
		pc.Derived = k > 0
		if cfg.Starts != nil {
			pc.StartFrame, pc.ExistingFrames = cfg.Starts[k], cfg.Existing[k]
		}
		if sc.Down != nil {
			pc.KickAlign = align
		}
		lw, err := pipeline.New(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("level %d: %w", k, err)
		}
		w.levels[k] = lw
		next = lw
	}
	return w, nil
}

// splitBudget shares a memory budget among the levels in proportion to
// their frame sizes (level 1 of a 2-D reduction gets a quarter of level
// 0's share), so the total stays what one array would take. 0 stays 0
// (each level's default, a quarter of the machine's memory, scaled the
// same way).
func splitBudget(total int64, specs []zarr.Spec) []int64 {
	out := make([]int64, len(specs))
	if total <= 0 {
		total = pipeline.DefaultMemoryBudget()
	}
	var sum float64
	for _, s := range specs {
		sum += float64(s.FrameBytes())
	}
	for k, s := range specs {
		out[k] = max(int64(float64(total)*float64(s.FrameBytes())/sum), 1)
	}
	return out
}

// Specs are the levels' specs.
func (w *Writer) Specs() []zarr.Spec { return w.specs }

// Level returns level k's Writer (its Stats, its Settings).
func (w *Writer) Level(k int) *pipeline.Writer { return w.levels[k] }

// Stats are level 0's counters but Shards and BytesOut, which sum every
// level.
func (w *Writer) Stats() pipeline.Stats {
	st := w.levels[0].Stats()
	for _, lw := range w.levels[1:] {
		s := lw.Stats()
		st.Shards += s.Shards
		st.BytesOut += s.BytesOut
	}
	return st
}

// Settings are level 0's.
func (w *Writer) Settings() pipeline.Settings { return w.levels[0].Settings() }

// Write feeds level 0.
func (w *Writer) Write(p []byte) (int, error) { return w.levels[0].Write(p) }

// ReadAt feeds level 0 with positioned reads of r (see pipeline.Writer).
func (w *Writer) ReadAt(r io.ReaderAt, size int64, readers int) (int64, error) {
	return w.levels[0].ReadAt(r, size, readers)
}

// Close closes the levels top down: level k's Close delivers its last
// batch, whose frames reach level k+1 before that one closes. It returns
// level 0's result if that is an error (the input's errors are level 0's),
// else the first error of another level.
//
// Once level 0 fails, the other levels are aborted rather than closed (a
// level's Close names its last, partial row), and none is left naming a
// frame reduced from level-0 frames that level 0 does not hold (clamp).
func (w *Writer) Close() error {
	var first, top error
	for k, lw := range w.levels {
		if k > 0 && top != nil {
			lw.Abort(fmt.Errorf("level 0 failed: %w", top))
			continue
		}
		err := lw.Close()
		if k == 0 {
			top = err
		}
		if err != nil && first == nil && k > 0 {
			first = fmt.Errorf("level %d: %w", k, err)
		}
	}
	if top != nil || first != nil {
		if err := w.clamp(); err != nil && first == nil {
			first = err
		}
	}
	w.closeStages()
	if top != nil {
		return top
	}
	return first
}

// clamp makes every level k > 0 name at most the frames level 0's
// zarr.json supports (whole reductions of the frames it names), cut to
// level k's shard rows, after a failure: a level's rows can commit from
// frames whose level-0 rows then failed. Levels that name less stay.
func (w *Writer) clamp() error {
	if w.levels[0] == nil {
		return nil // New failed before level 0 started
	}
	n0 := w.levels[0].Stats().Named
	var errs []error
	for k := 1; k < len(w.levels); k++ {
		lw := w.levels[k]
		if lw == nil {
			continue
		}
		lim := n0
		if w.halveT {
			lim = n0 >> k
		}
		if lw.Stats().Named <= lim {
			continue
		}
		rows := w.specs[k].Shard[0]
		if err := lw.ClampNamed(lim / rows * rows); err != nil {
			errs = append(errs, fmt.Errorf("level %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Abort stops every level (see pipeline.Writer.Abort); safe from any
// goroutine. It returns level 0's result.
func (w *Writer) Abort(err error) error {
	res := w.abort(err)
	if cerr := w.clamp(); cerr != nil && res == nil {
		res = cerr
	}
	w.closeStages()
	return res
}

func (w *Writer) abort(err error) error {
	var res error
	// Bottom up: a level blocked handing frames to the next one is freed
	// by that one's abort.
	for k := len(w.levels) - 1; k >= 0; k-- {
		if lw := w.levels[k]; lw != nil {
			if r := lw.Abort(err); k == 0 {
				res = r
			}
		}
	}
	return res
}

func (w *Writer) closeStages() {
	w.once.Do(func() {
		for _, st := range w.stages {
			if st != nil {
				st.Close()
			}
		}
	})
}
