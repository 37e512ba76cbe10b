package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/zarr"
)

// appendOptions are the flags of zwrite append. validate turns them into a
// zarr.Spec and the writer's settings, or a usage error naming the flag.
type appendOptions struct {
	output     string
	shape      string
	dtype      string
	chunk      string
	shard      string
	codec      string
	level      int
	shuffle    string
	dims       string
	overwrite  bool
	breakLock  bool
	progress   bool
	backend    string
	depth      int
	maxPending string
	verbose    bool
	fsync      bool
	readSize   string
	flush      time.Duration
	ioWorkers  int
	readers    int
	s3Endpoint string

	img imageOptions
	rs  resumeOptions

	// Set by validate.
	spec            zarr.Spec
	backendKind     backend.Kind
	maxPendingBytes int64
	readBytes       int
}

// defaultReadSize is the largest piece read from a pipe at once: the
// largest pipe buffer an unprivileged process may ask for (Linux's
// default pipe-max-size), so one read can drain a full pipe.
const defaultReadSize = 1 << 20

func (o *appendOptions) addFlags(f *pflag.FlagSet, io stdio) {
	f.StringVarP(&o.output, "output", "o", "", "store to write: a directory, or s3://BUCKET/PREFIX (required)")
	f.StringVar(&o.shape, "shape", "", "array shape, slowest dimension first, e.g. 0,2048,2304; dim 0 may be 0 = grows with the input (required)")
	f.StringVar(&o.dtype, "dtype", "", "element type: uint8..uint64, int8..int64, float32, float64 (short forms u16, f32) (required)")
	f.StringVar(&o.chunk, "chunk", "", "inner chunk shape, elements per dimension (required)")
	f.StringVar(&o.shard, "shard", "", "shard shape, a multiple of --chunk in every dimension (default: the chunk shape)")
	f.StringVar(&o.codec, "codec", "zstd", "compressor: none, zstd, lz4 or blosc-zstd (lz4 and blosc-zstd are stored as blosc with cname lz4 or zstd, after --shuffle)")
	f.IntVar(&o.level, "level", 0, "compression level (default: 1; zstd -7..22, lz4 and blosc-zstd 0..9)")
	f.StringVar(&o.shuffle, "shuffle", "byte", shuffleUsage)
	f.StringVar(&o.dims, "dims", "", "dimension names, e.g. t,z,y,x (recorded as dimension_names)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace an existing Zarr store at --output (a folder or s3:// prefix holding anything that is not Zarr's is refused). A directory store is written beside the old one, which it replaces only when the run succeeds; on s3:// (no rename) the old store's objects are removed when the run starts writing, so a run that fails after that leaves its own partial store, not the old one")
	f.BoolVar(&o.breakLock, "break-lock", false, "take over a store lock left by a writer on another host (only when no zwrite writes the store there)")
	f.BoolVar(&o.progress, "progress", isTerminal(io.err), "show a progress bar on stderr (default: on when stderr is a terminal)")
	f.StringVar(&o.backend, "backend", "auto", "compress backend: auto, cpu or gpu")
	f.IntVar(&o.depth, "depth", 0, "batches in flight (default: chosen by the writer)")
	f.IntVar(&o.readers, "readers", 0, "positioned reads at once from each input file (default: chosen by the writer)")
	f.IntVar(&o.ioWorkers, "io-workers", 0, "shard files written at once, each file's bytes in order (default: chosen by the writer)")
	f.StringVar(&o.maxPending, "max-pending", "", "most bytes queued for the sink before input waits, e.g. 4GiB (default: chosen by the writer)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print the writer's per-stage statistics at the end")
	f.BoolVar(&o.fsync, "fsync", false, "fsync every shard and directory before it counts as written")
	f.DurationVar(&o.flush, "flush-interval", pipeline.DefaultFlushInterval, "on a slow stream, compress and commit whatever whole epochs have waited this long, so shard rows are committed as they fill (0: only when a batch is full)")
	o.img.addFlags(f)
	o.rs.addFlags(f)
	addS3EndpointFlag(f, &o.s3Endpoint)
	// Tests feed the writer in uneven pieces through this; users need not.
	f.StringVar(&o.readSize, "read-size", "", "bytes read from the input per write to the writer")
	_ = f.MarkHidden("read-size")
}

