package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/zarr"
)

// infoOptions are the flags of zwrite info.
type infoOptions struct {
	endpoint string // --s3-endpoint
	gpu      bool
	array    string
	json     bool
}

func (o *infoOptions) addFlags(f *pflag.FlagSet) {
	addS3EndpointFlag(f, &o.endpoint)
	f.BoolVar(&o.gpu, "gpu", false, "list the GPUs instead of describing a store")
	f.StringVar(&o.array, "array", "", "describe only the node (array, image or group) at this PATH inside the store")
	f.BoolVar(&o.json, "json", false, "print the description as one JSON document (see --help)")
}

func newInfoCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &infoOptions{}
	cmd := &cobra.Command{
		Use:   "info STORE [--array PATH] [--json] | info --gpu",
		Short: "Describe a store: its arrays and images, shapes, dtype, chunk, shard, codec, bytes on disk, ratio",
		Long: `info reads zarr.json and sums the sizes of the store's files (without
reading them): shape, dtype, inner chunk and shard shapes, codec, bytes on
disk and the compression ratio.

For a group store it lists every node below the root (each directory that
holds a zarr.json; symbolic links are not followed): path, kind (array,
group or image), and for arrays the columns above. For an OME-Zarr image
it shows the axes (name, type, unit), the downsampling method and every
level's path, shape, scale and translation. --array PATH describes one
node only.

--json prints the same as one JSON object: {"store": STORE, "nodes":
[...]}, each node with "path" ("." is the store root), "kind" (array,
group, image or invalid, with "error"), for an array "array": {shape,
dtype, dimension_names, chunk, shard, codec, frame_bytes, bytes_raw,
bytes_stored, files, ratio}, for an image "image": {name, axes [{name,
type, unit}], method, reduced_axes, levels [{path, scale, translation,
array}]}. An image's levels appear inside it, not as nodes of their own.

info --gpu lists this machine's NVIDIA GPUs instead (name, memory, compute
capability, PCIe link, driver and CUDA version) and the codecs the GPU
backend runs; without a GPU or driver it says so and exits 0.`,
		Example: `  zwrite info s.zarr
  zwrite info lab.zarr
  zwrite info lab.zarr --array img --json
  zwrite info --gpu`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.gpu {
				if len(args) > 0 {
					return usagef("--gpu takes no STORE; got %q", args[0])
				}
				return nil
			}
			return storeArg(cmd, args)
		},
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if o.gpu {
				if o.array != "" || o.json {
					return usagef("--gpu describes this machine: leave out --array and --json")
				}
				return runInfoGPU(io.out)
			}
			return runInfo(cmd.Context(), o, args[0], io.out)
		}),
	}
	o.addFlags(cmd.Flags())
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
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
		return fmt.Sprintf("%s (blosc %s, clevel %d, %s, typesize %d)", s.Codec, m.BloscCName, s.Level, m.BloscShuffle, m.BloscTypeSize)
	case zarr.CodecNone:
		return "none"
	}
	return s.Codec.String()
}

// The description info prints: the same data for the text and --json.

type infoDoc struct {
	Store string     `json:"store"`
	Nodes []nodeInfo `json:"nodes"`
}

type nodeInfo struct {
	Path  string     `json:"path"`
	Kind  string     `json:"kind"` // array, group, image, or invalid (Error says why)
	Error string     `json:"error,omitempty"`
	Array *arrayInfo `json:"array,omitempty"`
	Image *imageInfo `json:"image,omitempty"`
}

type arrayInfo struct {
	Shape          []int64  `json:"shape"`
	DType          string   `json:"dtype"`
	DimensionNames []string `json:"dimension_names,omitempty"`
	Chunk          []int64  `json:"chunk"`
	Shard          []int64  `json:"shard,omitempty"` // absent when not sharded
	Codec          string   `json:"codec"`
	FrameBytes     int64    `json:"frame_bytes"`
	BytesRaw       int64    `json:"bytes_raw"`
	BytesStored    int64    `json:"bytes_stored"`
	Files          int64    `json:"files"`
	Ratio          float64  `json:"ratio"`
	StrayFiles     int      `json:"stray_files,omitempty"`

	meta *zarr.Meta
}

type imageInfo struct {
	Name string     `json:"name"`
	Axes []axisInfo `json:"axes"`
	// Method is multiscales[0].type; ReducedAxes what zwrite recorded
	// (absent for other writers' images).
	Method      string      `json:"method,omitempty"`
	ReducedAxes []string    `json:"reduced_axes,omitempty"`
	Levels      []levelInfo `json:"levels"`
}

type axisInfo struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	Unit string `json:"unit,omitempty"`
}

