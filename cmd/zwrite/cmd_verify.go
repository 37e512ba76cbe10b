package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/zarr"
)

// verifyOptions are the flags of zwrite verify.
type verifyOptions struct {
	raw      string
	endpoint string
}

func (o *verifyOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.raw, "raw", "", "raw input FILE (or - for stdin) the array must equal, byte for byte")
	addS3EndpointFlag(f, &o.endpoint)
}

func newVerifyCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify STORE [--raw FILE]",
		Short: "Check a store: metadata, every shard index checksum, every chunk decodes",
		Long: `verify reads a whole store: it parses zarr.json, checks every shard's index
(length, crc32c, entries inside the file), decodes every chunk to its exact
size, and with --raw compares the array with the raw input byte for byte.
It prints frames, bytes and ratio, and exits 1 listing what is wrong.`,
		Example: `  zwrite verify s.zarr
  zwrite verify s.zarr --raw f.raw`,
		Args: storeArg,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), o, args[0], io)
		}),
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func runVerify(ctx context.Context, o *verifyOptions, store string, io stdio) error {
	var opts zarr.VerifyOptions
	if o.raw != "" {
		if o.raw == "-" {
			opts.Raw = bufio.NewReaderSize(io.in, 1<<20)
		} else {
			f, err := os.Open(o.raw)
			if err != nil {
				return fmt.Errorf("--raw %s: %w", o.raw, unwrapPath(err))
			}
			defer f.Close()
			opts.Raw = bufio.NewReaderSize(f, 1<<20)
		}
	}
	a, err := openStore(store, o.endpoint)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := interruptibleValue(ctx, func() (zarr.Report, error) { return a.Verify(opts) })
	if ctx.Err() != nil {
		return err
	}
	for _, s := range r.Stray {
		fmt.Fprintf(io.err, "warning: %s: %s is not part of the array (readers ignore it)\n", store, s)
	}
	if err != nil {
		if len(r.Problems) == 0 {
			return fmt.Errorf("verify %s: %w", store, err)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(io.err, "problem: %s\n", p)
		}
		return fmt.Errorf("%s failed verification: %d problem(s), listed above", store, len(r.Problems))
	}
	fmt.Fprintln(io.out, verifyLine(store, a.Meta, &r, o.raw))
	return nil
}

// verifyLine is verify's one-line result.
func verifyLine(store string, m *zarr.Meta, r *zarr.Report, raw string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ok: %d frames, %s raw, %s stored, ratio %s; %d shards",
		store, r.Frames, humanBytes(r.BytesRaw), humanBytes(r.BytesStored), ratioString(r.Ratio), r.Shards)
	if m.Sharded {
		fmt.Fprintf(&b, ", %d chunks (%d written, %d fill value)", r.Chunks, r.ChunksWritten, r.ChunksEmpty)
	}
	if r.RawCompared {
		fmt.Fprintf(&b, "; equals %s", raw)
	}
	return b.String()
}

func ratioString(r float64) string {
	if r <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}
