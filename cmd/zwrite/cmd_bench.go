package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/zarr"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

// benchOptions are the flags of zwrite bench; validate turns them into
// bench.Options or a usage error naming the flag.
type benchOptions struct {
	scenario   string
	shape      string
	chunk      string
	shard      string
	codec      string
	level      int
	shuffle    string
	depth      int
	backend    string
	dtype      string
	fill       string
	frames     int64
	writeBytes string
	output     string
	overwrite  bool
	json       string
	progress   bool
	prefill    bool
	duration   time.Duration
	warmup     time.Duration
	baselines  bool

	opts bench.Options // set by validate
}

func (o *benchOptions) addFlags(f *pflag.FlagSet, io stdio) {
	f.StringVar(&o.scenario, "scenario", "orca2", "reference scenario: 256cube, orca2, medfmt or smallepoch (ignored with --shape)")
	f.StringVar(&o.shape, "shape", "", "custom scenario: array shape, slowest first (with --chunk, optionally --shard)")
	f.StringVar(&o.chunk, "chunk", "", "custom scenario: inner chunk shape")
	f.StringVar(&o.shard, "shard", "", "custom scenario: shard shape (default: the chunk shape)")
	f.StringVar(&o.codec, "codec", "zstd", "compressor: none, zstd, lz4 or blosc-zstd")
	f.IntVar(&o.level, "level", 0, "compression level (default: 1; zstd -7..22, lz4 and blosc-zstd 0..9)")
	f.StringVar(&o.shuffle, "shuffle", "byte", shuffleUsage)
	f.IntVar(&o.depth, "depth", 0, "batches in flight (default: the writer's)")
	f.StringVar(&o.backend, "backend", "auto", "compress backend: auto, cpu or gpu")
	f.StringVar(&o.dtype, "dtype", "uint16", "element type: uint8..uint64, int8..int64, float32, float64")
	f.StringVar(&o.fill, "fill", "thirds", "synthetic data: xor, zeros, rand (12-bit noise) or thirds (noise, gradient, zeros)")
	f.Int64Var(&o.frames, "frames", 0, "frames to write along dim 0 (default: about 10 s of CPU zstd work on this machine)")
	f.StringVar(&o.writeBytes, "write-bytes", "64MiB", "size of each Write to the writer, e.g. 4MiB")
	f.StringVarP(&o.output, "output", "o", "", "write the store here (default: a discard sink)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace an existing store at --output")
	f.StringVar(&o.json, "json", "", "write the run's JSON record to FILE, or - for stdout")
	f.BoolVar(&o.progress, "progress", isTerminal(io.err), "show a progress bar on stderr (default: on when stderr is a terminal)")
	f.BoolVar(&o.prefill, "prefill", false, "make the data once (one epoch, cycled) so that only the writer is timed")
	f.DurationVar(&o.duration, "duration", 0, "run for this long instead of a frame count, e.g. 10s (dim 0 grows)")
	f.DurationVar(&o.warmup, "warmup", 0, "with --duration: write this long first without counting it")
	f.BoolVar(&o.baselines, "baselines", true, "measure the same-run baselines (memmove, codec ceiling; about 3 s)")
}

func (o *benchOptions) validate(f *pflag.FlagSet) error {
	b := &o.opts
	var err error
	if f.Changed("shape") || f.Changed("chunk") || f.Changed("shard") {
		if !f.Changed("shape") || !f.Changed("chunk") {
			return usagef("a custom scenario needs both --shape and --chunk (and optionally --shard)")
		}
		shape, err := parseDims("shape", o.shape)
		if err != nil {
			return err
		}
		chunk, err := parseDims("chunk", o.chunk)
		if err != nil {
			return err
		}
		var shard []int64
		if o.shard != "" {
			if shard, err = parseDims("shard", o.shard); err != nil {
				return err
			}
		}
		if b.Scenario, err = bench.CustomScenario(shape, chunk, shard); err != nil {
			return &usageError{err}
		}
		if shape[0] > 0 && !f.Changed("frames") {
			o.frames = shape[0]
		}
	} else if b.Scenario, err = bench.LookupScenario(o.scenario); err != nil {
		return &usageError{fmt.Errorf("--scenario: %w", err)}
	}
	if b.DType, err = zarr.ParseDType(o.dtype); err != nil {
		return &usageError{fmt.Errorf("--dtype: %w", err)}
	}
	if b.Codec, err = zarr.ParseCodec(o.codec); err != nil {
		return &usageError{fmt.Errorf("--codec: %w", err)}
	}
	b.Level = b.Codec.DefaultLevel()
	if f.Changed("level") {
		b.Level = o.level
	}
	if b.Shuffle, err = parseShuffleFlag(f, o.shuffle, b.Codec); err != nil {
		return err
	}
	if b.Fill, err = bench.ParseFill(o.fill); err != nil {
		return &usageError{fmt.Errorf("--fill: %w", err)}
	}
	if _, err := backend.Parse(o.backend); err != nil {
		return &usageError{fmt.Errorf("--backend: %w", err)}
	}
	b.Backend = o.backend
	if o.depth < 0 {
		return usagef("--depth %d: want 1 or more (0 = the writer's default)", o.depth)
	}
	b.Depth = o.depth
	if o.frames < 0 {
		return usagef("--frames %d: want 1 or more", o.frames)
	}
	if f.Changed("frames") && o.frames == 0 {
		return usagef("--frames 0: want 1 or more (or --duration for a timed run)")
	}
	if o.duration < 0 || o.warmup < 0 {
		return usagef("--duration and --warmup must not be negative")
	}
	if o.duration > 0 && f.Changed("frames") {
		return usagef("--frames and --duration both given; pick one")
	}
	if o.warmup > 0 && o.duration == 0 {
		return usagef("--warmup needs --duration")
	}
	b.Frames, b.Duration, b.Warmup = o.frames, o.duration, o.warmup
	wb, err := parseSize("write-bytes", o.writeBytes)
	if err != nil {
		return err
	}
	if wb < int64(b.DType.Size()) {
		return usagef("--write-bytes %q: want at least one %d-byte element", o.writeBytes, b.DType.Size())
	}
	b.WriteBytes = wb
	b.Prefill = o.prefill
	b.NoBaselines = !o.baselines
	// The spec must be valid before anything runs: a bad custom geometry
	// or level is the user's to fix.
	if _, err := b.Scenario.Spec(b.DType, b.Codec, b.Level, max(o.frames, 0)); err != nil {
		return &usageError{err}
	}
	if o.output != "" {
		if err := checkBenchOutput(o.output, o.overwrite); err != nil {
			return err
		}
		b.OutDir = o.output
	}
	return nil
}

