package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCatCmd(io stdio, wrap runWrapper) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
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
			return runCat(cmd.Context(), args[0], endpoint, io.out)
		}),
	}
	addS3EndpointFlag(cmd.Flags(), &endpoint)
	return cmd
}

func runCat(ctx context.Context, store, endpoint string, out io.Writer) error {
	a, err := openStore(store, endpoint)
	if err != nil {
		return err
	}
	defer a.Close()
	// One epoch comes per ReadAll write; a large buffer keeps the pipe's
	// writes big when epochs are small.
	bw := bufio.NewWriterSize(out, 1<<20)
	return interruptible(ctx, func() error {
		if err := a.ReadAll(bw); err != nil {
			return fmt.Errorf("cat %s: %w", store, err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("cat %s: write stdout: %w", store, err)
		}
		return nil
	})
}
