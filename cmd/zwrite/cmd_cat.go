package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/zarr"
)

// catOptions are the flags of zwrite cat.
type catOptions struct {
	endpoint string // --s3-endpoint
	array    string
	level    int
	// levelSet: --level was given (an array has no levels to pick).
	levelSet bool
}

func (o *catOptions) addFlags(f *pflag.FlagSet) {
	addS3EndpointFlag(f, &o.endpoint)
	f.StringVar(&o.array, "array", "", "the array (or image) at this PATH inside a group store, e.g. cam1 or pos3/raw")
	f.IntVar(&o.level, "level", 0, "of an OME-Zarr image, the level K to write (0 is full resolution)")
}

func newCatCmd(io stdio, wrap runWrapper) *cobra.Command {
	o := &catOptions{}
	cmd := &cobra.Command{
		Use:   "cat STORE [--array PATH] [--level K]",
		Short: "Write one array of a store to stdout as raw bytes in C order",
		Long: `cat writes an array's elements to stdout, C order, little endian: the same
bytes append was given, so "zwrite cat s.zarr | cmp - input.raw" checks a
round trip. Chunks never written read as the fill value.

In a group store, --array PATH names the array; for an OME-Zarr image (at
the store root or at PATH) --level K picks the level (default 0). A group
without --array is refused with a list of the arrays it holds.`,
		Example: `  zwrite cat s.zarr > copy.raw
  zwrite cat s.zarr | cmp - f.raw
  zwrite cat lab.zarr --array cam1/raw > cam1.raw
  zwrite cat image.zarr --level 2 > level2.raw`,
		Args: storeArg,
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			if isTerminal(io.out) {
				return usagef("stdout is a terminal; redirect it to a file or a pipe")
			}
			o.levelSet = cmd.Flags().Changed("level")
			return runCat(cmd.Context(), o, args[0], io.out)
		}),
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func runCat(ctx context.Context, o *catOptions, store string, out io.Writer) error {
	p, err := nodePath(o.array)
	if err != nil {
		return err
	}
	if o.level < 0 {
		return usagef("--level %d: want a level number, 0 or more", o.level)
	}
	s, err := openStore(store, o.endpoint)
	if err != nil {
		return err
	}
	defer s.Close()
	ap, err := catTarget(ctx, s, p, o)
	if err != nil {
		return err
	}
	a, err := s.openArray(ap)
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
		return fmt.Errorf("cat %s: %w", s.name(ap), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cat %s: write stdout: %w", s.name(ap), err)
	}
	return nil
}

// catTarget is the path of the array cat writes: the node at p itself, or
// an image's level; a plain group is a usage error that lists its arrays.
func catTarget(ctx context.Context, s *readStore, p string, o *catOptions) (string, error) {
	n, err := s.arrayArg(ctx, p, true)
	if err != nil {
		return "", err
	}
	switch {
	case n.Image != nil:
		ds := n.Image.Multiscales[0].Datasets
		if o.level >= len(ds) {
			return "", usagef("--level %d: the image %s has levels 0 to %d", o.level, s.name(p), len(ds)-1)
		}
		lp := ds[o.level].Path
		if !fs.ValidPath(lp) || lp == "." {
			return "", fmt.Errorf("%s: level %d's path %q is not a directory inside the image", s.name(p), o.level, lp)
		}
		return path.Join(p, lp), nil
	case n.Type == zarr.NodeArray:
		if o.levelSet {
			return "", usagef("--level is for OME-Zarr images; %s is an array", s.name(p))
		}
		return p, nil
	}
	return "", usagef("%s is a group; name the array to write with --array PATH: it holds %s", s.name(p), orNone(storeNodes(ctx, s, p, true)))
}

func isMissingNode(err error) bool {
	_, ok := err.(*missingNodeError)
	return ok
}

// orNone joins a list of nodes for a message.
func orNone(list []string) string {
	if len(list) == 0 {
		return "no arrays"
	}
	return strings.Join(list, ", ")
}
