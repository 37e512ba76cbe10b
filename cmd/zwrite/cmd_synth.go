package main

import (
	"context"
	"fmt"
	"io"
	"math/bits"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/bench"
	"github.com/zwrite/zwrite/internal/zarr"
)

// synthOptions are the flags of zwrite synth.
type synthOptions struct {
	shape  string
	dtype  string
	frames int64
	fill   string

	// Set by validate.
	spec zarr.Spec
	kind bench.Fill
}

func (o *synthOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.shape, "shape", "", "array shape, slowest dimension first; dim 0 is the frame count unless --frames is given (required)")
	f.StringVar(&o.dtype, "dtype", "uint16", "element type: uint8..uint64, int8..int64, float32, float64 (short forms u16, f32)")
	f.Int64Var(&o.frames, "frames", 0, "frames to write (default: dim 0 of --shape)")
	f.StringVar(&o.fill, "fill", "xor", "data pattern: xor, zeros, rand (12-bit noise), thirds (noise, gradient, zeros) or camera (shot noise on drifting blobs, like a sensor)")
}

func (o *synthOptions) validate(f *pflag.FlagSet) error {
	if !f.Changed("shape") {
		return usagef("--shape is required")
	}
	shape, err := parseDims("shape", o.shape)
	if err != nil {
		return err
	}
	if len(shape) > zarr.MaxRank {
		return usagef("--shape %q has %d dimensions; at most %d are supported", o.shape, len(shape), zarr.MaxRank)
	}
	for d := 1; d < len(shape); d++ {
		if shape[d] == 0 {
			return usagef("--shape %q: dimension %d is 0; only dimension 0 may be 0", o.shape, d)
		}
	}
	if f.Changed("frames") {
		if o.frames < 0 {
			return usagef("--frames %d: want 0 or more", o.frames)
		}
		shape[0] = o.frames
	}
	dt, err := zarr.ParseDType(o.dtype)
	if err != nil {
		return &usageError{fmt.Errorf("--dtype: %w", err)}
	}
	if o.kind, err = bench.ParseFill(o.fill); err != nil {
		return &usageError{fmt.Errorf("--fill: %w", err)}
	}
	// synth holds at least one frame in memory.
	fb := int64(dt.Size())
	for _, d := range shape[1:] {
		hi, lo := bits.Mul64(uint64(fb), uint64(d))
		if hi != 0 || lo > maxSynthFrame {
			return usagef("--shape %q: one frame would exceed 1 GiB, more than synth makes", o.shape)
		}
		fb = int64(lo)
	}
	o.spec = zarr.Spec{Shape: shape, DType: dt}
	return nil
}

func newSynthCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &synthOptions{}
	cmd := &cobra.Command{
		Use:   "synth --shape S [--dtype T] [--frames N] [--fill F] > FILE",
		Short: "Write synthetic raw frames to stdout (for demos and tests)",
		Long: `synth writes raw frames (C order, little endian) of a synthetic pattern to
stdout, the input append expects. The patterns are the benchmark's fills: a
pure function of each element's position, so the same flags always give the
same bytes.

camera looks like a scientific camera's frames and compresses like them
(about 2x with zstd level 1): Poisson shot noise on a smooth scene of a few
dozen blurred blobs that drift slowly from frame to frame, plus a dark
offset of 100. Axes of at most 4 elements are channels (each shows its own
scene), the others space. 16-bit and wider integers hold 12-bit counts
(0..4095), float32/float64 the same counts as float values; uint8 is an
8-bit camera (scene, offset and range scaled by 1/16: 0..255) and int8
likewise by 1/32 (0..127), so the noise stays Poisson (variance = mean).`,
		Example: `  zwrite synth --shape 100,512,512 --dtype u16 --fill thirds > frames.raw
  zwrite synth --shape 64,2,2048,2304 --dtype u16 --fill camera > orca.raw
  zwrite synth --shape 0,512,512 --frames 1000 | zwrite append -o s.zarr --shape 0,512,512 --dtype u16 --chunk 8,128,128`,
		Args: noArgs,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd.Flags()); err != nil {
				return err
			}
			if isTerminal(io.out) {
				return usagef("stdout is a terminal; redirect it to a file or a pipe")
			}
			return runSynth(cmd.Context(), o, io.out)
		}),
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// maxSynthFrame bounds the frame size synth accepts: it fills whole
// frames in one buffer.
const maxSynthFrame = 1 << 30

// synthBatch is the most bytes filled per write to stdout.
const synthBatch = 4 << 20

func runSynth(ctx context.Context, o *synthOptions, w io.Writer) error {
	fb := o.spec.FrameBytes()
	per := max(synthBatch/fb, 1)
	buf := make([]byte, per*fb)
	for f := int64(0); f < o.spec.Shape[0]; f += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(per, o.spec.Shape[0]-f)
		b := buf[:n*fb]
		if err := bench.FillFrames(o.kind, &o.spec, f, b); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write frames %d..%d: %w", f, f+n-1, err)
		}
	}
	return nil
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