// validate checks every flag and builds o.spec. f tells which flags were
// set. Every error is a usage error that names the flag.
func (o *appendOptions) validate(f *pflag.FlagSet) error {
	if o.output == "" {
		return usagef("--output (-o) is required: the store directory to write")
	}
	if o.s3Endpoint != "" && !isURL(o.output) {
		return usagef("--s3-endpoint is for s3:// outputs; -o %s is a directory", o.output)
	}
	if o.rs.resume {
		return o.validateResume(f)
	}
	if o.rs.skip == "auto" {
		return usagef("--skip auto skips as many frames as the store holds: it needs --resume (or give --skip N)")
	}
	for _, name := range []string{"shape", "dtype", "chunk"} {
		if !f.Changed(name) {
			return usagef("--%s is required", name)
		}
	}
	s := zarr.Spec{}
	var err error
	if s.Shape, err = parseDims("shape", o.shape); err != nil {
		return err
	}
	if len(s.Shape) > zarr.MaxRank {
		return usagef("--shape %q has %d dimensions; at most %d are supported", o.shape, len(s.Shape), zarr.MaxRank)
	}
	for d := 1; d < len(s.Shape); d++ {
		if s.Shape[d] == 0 {
			return usagef("--shape %q: dimension %d is 0; only dimension 0 may be 0 (= grows with the input)", o.shape, d)
		}
	}
	if s.DType, err = zarr.ParseDType(o.dtype); err != nil {
		return &usageError{fmt.Errorf("--dtype: %w", err)}
	}
	if s.Chunk, err = parseDims("chunk", o.chunk); err != nil {
		return err
	}
	if len(s.Chunk) != len(s.Shape) {
		return usagef("--chunk %q has %d dimensions but --shape %q has %d", o.chunk, len(s.Chunk), o.shape, len(s.Shape))
	}
	for d, c := range s.Chunk {
		if c == 0 {
			return usagef("--chunk %q: dimension %d is 0; every chunk dimension must be > 0", o.chunk, d)
		}
		if s.Shape[d] > 0 && c > s.Shape[d] {
			return usagef("--chunk %q: chunk[%d] = %d is larger than shape[%d] = %d; make the chunk at most the shape", o.chunk, d, c, d, s.Shape[d])
		}
	}
	if o.shard == "" {
		s.Shard = append([]int64(nil), s.Chunk...)
	} else {
		if s.Shard, err = parseDims("shard", o.shard); err != nil {
			return err
		}
		if len(s.Shard) != len(s.Shape) {
			return usagef("--shard %q has %d dimensions but --shape %q has %d", o.shard, len(s.Shard), o.shape, len(s.Shape))
		}
		for d := range s.Shard {
			if s.Shard[d] == 0 || s.Shard[d]%s.Chunk[d] != 0 {
				return usagef("--shard %q: shard[%d] = %d is not a positive multiple of chunk[%d] = %d", o.shard, d, s.Shard[d], d, s.Chunk[d])
			}
		}
	}
	if s.Codec, err = zarr.ParseCodec(o.codec); err != nil {
		return &usageError{fmt.Errorf("--codec: %w", err)}
	}
	s.Level = s.Codec.DefaultLevel()
	if f.Changed("level") {
		if s.Codec == zarr.CodecNone {
			return usagef("--level %d given with --codec none, which has no level", o.level)
		}
		s.Level = o.level
	}
	if s.Shuffle, err = parseShuffleFlag(f, o.shuffle, s.Codec); err != nil {
		return err
	}
	if f.Changed("dims") {
		if s.DimNames, err = parseNames("dims", o.dims); err != nil {
			return err
		}
		if len(s.DimNames) != len(s.Shape) {
			return usagef("--dims %q names %d dimensions but --shape %q has %d", o.dims, len(s.DimNames), o.shape, len(s.Shape))
		}
	}
	// The checks above name the flag; the rest (sizes that overflow or
	// could never be held, found by FuzzAppendFlags) are the spec's own
	// rules, shared with every other writer of a Spec.
	if err := s.Validate(); err != nil {
		return &usageError{fmt.Errorf("array: %w", err)}
	}
	o.spec = s
	if err := o.img.validate(f, &o.spec); err != nil {
		return err
	}
	if o.rs.skip != "" {
		if n, err := strconv.ParseInt(o.rs.skip, 10, 64); err != nil || n < 0 {
			return usagef("--skip %q: want a number of frames (or auto, with --resume)", o.rs.skip)
		} else {
			o.rs.skipFrames = n
		}
	}
	return o.validateWriter(f)
}

