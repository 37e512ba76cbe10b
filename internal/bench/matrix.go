package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/zarr"
)

// CodecChoice is one codec with its blosc filter (Shuffle is ignored, and
// left zero, for codecs that are not blosc).
type CodecChoice struct {
	Codec   zarr.Codec
	Shuffle zarr.Shuffle
}

// String is the form ParseCodecs takes: "zstd", "lz4:bit".
func (c CodecChoice) String() string {
	if !c.Codec.Blosc() {
		return c.Codec.String()
	}
	return c.Codec.String() + ":" + zarr.ShuffleName(c.Shuffle)
}

// AllCodecs is every codec the writer has, each blosc codec once per
// shuffle filter: the loop runs over zarr.Codecs and blosc.Shuffles, so a
// new codec or filter shows up here by itself.
func AllCodecs() []CodecChoice {
	var out []CodecChoice
	for _, c := range zarr.Codecs {
		if !c.Blosc() {
			out = append(out, CodecChoice{Codec: c})
			continue
		}
		for _, s := range blosc.Shuffles {
			out = append(out, CodecChoice{Codec: c, Shuffle: s})
		}
	}
	return out
}

// ParseCodecs reads a --codecs value: "all", or a comma list of CODEC or
// CODEC:SHUFFLE (zstd,lz4:bit,blosc-zstd:byte). A blosc codec without a
// shuffle gets the byte shuffle; a shuffle on a codec that has none is an
// error, and so is a choice listed twice.
func ParseCodecs(s string) ([]CodecChoice, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return AllCodecs(), nil
	}
	var out []CodecChoice
	seen := map[CodecChoice]bool{}
	for _, item := range strings.Split(s, ",") {
		name, filter, hasFilter := strings.Cut(strings.TrimSpace(item), ":")
		c, err := zarr.ParseCodec(name)
		if err != nil {
			return nil, err
		}
		ch := CodecChoice{Codec: c}
		if hasFilter {
			if !c.Blosc() {
				return nil, fmt.Errorf("%q: codec %s has no shuffle filter (shuffles apply to the blosc codecs)", item, c)
			}
			if ch.Shuffle, err = zarr.ParseShuffle(filter); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
		}
		if seen[ch] {
			return nil, fmt.Errorf("%q: %s is listed twice", item, ch)
		}
		seen[ch] = true
		out = append(out, ch)
	}
	return out, nil
}

// MatrixBackends is the backends a codec matrix measures for the --backend
// choice kind: both for auto (the GPU only where one is present; note says
// why it is left out), otherwise the one asked for.
func MatrixBackends(kind backend.Kind) (names []string, note string) {
	switch kind {
	case backend.CPU:
		return []string{"cpu"}, ""
	case backend.GPU:
		return []string{"gpu"}, ""
	}
	if err := gpu.Available(); err != nil {
		return []string{"cpu"}, "gpu: not measured, " + err.Error()
	}
	return []string{"cpu", "gpu"}, ""
}

// MatrixCell is one codec on one backend: a run's report, or why the
// backend cannot run the codec (Skip), or the run's failure (Err).
type MatrixCell struct {
	Backend string
	Report  *Report
	Skip    string
	Err     error
}

// MatrixRow is one codec choice across the backends.
type MatrixRow struct {
	Choice CodecChoice
	Cells  []MatrixCell
}

// Matrix is a codec comparison: the same scenario (or input) written with
// every codec choice on every backend, to pick a codec for one's data.
type Matrix struct {
	Base     Options // the run every cell varies
	Backends []string
	Note     string // backends left out, and why
	Rows     []MatrixRow
}

// Failed is the number of cells whose run failed (not skipped).
func (m *Matrix) Failed() int {
	n := 0
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			if c.Err != nil {
				n++
			}
		}
	}
	return n
}

// skipReason is the short reason a backend cannot run a codec choice, or
// "" when err is not about that (a real failure).
func skipReason(err error) string {
	var ue *backend.UnavailableError
	switch {
	case errors.Is(err, gpu.ErrNoKernels):
		return "no GPU kernels"
	case errors.Is(err, gpu.ErrNoGPU):
		return "no GPU"
	case errors.As(err, &ue):
		return "backend unavailable"
	}
	return ""
}

