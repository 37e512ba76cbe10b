package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/zarr"
)

func newInfoCmd(io stdio, wrap runWrapper) *cobra.Command {
	return &cobra.Command{
		Use:   "info STORE",
		Short: "Print a store's shape, dtype, chunk, shard, codec, bytes on disk and ratio",
		Long: `info reads zarr.json and sums the sizes of the store's files (without
reading them): shape, dtype, inner chunk and shard shapes, codec, bytes on
disk and the compression ratio.`,
		Example: `  zwrite info s.zarr`,
		Args:    storeArg,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			return runInfo(cmd.Context(), args[0], io.out)
		}),
	}
}

func runInfo(ctx context.Context, store string, out io.Writer) error {
	a, err := openStore(store)
	if err != nil {
		return err
	}
	defer a.Close()
	var r zarr.Report
	err = interruptible(ctx, func() error {
		var err error
		r, err = a.Usage()
		return err
	})
	if err != nil {
		return fmt.Errorf("info %s: %w", store, err)
	}
	m := a.Meta
	s := &m.Spec
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "store\t%s\n", store)
	shape := formatDims(s.Shape)
	if len(s.DimNames) > 0 {
		shape += "  (" + strings.Join(s.DimNames, ",") + ")"
	}
	fmt.Fprintf(tw, "shape\t%s\n", shape)
	fmt.Fprintf(tw, "dtype\t%s\n", s.DType)
	if m.Sharded {
		fmt.Fprintf(tw, "chunk\t%s  (%s raw)\n", formatDims(s.Chunk), humanBytes(s.ChunkBytes()))
		fmt.Fprintf(tw, "shard\t%s  (%d chunks per shard)\n", formatDims(s.Shard), s.ChunksPerShard())
	} else {
		fmt.Fprintf(tw, "chunk\t%s  (%s raw; not sharded)\n", formatDims(s.Chunk), humanBytes(s.ChunkBytes()))
	}
	fmt.Fprintf(tw, "codec\t%s\n", codecString(m))
	fmt.Fprintf(tw, "frames\t%d  (%s each)\n", s.Shape[0], humanBytes(s.FrameBytes()))
	fmt.Fprintf(tw, "raw\t%s\n", humanBytes(r.BytesRaw))
	fmt.Fprintf(tw, "on disk\t%s in %d shard files\n", humanBytes(r.BytesStored), r.Shards)
	fmt.Fprintf(tw, "ratio\t%s\n", ratioString(r.Ratio))
	if len(r.Stray) > 0 {
		fmt.Fprintf(tw, "stray\t%d files that are not part of the array (readers ignore them)\n", len(r.Stray))
	}
	return tw.Flush()
}

// codecString describes the compressor as zarr.json configures it.
func codecString(m *zarr.Meta) string {
	s := &m.Spec
	switch s.Codec {
	case zarr.CodecZstd:
		v := fmt.Sprintf("zstd level %d", s.Level)
		if m.ZstdChecksum {
			v += ", checksum"
		}
		return v
	case zarr.CodecLZ4:
		return fmt.Sprintf("lz4 (blosc %s, clevel %d, %s, typesize %d)", m.BloscCName, s.Level, m.BloscShuffle, m.BloscTypeSize)
	case zarr.CodecNone:
		return "none"
	}
	return s.Codec.String()
}