// checkBenchOutput refuses an existing, non-empty output without
// --overwrite, and with it removes the old store (a bench store is
// scratch). Only a directory holding a zarr.json is removed: a mistyped -o
// must never delete anything else.
func checkBenchOutput(path string, overwrite bool) error {
	ents, err := os.ReadDir(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output %s: %w", path, err)
	case len(ents) == 0:
		return nil
	case !overwrite:
		return usagef("output %s already exists; pass --overwrite to replace it, or choose another -o", path)
	}
	if _, err := os.Stat(filepath.Join(path, "zarr.json")); err != nil {
		return usagef("output %s exists and is not a Zarr store (no zarr.json); refusing to delete it, choose another -o", path)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove old output %s: %w", path, err)
	}
	return nil
}

func newBenchCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Measure the writer on a synthetic scenario, with same-run baselines",
		Long: `bench writes synthetic frames of a reference scenario (or a custom shape)
through the same writer append uses, and reports input and output GB/s,
the compression ratio, wall, init and flush time, the writer's per-stage
busy time and the producer's stalls. Beside the result it measures, in the
same run, a parallel memmove of the same bytes and the CPU codec alone on
the scenario's chunks (the codec ceiling), and prints end-to-end / ceiling.

Scenarios (uint16 unless --dtype; shapes slowest first):
  256cube     tzyxc 1000,256,256,256,3  chunk 4,32,32,32,1  shard 64,128,128,128,3
  orca2       tcyx 10000,2,2048,2304    chunk 32,1,64,64    shard 640,2,512,576
  medfmt      zcyx 10,1,10240,15360     chunk 4,1,128,256   shard 12,1,2560,3840
  smallepoch  tyx 65536,16,16           chunk 32768,1,1     shard 32768,16,16
The scenario's dim 0 is a geometry; the run writes --frames frames (default:
about 10 s of CPU zstd work on this machine) or runs for --duration.

With --prefill one epoch of data is made before the clock starts and
cycled; without it, each write's data is made just before the write (that
time is reported as fill and is part of wall).`,
		Example: `  zwrite bench --scenario medfmt --codec zstd --prefill
  zwrite bench --scenario orca2 --codec lz4 --prefill --duration 10s --warmup 2s --json run.json
  zwrite bench --shape 0,512,512 --chunk 8,128,128 --shard 64,512,512 --frames 2048 -o /tmp/b.zarr`,
		Args: noArgs,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd.Flags()); err != nil {
				return err
			}
			return runBench(cmd.Context(), o, io)
		}),
	}
	o.addFlags(cmd.Flags(), io)
	return cmd
}

func runBench(ctx context.Context, o *benchOptions, io stdio) error {
	b := o.opts
	b.Command = os.Args
	b.Version = versionString()
	if o.progress {
		bar := newBenchBar(io.err, b.Duration > 0)
		b.Progress = func(done, total int64) {
			if total > 0 {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(done)
		}
		defer func() { _ = bar.Finish(); fmt.Fprintln(io.err) }()
	}
	rep, err := bench.Run(ctx, b)
	var ue *backend.UnavailableError
	var me *pipeline.MemoryError
	if errors.As(err, &ue) || errors.As(err, &me) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if o.progress {
		fmt.Fprintln(io.err)
	}
	if err := rep.WriteTable(io.err); err != nil {
		return err
	}
	switch o.json {
	case "":
	case "-":
		return rep.WriteJSON(io.out)
	default:
		f, err := os.Create(o.json)
		if err != nil {
			return fmt.Errorf("json record: %w", err)
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("json record %s: %w", o.json, err)
		}
	}
	return nil
}

// newBenchBar draws bytes written and the rate; a timed run has no total.
func newBenchBar(w io.Writer, timed bool) *progressbar.ProgressBar {
	max := int64(-1)
	if !timed {
		max = 1
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("bench"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
}