// gpuSkip is why the GPU backend cannot run choice c, asked before a run
// (backend.Open's UnavailableError keeps only the text of the reason).
func gpuSkip(c CodecChoice) string {
	if err := gpu.Supports(c.Codec); err != nil {
		return skipReason(err)
	}
	return ""
}

// RunMatrix runs base once per codec choice and backend. A backend that
// lacks a codec gets a cell saying why, and a run that fails gets its
// error in the cell; neither stops the others. each, when set, sees every
// report as soon as its run ends (the CLI writes its JSON record then).
// Only a cancelled context ends the matrix early.
func RunMatrix(ctx context.Context, base Options, choices []CodecChoice, backends []string, each func(*Report) error) (*Matrix, error) {
	m := &Matrix{Base: base, Backends: backends}
	for _, ch := range choices {
		row := MatrixRow{Choice: ch}
		for _, be := range backends {
			cell := MatrixCell{Backend: be}
			if be == "gpu" {
				cell.Skip = gpuSkip(ch)
			}
			if cell.Skip == "" {
				o := base
				o.Codec, o.Shuffle, o.Backend = ch.Codec, ch.Shuffle, be
				if ch.Codec == zarr.CodecNone {
					o.Level = 0
				}
				r, err := Run(ctx, o)
				switch {
				case ctx.Err() != nil:
					return m, ctx.Err()
				case err != nil:
					if cell.Skip = skipReason(err); cell.Skip == "" {
						cell.Err = err
					}
				default:
					cell.Report = r
					if each != nil {
						if err := each(r); err != nil {
							return m, err
						}
					}
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		m.Rows = append(m.Rows, row)
	}
	return m, nil
}

// WriteTable writes the comparison: one line per codec choice with, per
// backend, the compression ratio and the end-to-end input GB/s.
func (m *Matrix) WriteTable(w io.Writer) error {
	var b strings.Builder
	o := &m.Base
	data := "fill " + o.Fill.String()
	switch {
	case o.Input != "":
		data = "input " + o.Input + "; " + InputNote
	case o.Prefill:
		data += ", prefill"
	}
	var first *Report
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			if first == nil && c.Report != nil {
				first = c.Report
			}
		}
	}
	fmt.Fprintf(&b, "zwrite bench --codecs  %s  %s  %s\n", o.Scenario.Name, o.DType, data)
	if first != nil {
		s, mc := &first.Scenario, &first.Machine
		fmt.Fprintf(&b, "  shape %s  chunk %s  shard %s  (%s per run)\n", fmtShape(s.Shape), fmtShape(s.Chunk), fmtShape(s.Shard), humanBytes(first.Result.InputBytes))
		fmt.Fprintf(&b, "  machine %s, %d cores\n", mc.CPUModel, mc.Cores)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  codec\tshuffle\tlevel")
	for _, be := range m.Backends {
		fmt.Fprintf(tw, "\t%s ratio\t%s GB/s", be, be)
	}
	fmt.Fprintln(tw, "\t")
	for _, r := range m.Rows {
		shuffle := "-"
		if r.Choice.Codec.Blosc() {
			shuffle = zarr.ShuffleName(r.Choice.Shuffle)
		}
		level := "-"
		if r.Choice.Codec != zarr.CodecNone {
			level = fmt.Sprint(o.Level)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s", r.Choice.Codec, shuffle, level)
		for _, c := range r.Cells {
			switch {
			case c.Report != nil:
				fmt.Fprintf(tw, "\t%.3f\t%.3f", c.Report.Result.Ratio, c.Report.Result.InputGBps)
			case c.Skip != "":
				fmt.Fprintf(tw, "\t%s\t", c.Skip)
			default:
				fmt.Fprintf(tw, "\tfailed\t")
			}
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	if m.Note != "" {
		fmt.Fprintf(&b, "  %s\n", m.Note)
	}
	for _, r := range m.Rows {
		for _, c := range r.Cells {
			if c.Err != nil {
				fmt.Fprintf(&b, "  %s on %s failed: %v\n", r.Choice, c.Backend, c.Err)
			}
		}
	}
	b.WriteString("  GB/s: input bytes over the run's wall time, end to end; ratio: input / output bytes\n")
	_, err := io.WriteString(w, b.String())
	return err
}
