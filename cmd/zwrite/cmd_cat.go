package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCatCmd(io stdio, wrap runWrapper) *cobra.Command {
	return &cobra.Command{
		Use:   "cat STORE",
		Short: "Write a store's array to stdout as raw bytes in C order",
		Long: `cat writes the array's elements to stdout, C order, little endian: the same
bytes append was given, so "zwrite cat s.zarr | cmp - input.raw" checks a
round trip. Chunks never written read as the fill value.`,
		Example: `  zwrite cat s.zarr > copy.raw
  zwrite cat s.zarr | cmp - f.raw`,
		Args: storeArg,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if isTerminal(io.out) {
				return usagef("stdout is a terminal; redirect it to a file or a pipe")
			}
			return runCat(cmd.Context(), args[0], io.out)
		}),
	}
}

func runCat(ctx context.Context, store string, out io.Writer) error {
	a, err := openStore(store)
	if err != nil {
		return err
	}
	defer a.Close()
	// One epoch comes per ReadAll write; a large buffer keeps the pipe's
	// writes big when epochs are small. The read runs here, not on a
	// goroutine of its own: it stops at the next chunk once ctx is done, so
	// the deferred Close never runs under a read still going.
	bw := bufio.NewWriterSize(out, 1<<20)
	if err := a.ReadAllContext(ctx, bw); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("cat %s: %w", store, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cat %s: write stdout: %w", store, err)
	}
	return nil
}