type levelInfo struct {
	Path        string     `json:"path"`
	Scale       []float64  `json:"scale"`
	Translation []float64  `json:"translation,omitempty"`
	Array       *arrayInfo `json:"array,omitempty"`
	Error       string     `json:"error,omitempty"`
}

func runInfo(ctx context.Context, o *infoOptions, store string, out io.Writer) error {
	p, err := nodePath(o.array)
	if err != nil {
		return err
	}
	s, err := openStore(store, o.endpoint)
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := s.arrayArg(ctx, p, false)
	if err != nil {
		return err
	}
	doc := infoDoc{Store: store}
	if n.Type == zarr.NodeArray {
		// A single array: its errors are the command's, as they always were.
		ai, err := describeArray(ctx, s, p)
		if err != nil {
			return err
		}
		doc.Nodes = []nodeInfo{{Path: p, Kind: "array", Array: ai}}
		if o.json {
			return writeJSON(out, doc)
		}
		return writeArrayText(out, s, p, ai)
	}
	bad, err := describeNodes(ctx, s, p, &doc)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	if o.json {
		err = writeJSON(out, doc)
	} else if n.Image != nil {
		err = writeImageText(out, s, &doc.Nodes[0])
		if err == nil && len(doc.Nodes) > 1 {
			// Nodes inside the image besides its levels (labels, say).
			fmt.Fprintln(out)
			err = writeGroupText(out, s, p, doc.Nodes, false)
		}
	} else {
		err = writeGroupText(out, s, p, doc.Nodes, true)
	}
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		const most = 10
		more := ""
		if len(bad) > most {
			more = fmt.Sprintf("\n  and %d more", len(bad)-most)
			bad = bad[:most]
		}
		return fmt.Errorf("info %s: %d node(s) could not be read:\n  %s%s", s.name(p), len(bad), strings.Join(bad, "\n  "), more)
	}
	return nil
}

// describeArray reads the array at p and sums its files.
func describeArray(ctx context.Context, s *readStore, p string) (*arrayInfo, error) {
	a, err := s.openArray(p)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	r, err := a.UsageContext(ctx)
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("info %s: %w", s.name(p), err)
	}
	m := a.Meta
	sp := &m.Spec
	ai := &arrayInfo{
		Shape: sp.Shape, DType: sp.DType.String(), DimensionNames: sp.DimNames, Chunk: sp.Chunk,
		Codec: codecString(m), FrameBytes: sp.FrameBytes(), BytesRaw: r.BytesRaw, BytesStored: r.BytesStored,
		Files: r.Shards, Ratio: r.Ratio, StrayFiles: len(r.Stray), meta: m,
	}
	if m.Sharded {
		ai.Shard = sp.Shard
	}
	return ai, nil
}

// describeNodes fills doc with the node at p and every node below it; an
// image's levels go into its entry. It returns the nodes that could not
// be read, each "path: why" (an invalid entry, or a level with an error).
func describeNodes(ctx context.Context, s *readStore, p string, doc *infoDoc) (bad []string, err error) {
	levels := map[string]bool{}
	err = zarr.WalkNodes(ctx, s.fsys, p, func(n *zarr.Node, err error) error {
		var ne *zarr.NodeError
		switch {
		case errors.As(err, &ne):
			bad = append(bad, fmt.Sprintf("%s: %v", s.name(ne.Path), ne.Err))
			doc.Nodes = append(doc.Nodes, nodeInfo{Path: ne.Path, Kind: "invalid", Error: ne.Err.Error()})
			return nil
		case err != nil:
			return err
		case levels[n.Path]:
			return nil
		}
		ni := nodeInfo{Path: n.Path, Kind: n.Kind()}
		switch {
		case n.Image != nil:
			ni.Image = describeImage(ctx, s, n, levels, &bad)
		case n.Type == zarr.NodeArray:
			ai, err := describeArray(ctx, s, n.Path)
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				bad = append(bad, err.Error())
				ni.Kind, ni.Error = "invalid", err.Error()
			}
			ni.Array = ai
		}
		doc.Nodes = append(doc.Nodes, ni)
		return ctx.Err()
	})
	return bad, err
}

