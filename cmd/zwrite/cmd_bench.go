package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
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
	codecs     string
	shuffle    string
	input      string
	level      int
	depth      int
	ioWorkers  int
	readers    int
	backend    string
	dtype      string
	fill       string
	frames     int64
	writeBytes string
	output     string
	s3Endpoint string
	overwrite  bool
	json       string
	progress   bool
	prefill    bool
	duration   time.Duration
	warmup     time.Duration
	baselines  bool
	cpuprofile string

	opts     bench.Options       // set by validate
	choices  []bench.CodecChoice // --codecs, set by validate
	backends []string            // the matrix's backends
	bnote    string              // backends the matrix leaves out, and why
}

func (o *benchOptions) addFlags(f *pflag.FlagSet, io stdio) {
	f.StringVar(&o.scenario, "scenario", "orca2", "reference scenario: 256cube, orca2, medfmt or smallepoch (ignored with --shape)")
	f.StringVar(&o.shape, "shape", "", "custom scenario: array shape, slowest first (with --chunk, optionally --shard)")
	f.StringVar(&o.chunk, "chunk", "", "custom scenario: inner chunk shape")
	f.StringVar(&o.shard, "shard", "", "custom scenario: shard shape (default: the chunk shape)")
	f.StringVar(&o.codec, "codec", "zstd", "compressor: none, zstd, lz4 or blosc-zstd")
	f.StringVar(&o.shuffle, "shuffle", "byte", shuffleUsage)
	f.StringVar(&o.codecs, "codecs", "", "compare codecs: all, or a list such as zstd,lz4:bit,lz4:none (one table: ratio and GB/s per backend)")
	f.StringVar(&o.input, "input", "", "time zwrite append FILE: feed this raw file to the writer (frame shape from --shape or the scenario; frames = file size / frame bytes) and measure the read and write ceilings")
	f.IntVar(&o.level, "level", 0, "compression level (default: 1; zstd -7..22, lz4 and blosc-zstd 0..9)")
	f.IntVar(&o.depth, "depth", 0, "batches in flight (default: the writer's)")
	f.IntVar(&o.ioWorkers, "io-workers", 0, "shard files written at once (default: the writer's)")
	f.IntVar(&o.readers, "readers", 0, "with --input: positioned reads at once (default: the writer's)")
	f.StringVar(&o.backend, "backend", "auto", "compress backend: auto, cpu or gpu")
	f.StringVar(&o.dtype, "dtype", "uint16", "element type: uint8..uint64, int8..int64, float32, float64")
	f.StringVar(&o.fill, "fill", "thirds", "synthetic data: xor, zeros, rand (12-bit noise), thirds (noise, gradient, zeros) or camera (shot noise on drifting blobs, ~2x with zstd)")
	f.Int64Var(&o.frames, "frames", 0, "frames to write along dim 0 (default: about 10 s of CPU zstd work on this machine)")
	f.StringVar(&o.writeBytes, "write-bytes", "64MiB", "size of each Write to the writer, e.g. 4MiB")
	f.StringVarP(&o.output, "output", "o", "", "write the store here: a directory or s3://BUCKET/PREFIX (default: a discard sink)")
	addS3EndpointFlag(f, &o.s3Endpoint)
	f.BoolVar(&o.overwrite, "overwrite", false, "replace an existing store at --output")
	f.StringVar(&o.json, "json", "", "write the run's JSON record to FILE, or - for stdout")
	f.BoolVar(&o.progress, "progress", isTerminal(io.err), "show a progress bar on stderr (default: on when stderr is a terminal)")
	f.BoolVar(&o.prefill, "prefill", false, "make the data once (one epoch, cycled) so that only the writer is timed")
	f.DurationVar(&o.duration, "duration", 0, "run for this long instead of a frame count, e.g. 10s (dim 0 grows)")
	f.DurationVar(&o.warmup, "warmup", 0, "with --duration: write this long first without counting it")
	f.BoolVar(&o.baselines, "baselines", true, "measure the same-run baselines (memmove, codec ceiling; about 3 s)")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a Go CPU profile of the whole run to FILE (read it with go tool pprof), to see where a shortfall goes")
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
		if shape[0] > 0 && !f.Changed("frames") && !f.Changed("input") {
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
	if b.Shuffle, err = parseShuffleFlag(f, o.shuffle, b.Codec); err != nil {
		return err
	}
	b.Level = b.Codec.DefaultLevel()
	if f.Changed("level") {
		b.Level = o.level
	}
	if b.Fill, err = bench.ParseFill(o.fill); err != nil {
		return &usageError{fmt.Errorf("--fill: %w", err)}
	}
	kind, err := backend.Parse(o.backend)
	if err != nil {
		return &usageError{fmt.Errorf("--backend: %w", err)}
	}
	if f.Changed("codecs") {
		if f.Changed("codec") || f.Changed("shuffle") {
			return usagef("--codecs names the codecs and shuffles itself; leave out --codec and --shuffle")
		}
		if o.output != "" {
			return usagef("--codecs writes to the discard sink; give one --codec to write a store with -o")
		}
		if o.choices, err = bench.ParseCodecs(o.codecs); err != nil {
			return &usageError{fmt.Errorf("--codecs: %w", err)}
		}
		o.backends, o.bnote = bench.MatrixBackends(kind)
		if !f.Changed("level") {
			b.Level = 1 // every codec's default but none's, which has no level
		}
		if !f.Changed("baselines") {
			o.baselines = false // a dozen runs: the table is ratio and rate
		}
	}
	if f.Changed("input") {
		for _, name := range []string{"frames", "duration", "warmup", "prefill", "fill"} {
			if f.Changed(name) {
				return usagef("--input writes the whole file as the data; leave out --%s", name)
			}
		}
		if o.input == "" {
			return usagef("--input needs a file name")
		}
		st, err := os.Stat(o.input)
		if err != nil {
			return usagef("--input: %v", unwrapPath(err))
		}
		if !st.Mode().IsRegular() {
			return usagef("--input %s is not a regular file", o.input)
		}
		b.Input = o.input
		o.frames = 0 // the file decides (a --shape dim 0 is ignored)
	}
	b.Backend = o.backend
	if o.depth < 0 {
		return usagef("--depth %d: want 1 or more (0 = the writer's default)", o.depth)
	}
	b.Depth = o.depth
	if o.ioWorkers < 0 || o.ioWorkers > pipeline.MaxIOWorkers || o.readers < 0 || o.readers > 256 {
		return usagef("--io-workers %d / --readers %d: want 0 (default) to %d / 256", o.ioWorkers, o.readers, pipeline.MaxIOWorkers)
	}
	b.IOWorkers, b.Readers = o.ioWorkers, o.readers
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
	spec, err := b.Scenario.Spec(b.DType, b.Codec, b.Level, max(o.frames, 0))
	if err != nil {
		return &usageError{err}
	}
	spec.Shuffle = b.Shuffle
	if err := spec.Validate(); err != nil {
		return &usageError{err}
	}
	if o.s3Endpoint != "" && !isURL(o.output) {
		return usagef("--s3-endpoint is for s3:// outputs; -o %q is not one", o.output)
	}
	if o.output != "" {
		b.OutDir, b.Overwrite = o.output, o.overwrite
		if b.MaxObjectSize, err = maxShardBytes(&spec); err != nil {
			return err
		}
		b.Endpoint = o.s3Endpoint
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
busy time and the producer's stalls, and what each core did: per stage its
busy time summed over workers over wall x cores (GPU steps: over wall),
and the process's CPU time over wall x cores, so idle cores show (on a
shared machine the stage timers exceed the CPU time: they are wall clocks).
Beside the result it measures, in the
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
time is reported as fill and is part of wall). --fill camera is data that
compresses like a sensor's (about 2x with zstd level 1); see zwrite synth.

--input FILE times the real job, zwrite append FILE: the file is fed to
the writer as append feeds it (frame shape from --shape/--dtype or the
scenario, chunk and shard as append takes them; frames = file size / frame
bytes). Beside it the same run measures the I/O ceilings: the file read by
N threads of positioned reads, and with -o the store's shard files (same
count and sizes) written by N threads to the output's file system; the
best N counts, and end-to-end / ceiling is printed. The file is read as
the OS has it cached (no cache is dropped; on tmpfs it is memory).