// validateWriter checks the flags of the writer and the input (not of the
// array).
func (o *appendOptions) validateWriter(f *pflag.FlagSet) error {
	var err error
	if o.backendKind, err = backend.Parse(o.backend); err != nil {
		return &usageError{fmt.Errorf("--backend: %w", err)}
	}
	if o.depth < 0 || o.depth > pipeline.MaxDepth {
		return usagef("--depth %d: want 1 to %d (or leave it out for the default, 3)", o.depth, pipeline.MaxDepth)
	}
	if o.readers < 0 || o.readers > 256 {
		return usagef("--readers %d: want 1 to 256 (or leave it out for the default)", o.readers)
	}
	if o.ioWorkers < 0 || o.ioWorkers > pipeline.MaxIOWorkers {
		return usagef("--io-workers %d: want 1 to %d (or leave it out for the default)", o.ioWorkers, pipeline.MaxIOWorkers)
	}
	if f.Changed("max-pending") {
		if o.maxPendingBytes, err = parseSize("max-pending", o.maxPending); err != nil {
			return err
		}
		if o.maxPendingBytes == 0 {
			return usagef("--max-pending 0: want a positive size such as 4GiB (or leave it out for the default)")
		}
	}
	if o.flush < 0 {
		return usagef("--flush-interval %v: want 0 (off) or a positive duration such as 1s", o.flush)
	}
	o.readBytes = defaultReadSize
	if f.Changed("read-size") {
		n, err := parseSize("read-size", o.readSize)
		if err != nil {
			return err
		}
		if n < 1 || n > 1<<30 {
			return usagef("--read-size %q: want 1 byte to 1 GiB", o.readSize)
		}
		o.readBytes = int(n)
	}
	return nil
}

// validateResume checks the flags of a --resume run: the array flags are
// optional (resumePlan takes the rest from the store and compares), the
// writer flags as always.
func (o *appendOptions) validateResume(f *pflag.FlagSet) error {
	if o.overwrite {
		return usagef("--resume continues a store and --overwrite replaces one: give one of them")
	}
	var err error
	if f.Changed("shape") {
		if o.spec.Shape, err = parseDims("shape", o.shape); err != nil {
			return err
		}
	}
	if f.Changed("dtype") {
		if o.spec.DType, err = zarr.ParseDType(o.dtype); err != nil {
			return &usageError{fmt.Errorf("--dtype: %w", err)}
		}
	}
	if f.Changed("chunk") {
		if o.spec.Chunk, err = parseDims("chunk", o.chunk); err != nil {
			return err
		}
	}
	if f.Changed("shard") {
		if o.spec.Shard, err = parseDims("shard", o.shard); err != nil {
			return err
		}
	}
	if f.Changed("codec") {
		if o.spec.Codec, err = zarr.ParseCodec(o.codec); err != nil {
			return &usageError{fmt.Errorf("--codec: %w", err)}
		}
	}
	o.spec.Level = o.level
	if f.Changed("dims") {
		if o.spec.DimNames, err = parseNames("dims", o.dims); err != nil {
			return err
		}
	}
	if o.img.arrayPath != "" {
		if err := checkNodePath(o.img.arrayPath); err != nil {
			return err
		}
	}
	return o.validateWriter(f)
}

func newAppendCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &appendOptions{}
	cmd := &cobra.Command{
		Use:   "append [FILE...] -o STORE --shape S --dtype T --chunk C",
		Short: "Write raw frames from files or stdin into a new sharded Zarr v3 store",
		Long: `append reads raw frames (C order, little endian) from the files in order, or
from stdin when no file or "-" is given, and writes them to a new Zarr v3
store with sharding. A frame is one index of dimension 0; with --shape 0,...
dimension 0 grows with the input. Input that ends mid-frame keeps every whole
frame and reports the rest.

-o s3://BUCKET/PREFIX writes the store to S3 or an S3-compatible server; the
bucket must exist. Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
(and AWS_SESSION_TOKEN), else the profile AWS_PROFILE names (else
AWS_DEFAULT_PROFILE, else "default") in ~/.aws/credentials, then in
~/.aws/config (AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE name other
files); static keys only: a profile that needs SSO, role_arn or
credential_process is refused. Region: AWS_REGION, AWS_DEFAULT_REGION, the
profile's region, else us-east-1. Endpoint: --s3-endpoint,
AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url, else
AWS's own for the region.`,
		Example: `  zwrite append -o movie.zarr --shape 0,2048,2304 --dtype u16 \
      --chunk 32,64,64 --shard 640,512,576 --codec lz4 frames.raw
  camera-dump | zwrite append -o live.zarr --shape 0,512,512 --dtype u16 --chunk 8,128,128
  AWS_PROFILE=lab zwrite append -o s3://lab-data/run1.zarr --s3-endpoint http://localhost:7070 \
      --shape 0,2048,2048 --dtype u16 --chunk 8,256,256 --shard 64,2048,2048 frames.raw`,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd.Flags()); err != nil {
				return err
			}
			return runAppend(cmd.Context(), o, args, io, cmd.Flags())
		}),
	}
	o.addFlags(cmd.Flags(), io)
	return cmd
}

