package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/zarr"
)

func newInfoCmd(io stdio, wrap runWrapper) *cobra.Command {
	var gpus bool
	var endpoint string
	cmd := &cobra.Command{
		Use:   "info STORE | info --gpu",
		Short: "Print a store's shape, dtype, chunk, shard, codec, bytes on disk and ratio",
		Long: `info reads zarr.json and sums the sizes of the store's files (without
reading them): shape, dtype, inner chunk and shard shapes, codec, bytes on
disk and the compression ratio.

info --gpu lists this machine's NVIDIA GPUs instead (name, memory, compute
capability, PCIe link, driver and CUDA version) and the codecs the GPU
backend runs; without a GPU or driver it says so and exits 0.`,
		Example: `  zwrite info s.zarr
  zwrite info --gpu`,
		Args: func(cmd *cobra.Command, args []string) error {
			if gpus {
				if len(args) > 0 {
					return usagef("--gpu takes no STORE; got %q", args[0])
				}
				return nil
			}
			return storeArg(cmd, args)
		},
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if gpus {
				return runInfoGPU(io.out)
			}
			return runInfo(cmd.Context(), args[0], endpoint, io.out)
		}),
	}
	cmd.Flags().BoolVar(&gpus, "gpu", false, "list the GPUs instead of describing a store")
	addS3EndpointFlag(cmd.Flags(), &endpoint)
	return cmd
}

// runInfoGPU prints what gpu.Discover finds. No GPU is an answer, not an
// error: the line says why and the exit status is 0.
func runInfoGPU(out io.Writer) error {
	sys, err := gpu.Discover()
	if err != nil {
		fmt.Fprintf(out, "no GPU: %v\n", strings.TrimPrefix(err.Error(), "no GPU: "))
		fmt.Fprintln(out, "the GPU backend is unavailable; --backend auto uses the CPU")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, g := range sys.GPUs {
		fmt.Fprintf(tw, "gpu %d\t%s\n", g.Index, g.Name)
		mem := humanBytes(g.MemoryTotal)
		if g.MemoryFree > 0 {
			mem += fmt.Sprintf("  (%s free)", humanBytes(g.MemoryFree))
		}
		fmt.Fprintf(tw, "  memory\t%s\n", mem)
		if g.ComputeCapability != "" {
			cc := "compute " + g.ComputeCapability
			if g.SMs > 0 {
				cc += fmt.Sprintf(", %d SMs", g.SMs)
			}
			fmt.Fprintf(tw, "  chip\t%s\n", cc)
		}
		if g.PCIeGen > 0 {
			fmt.Fprintf(tw, "  pcie\tgen%d x%d now, gen%d x%d max\n", g.PCIeGen, g.PCIeWidth, g.PCIeMaxGen, g.PCIeMaxWidth)
		}
		if g.PCIBusID != "" {
			fmt.Fprintf(tw, "  bus\t%s\n", g.PCIBusID)
		}
	}
	drv := sys.DriverVersion
	if drv == "" {
		drv = "unknown"
	}
	fmt.Fprintf(tw, "driver\t%s, CUDA %s (from %s)\n", drv, sys.CUDAVersion, sys.Source)
	var codecs []string
	for _, c := range gpu.GPUCodecs() {
		codecs = append(codecs, c.String())
	}
	fmt.Fprintf(tw, "gpu codecs\t%s\n", strings.Join(codecs, ", "))
	return tw.Flush()
}

func runInfo(ctx context.Context, store, endpoint string, out io.Writer) error {
	a, err := openStore(store, endpoint)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := interruptibleValue(ctx, a.Usage)
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