// describeImage reads the image n's axes, method and levels; levels
// collects the level paths (the walk then skips them).
func describeImage(ctx context.Context, s *readStore, n *zarr.Node, levels map[string]bool, bad *[]string) *imageInfo {
	ms := &n.Image.Multiscales[0]
	ii := &imageInfo{Name: ms.Name, Method: ms.Type}
	for _, a := range ms.Axes {
		ii.Axes = append(ii.Axes, axisInfo{Name: a.Name, Type: string(a.Type), Unit: a.Unit})
	}
	if dn := ms.Downsampling; dn != nil {
		ii.Method = dn.Method
		for d, r := range dn.Reduce {
			if r {
				ii.ReducedAxes = append(ii.ReducedAxes, ms.Axes[d].Name)
			}
		}
	}
	for _, ds := range ms.Datasets {
		li := levelInfo{Path: ds.Path, Scale: ds.Scale, Translation: ds.Translation}
		lp := path.Join(n.Path, ds.Path)
		switch {
		case !fs.ValidPath(ds.Path) || ds.Path == ".":
			li.Error = "the path is not a directory inside the image"
		default:
			levels[lp] = true
			ai, err := describeArray(ctx, s, lp)
			if err != nil {
				li.Error = err.Error()
			}
			li.Array = ai
		}
		if li.Error != "" {
			*bad = append(*bad, fmt.Sprintf("%s, level %d (path %q): %s", s.name(n.Path), len(ii.Levels), ds.Path, li.Error))
		}
		ii.Levels = append(ii.Levels, li)
	}
	return ii
}

func writeJSON(out io.Writer, doc infoDoc) error {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

// writeArrayText is info's description of one array.
func writeArrayText(out io.Writer, s *readStore, p string, ai *arrayInfo) error {
	m := ai.meta
	sp := &m.Spec
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "store\t%s\n", s.path)
	if p != "." {
		fmt.Fprintf(tw, "array\t%s\n", p)
	}
	shape := formatDims(sp.Shape)
	if len(sp.DimNames) > 0 {
		shape += "  (" + strings.Join(sp.DimNames, ",") + ")"
	}
	fmt.Fprintf(tw, "shape\t%s\n", shape)
	fmt.Fprintf(tw, "dtype\t%s\n", sp.DType)
	if m.Sharded {
		fmt.Fprintf(tw, "chunk\t%s  (%s raw)\n", formatDims(sp.Chunk), humanBytes(sp.ChunkBytes()))
		fmt.Fprintf(tw, "shard\t%s  (%d chunks per shard)\n", formatDims(sp.Shard), sp.ChunksPerShard())
	} else {
		fmt.Fprintf(tw, "chunk\t%s  (%s raw; not sharded)\n", formatDims(sp.Chunk), humanBytes(sp.ChunkBytes()))
	}
	fmt.Fprintf(tw, "codec\t%s\n", ai.Codec)
	fmt.Fprintf(tw, "frames\t%d  (%s each)\n", sp.Shape[0], humanBytes(ai.FrameBytes))
	fmt.Fprintf(tw, "raw\t%s\n", humanBytes(ai.BytesRaw))
	fmt.Fprintf(tw, "on disk\t%s in %d shard files\n", humanBytes(ai.BytesStored), ai.Files)
	fmt.Fprintf(tw, "ratio\t%s\n", ratioString(ai.Ratio))
	if ai.StrayFiles > 0 {
		fmt.Fprintf(tw, "stray\t%d files that are not part of the array (readers ignore them)\n", ai.StrayFiles)
	}
	return tw.Flush()
}

// arrayCells are an array's columns in a listing.
func arrayCells(ai *arrayInfo) string {
	shard := "-"
	if ai.Shard != nil {
		shard = formatDims(ai.Shard)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", formatDims(ai.Shape), ai.DType, formatDims(ai.Chunk), shard,
		ai.Codec, humanBytes(ai.BytesStored), ratioString(ai.Ratio))
}