// input is one source named on the command line.
type input struct {
	name string // "-" for stdin
	size int64  // -1 when unknown (stdin, pipes)
}

// checkInputs makes sure every input can be read before the store is
// created, so a typo in the last file name leaves nothing on disk.
func checkInputs(args []string) ([]input, error) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	ins := make([]input, 0, len(args))
	stdin := false
	for _, a := range args {
		if a == "-" {
			if stdin {
				return nil, usagef("stdin (-) is named twice")
			}
			stdin = true
			ins = append(ins, input{name: "-", size: -1})
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", a, unwrapPath(err))
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("input %s is a directory; want a file of raw frames", a)
		}
		in := input{name: a, size: -1}
		if fi.Mode().IsRegular() {
			in.size = fi.Size()
		}
		ins = append(ins, in)
	}
	return ins, nil
}

// unwrapPath drops the *PathError's own path and op, which the caller's
// message already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// totalSize is the sum of the inputs' sizes, or -1 when one is unknown.
func totalSize(ins []input) int64 {
	var t int64
	for _, in := range ins {
		if in.size < 0 {
			return -1
		}
		t += in.size
	}
	return t
}

// copyInput copies r into w. The reads run in their own goroutine so that
// an interrupt is seen at once even while a read waits on an idle pipe:
// the caller then aborts the writer and exits, and the blocked read ends
// with the process. Several buffers let the next reads overlap the
// current write.
//
// Each read's bytes go to w as soon as they arrive (a slow stream reaches
// the writer at once, so its flush interval can commit shard rows while
// the pipe is quiet); with exact, pieces are exactly bufSize bytes but
// the last (tests use it to feed the writer in uneven pieces).
func copyInput(ctx context.Context, w io.Writer, r io.Reader, bufSize int, exact bool) (int64, error) {
	type piece struct {
		buf []byte
		n   int
		err error
	}
	const nbuf = 4
	free := make(chan []byte, nbuf)
	full := make(chan piece, nbuf)
	for i := 0; i < nbuf; i++ {
		free <- make([]byte, bufSize)
	}
	done := make(chan struct{})
	defer close(done)

	go func() {
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			var n int
			var err error
			if exact {
				n, err = io.ReadFull(r, buf)
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = io.EOF
				}
			} else {
				for n == 0 && err == nil {
					n, err = r.Read(buf)
				}
			}
			select {
			case full <- piece{buf, n, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var written int64
	for {
		var p piece
		select {
		case p = <-full:
		case <-ctx.Done():
			return written, ctx.Err()
		}
		if p.n > 0 {
			n, err := w.Write(p.buf[:p.n])
			written += int64(n)
			if err != nil {
				return written, err
			}
		}
		if p.err == io.EOF {
			return written, nil
		}
		if p.err != nil {
			return written, &readError{p.err}
		}
		free <- p.buf
	}
}

// shuffleUsage is the --shuffle help of append and bench.
const shuffleUsage = "blosc filter before lz4 or blosc-zstd: byte, bit or none (only with those codecs)"

// parseShuffleFlag turns --shuffle into the spec's filter for codec. The
// default is byte shuffle; naming a filter for a codec without one (zstd,
// none) is a usage error rather than silently ignored.
func parseShuffleFlag(f *pflag.FlagSet, v string, codec zarr.Codec) (zarr.Shuffle, error) {
	sh, err := zarr.ParseShuffle(v)
	if err != nil {
		return 0, &usageError{fmt.Errorf("--shuffle: %w", err)}
	}
	if f.Changed("shuffle") && !codec.Blosc() {
		return 0, usagef("--shuffle %s given with --codec %s, which has no shuffle filter (only lz4 and blosc-zstd take one)", v, codec)
	}
	return sh, nil
}
