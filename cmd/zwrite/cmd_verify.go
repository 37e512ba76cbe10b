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
	raw string
}

func (o *verifyOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.raw, "raw", "", "raw input FILE (or - for stdin) the array must equal, byte for byte")
}

func newVerifyCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify STORE [--raw FILE]",
		Short: "Check a store: metadata, every shard index checksum, every chunk decodes",
		Long: `verify reads a whole store: it parses zarr.json, checks every shard's index
(length, crc32c, entries inside the file), decodes every chunk to its exact
size, and with --raw compares the array with the raw input byte for byte.
It prints frames, bytes and ratio, and exits 1 listing what is wrong.
Only regular files inside the store are read: a named pipe, a device or
a symbolic link that leads out of the store is reported, never opened.`,
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
	a, err := openStore(store)
	if err != nil {
		return err
	}
	defer a.Close()
	// On this goroutine: VerifyContext stops at the next file or chunk once
	// ctx is done, so the deferred Close never runs under a read.
	r, err := a.VerifyContext(ctx, opts)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	for _, s := range r.Stray {
		fmt.Fprintf(io.err, "warning: %s: %s is not part of the array (readers ignore it)\n", store, s)
	}
	if n := len(r.Beyond); n > 0 {
		fmt.Fprintf(io.err, "warning: %s: %d shard files (%s) lie in shard rows past shape[0] = %d: a writer stopped after committing them but before naming them in zarr.json; readers ignore them, and `zwrite append --resume` rewrites them\n",
			store, n, humanBytes(r.BytesBeyond), r.Frames)
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