// writeGroupText is info's listing of the nodes below p: a row per node
// (an image's levels indented below it), then each image's axes and
// scales; with header, the lines naming the store and the group first.
func writeGroupText(out io.Writer, s *readStore, p string, nodes []nodeInfo, header bool) error {
	var arrays, images, groups, invalid int
	for _, n := range nodes[1:] {
		switch n.Kind {
		case "array":
			arrays++
		case "image":
			images++
		case "group":
			groups++
		default:
			invalid++
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintf(tw, "store\t%s\n", s.path)
		if p != "." {
			fmt.Fprintf(tw, "group\t%s\n", p)
		}
	}
	summary := fmt.Sprintf("%s, %s, %s", plural(arrays, "array"), plural(images, "image"), plural(groups, "group"))
	if invalid > 0 {
		summary += fmt.Sprintf(", %d unreadable", invalid)
	}
	fmt.Fprintf(tw, "nodes\t%s below it\n", summary)
	fmt.Fprintln(tw)
	// Every row has every cell, so that the columns stay one block.
	const empty = "\t\t\t\t\t\t"
	fmt.Fprintln(tw, "PATH\tKIND\tSHAPE\tDTYPE\tCHUNK\tSHARD\tCODEC\tON DISK\tRATIO")
	for _, n := range nodes {
		if n.Path == p {
			continue
		}
		switch {
		case n.Array != nil:
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Path, n.Kind, arrayCells(n.Array))
		case n.Image != nil:
			fmt.Fprintf(tw, "%s\timage\t%s\n", n.Path, imageCells(n.Image))
			for k, lv := range n.Image.Levels {
				lp := path.Join(n.Path, lv.Path)
				if lv.Array != nil {
					fmt.Fprintf(tw, "  %s\tlevel %d\t%s\n", lp, k, arrayCells(lv.Array))
				} else {
					fmt.Fprintf(tw, "  %s\tlevel %d\tunreadable%s\n", lp, k, empty)
				}
			}
		case n.Kind == "invalid":
			fmt.Fprintf(tw, "%s\tinvalid\tunreadable%s\n", n.Path, empty)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", n.Path, n.Kind, empty)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Image != nil && n.Path != p {
			fmt.Fprintln(out)
			if err := writeImageBlock(out, s.name(n.Path), n.Image, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// imageCells are an image's columns in a listing: level 0's array, with
// the bytes on disk of every level and the ratio of level 0's raw bytes
// to them (what append reports for an image).
func imageCells(ii *imageInfo) string {
	var stored int64
	for _, lv := range ii.Levels {
		if lv.Array != nil {
			stored += lv.Array.BytesStored
		}
	}
	if len(ii.Levels) == 0 || ii.Levels[0].Array == nil {
		return fmt.Sprintf("\t\t\t\t\t%s\t", humanBytes(stored))
	}
	l0 := *ii.Levels[0].Array
	l0.BytesStored, l0.Ratio = stored, 0
	if stored > 0 {
		l0.Ratio = float64(l0.BytesRaw) / float64(stored)
	}
	return arrayCells(&l0)
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// methodString says how the levels were made: "mean along y,x".
func methodString(ii *imageInfo) string {
	m := ii.Method
	if len(ii.ReducedAxes) > 0 {
		m += " along " + strings.Join(ii.ReducedAxes, ",")
	}
	return m
}

// writeImageText is info's description of one image.
func writeImageText(out io.Writer, s *readStore, n *nodeInfo) error {
	return writeImageBlock(out, s.name(n.Path), n.Image, s.path)
}

// writeImageBlock shows an image's name, method, axes and levels; with
// store set (one image described), a line naming the store first and
// each level's array columns too.
func writeImageBlock(out io.Writer, name string, ii *imageInfo, store string) error {
	arrays := store != ""
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if arrays {
		fmt.Fprintf(tw, "store\t%s\n", store)
	}
	fmt.Fprintf(tw, "image\t%s: OME-Zarr 0.5, name %q, %d levels\n", name, ii.Name, len(ii.Levels))
	if m := methodString(ii); m != "" {
		fmt.Fprintf(tw, "method\t%s\n", m)
	}
	var axes []string
	for _, a := range ii.Axes {
		var what []string
		if a.Type != "" {
			what = append(what, a.Type)
		}
		if a.Unit != "" {
			what = append(what, a.Unit)
		}
		if len(what) == 0 {
			what = []string{"no type"}
		}
		axes = append(axes, fmt.Sprintf("%s (%s)", a.Name, strings.Join(what, ", ")))
	}
	fmt.Fprintf(tw, "axes\t%s\n", strings.Join(axes, ", "))
	fmt.Fprintln(tw)
	head := "LEVEL\tPATH\tSHAPE\tSCALE\tTRANSLATION"
	if arrays {
		head += "\tDTYPE\tCHUNK\tSHARD\tCODEC\tON DISK\tRATIO"
	}
	fmt.Fprintln(tw, head)
	for k, lv := range ii.Levels {
		tr := "-"
		if lv.Translation != nil {
			tr = formatFloats(lv.Translation)
		}
		shape := "?"
		if lv.Array != nil {
			shape = formatDims(lv.Array.Shape)
		}
		row := fmt.Sprintf("%d\t%s\t%s\t%s\t%s", k, lv.Path, shape, formatFloats(lv.Scale), tr)
		if arrays && lv.Array != nil {
			a := lv.Array
			shard := "-"
			if a.Shard != nil {
				shard = formatDims(a.Shard)
			}
			row += fmt.Sprintf("\t%s\t%s\t%s\t%s\t%s\t%s", a.DType, formatDims(a.Chunk), shard, a.Codec, humanBytes(a.BytesStored), ratioString(a.Ratio))
		}
		if lv.Error != "" {
			row += "\tunreadable"
			if arrays {
				row += "\t\t\t\t\t" // every cell, so the columns stay one block
			}
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

func formatFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}