-o s3://BUCKET/PREFIX writes through the object-store sink (credentials,
region and endpoint as for append, whose help lists where they come from:
AWS_ACCESS_KEY_ID / AWS_PROFILE, AWS_ENDPOINT_URL or --s3-endpoint). With
the baselines on, the same run then uploads objects of the same count and
sizes as the store's shards through the S3 client alone, with the sink's
part size and parts in flight and as many objects at once as the writer
has open (a shard row's, at least the I/O workers), beside the store under
a hidden prefix that is removed afterwards, and prints output rate / that
ceiling (with or without --input).

--codecs all (or a list such as zstd,lz4:bit,lz4:none) runs the same data
with every codec and blosc shuffle on the cpu backend, and the gpu where
one is present, and prints one table of ratio and GB/s per backend to pick
a codec for one's data; a codec a backend lacks says so ("no GPU
kernels"). --json then writes one record per run as JSON lines. The
baselines are off unless --baselines is given.`,
		Example: `  zwrite bench --scenario medfmt --codec zstd --prefill
  zwrite bench --scenario orca2 --codec lz4 --prefill --duration 10s --warmup 2s --json run.json
  zwrite bench --shape 0,512,512 --chunk 8,128,128 --shard 64,512,512 --frames 2048 -o /tmp/b.zarr
  zwrite bench --scenario orca2 --fill camera --prefill --frames 640 --codecs all
  zwrite bench --scenario orca2 --codec lz4 --prefill --frames 640 -o s3://bench/orca2.zarr --overwrite
  zwrite bench --input /dev/shm/orca.raw --shape 0,2,2048,2304 --chunk 32,1,64,64 --shard 640,2,512,576 -o /dev/shm/o.zarr`,
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
	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.choices != nil {
		return runCodecMatrix(ctx, o, b, io)
	}
	rep, err := bench.Run(ctx, b)
	if err := benchError(err); err != nil {
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

// benchError maps what the user can fix (a backend this machine lacks,
// a depth that does not fit, an input that is not whole frames) to usage
// errors, and names --s3-endpoint when the S3 server cannot be reached.
func benchError(err error) error {
	var ue *backend.UnavailableError
	var ie *bench.InputError
	if errors.As(err, &ue) || errors.As(err, &ie) {
		return &usageError{err}
	}
	if u := writerUsage(err); u != nil {
		return u
	}
	if u := outputUsage(err); u != nil {
		return u
	}
	return s3Hint(err)
}

// runCodecMatrix runs --codecs: every choice on every backend, the table on
// stderr and, with --json, one record per run as JSON lines, each written
// when its run ends (a later failure keeps the earlier ones).
func runCodecMatrix(ctx context.Context, o *benchOptions, b bench.Options, io stdio) error {
	var out *os.File
	switch o.json {
	case "":
	case "-":
	default:
		f, err := os.Create(o.json)
		if err != nil {
			return fmt.Errorf("json records: %w", err)
		}
		defer f.Close()
		out = f
	}
	each := func(r *bench.Report) error {
		if o.json == "" {
			return nil
		}
		w := io.out
		if out != nil {
			w = out
		}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("json record: %w", err)
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("json record: %w", err)
		}
		return nil
	}
	m, err := bench.RunMatrix(ctx, b, o.choices, o.backends, each)
	if m != nil {
		m.Note = o.bnote
		if o.progress {
			fmt.Fprintln(io.err)
		}
		if werr := m.WriteTable(io.err); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return fmt.Errorf("json records %s: %w", o.json, err)
		}
	}
	if n := m.Failed(); n > 0 {
		return fmt.Errorf("%d of the codec runs failed (see the table)", n)
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

// startCPUProfile profiles the process into path until the returned stop
// runs (which also closes the file).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
