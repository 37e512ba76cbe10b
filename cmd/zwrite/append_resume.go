package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/pyramid"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3"
	"github.com/zwrite/zwrite/internal/zarr"
)

// resumeOptions are append's flags for continuing a store.
type resumeOptions struct {
	resume bool
	skip   string

	// Set once the store is read (resumePlan).
	skipFrames int64
	starts     []int64 // per level: the frame its writer starts at (a shard row start)
	existing   []int64 // per level: the frames its zarr.json names now

	// Set before the store is opened, for an s3:// store (see
	// storedShardBound): the bound of its shards, or why it is unknown.
	bound    int64
	boundErr error
}

func (o *resumeOptions) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.resume, "resume", false, "continue the store at -o (written by zwrite, or any sharded store with zwrite's layout): the input becomes frames shape[0], shape[0]+1, ...; flags given must agree with the store, the others are taken from it")
	f.StringVar(&o.skip, "skip", "", "skip the first N frames of the input (auto: as many as the store holds, to give the same input again)")
}

// resumeFlags are the flags that describe the array: with --resume they
// are optional, and those given must match the store.
var resumeFlags = []string{"shape", "dtype", "chunk", "shard", "codec", "level", "shuffle", "dims"}

// resumePlan reads the store being resumed and fills in o: the spec (from
// the store, checked against what the flags gave), the image settings for
// a pyramid, where each level's writer starts, and how many input frames
// to skip. f tells which flags were given.
func resumePlan(o *appendOptions, f *pflag.FlagSet, store sink.Store) error {
	fsys, err := store.FS()
	if err != nil {
		return err
	}
	b, err := fs.ReadFile(fsys, "zarr.json")
	if err != nil {
		return fmt.Errorf("%s: %w", store.Location(), err)
	}
	kind, err := zarr.ParseNode(b)
	if err != nil {
		return fmt.Errorf("%s: %w", store.Location(), err)
	}
	var levelMetas []*zarr.Meta
	if kind == zarr.NodeGroup {
		img, err := zarr.ParseImageGroup(b)
		if err != nil {
			return &usageError{fmt.Errorf("%s is a group but not an OME-Zarr image zwrite can continue: %w", store.Location(), err)}
		}
		ms := &img.Multiscales[0]
		if ms.Downsampling == nil {
			return &usageError{fmt.Errorf("%s: the image does not record how its levels were made (not written by zwrite); it cannot be continued", store.Location())}
		}
		for k, ds := range ms.Datasets {
			if ds.Path != strconv.Itoa(k) {
				return &usageError{fmt.Errorf("%s: level %d is at path %q; zwrite continues images whose levels are at 0, 1, ...", store.Location(), k, ds.Path)}
			}
		}
		o.img.nLevels = len(ms.Datasets)
		o.img.reduce = append([]bool(nil), ms.Downsampling.Reduce...)
		if o.img.downMethod, err = downsample.ParseMethod(ms.Downsampling.Method); err != nil {
			return fmt.Errorf("%s: %w", store.Location(), err)
		}
		o.img.axesResolved = ms.Axes
		o.img.pixelResolved = ms.Datasets[0].Scale
		o.img.name = ms.Name
		if f.Changed("levels") || f.Changed("downsample") || f.Changed("downsample-dims") {
			return usagef("--resume continues the image as it was made (%d levels, %s, reducing %v): leave out --levels, --downsample and --downsample-dims", o.img.nLevels, ms.Downsampling.Method, ms.Downsampling.Reduce)
		}
		m, err := readMeta(fsys, "0/zarr.json")
		if err != nil {
			return fmt.Errorf("%s level 0: %w", store.Location(), err)
		}
		levelMetas = append(levelMetas, m)
	} else {
		m, err := readMeta(fsys, "zarr.json")
		if err != nil {
			return fmt.Errorf("%s: %w", store.Location(), err)
		}
		levelMetas = []*zarr.Meta{m}
		for _, n := range []string{"levels", "ome", "downsample", "downsample-dims", "units", "pixel-size", "axis-types", "image-name"} {
			if f.Changed(n) {
				return usagef("--resume of %s: it is an array, not an image; leave out --%s", store.Location(), n)
			}
		}
	}
	spec, err := resumeSpec(o, f, levelMetas[0], store.Location())
	if err != nil {
		return err
	}
	o.spec = spec
	if o.img.image() {
		specs, err := pyramid.LevelSpecs(spec, o.img.nLevels, o.img.reduce)
		if err != nil {
			return fmt.Errorf("%s: %w", store.Location(), err)
		}
		if err := sameLayout(&specs[0], &levelMetas[0].Spec); err != nil {
			return fmt.Errorf("%s level 0 is not the level zwrite would write: %w", store.Location(), err)
		}
		for k := 1; k < len(specs); k++ {
			m, err := readMeta(fsys, path.Join(strconv.Itoa(k), "zarr.json"))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// A writer stopped while creating its levels: this one
				// holds nothing yet, and starts anew.
				m = &zarr.Meta{Spec: specs[k].Clone()}
				m.Spec.Shape[0] = 0
			case err != nil:
				return fmt.Errorf("%s level %d: %w", store.Location(), k, err)
			default:
				if err := sameLayout(&specs[k], &m.Spec); err != nil {
					return fmt.Errorf("%s level %d is not the level zwrite would write: %w", store.Location(), k, err)
				}
			}
			levelMetas = append(levelMetas, m)
		}
	}
	o.rs.starts, o.rs.existing = restartFrames(levelMetas, o.img.reduce)
	switch o.rs.skip {
	case "":
	case "auto":
		o.rs.skipFrames = levelMetas[0].Spec.Shape[0]
	default:
		n, err := strconv.ParseInt(o.rs.skip, 10, 64)
		if err != nil || n < 0 {
			return usagef("--skip %q: want a number of frames, or auto", o.rs.skip)
		}
		o.rs.skipFrames = n
	}
	return nil
}

// storedShardBound is maxShardBytes of the store a resume continues
// (level 0's, for an image), read without opening it for writing. An
// object store sizes its upload parts when it is opened for writing, from
// the largest shard the run writes; a resume learns that from the store,
// and resumePlan reads it only once the store is open.
func storedShardBound(o *appendOptions) (int64, error) {
	fsys, err := sink.OpenFS(o.output, o.s3Endpoint)
	if err != nil {
		return 0, err
	}
	if o.img.arrayPath != "" {
		if fsys, err = fs.Sub(fsys, o.img.arrayPath); err != nil {
			return 0, fmt.Errorf("%s: %w", o.output, err)
		}
	}
	b, err := fs.ReadFile(fsys, "zarr.json")
	if err != nil {
		return 0, fmt.Errorf("read zarr.json: %w", err)
	}
	kind, err := zarr.ParseNode(b)
	if err != nil {
		return 0, fmt.Errorf("zarr.json: %w", err)
	}
	name := "zarr.json"
	if kind == zarr.NodeGroup {
		name = "0/zarr.json" // level 0 holds the largest shards
	}
	m, err := readMeta(fsys, name)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	s := m.Spec.Clone()
	// As resumeSpec does: a store holding fewer frames than chunk[0] is
	// valid Zarr, but no valid Spec; the bound does not depend on dim 0.
	s.Shape[0] = 0
	return maxShardBytes(&s)
}

// checkResumeBound refuses a resume of an s3:// store whose shards may be
// larger than the upload parts it was opened with allow (10,000 parts per
// object): its zarr.json could not be read before it was opened, or it
// was replaced in between by one with larger shards. The upload would
// otherwise fail at part 10,001, after hours of writing.
func checkResumeBound(o *appendOptions) error {
	if !isURL(o.output) {
		return nil // a file has no parts
	}
	need, err := maxShardBytes(&o.spec)
	if err != nil {
		return err
	}
	opened := cmp.Or(o.rs.bound, s3.DefaultMaxObjectSize) // 0 is the store's default
	if need <= opened {
		return nil
	}
	why := "it changed while it was being opened"
	if o.rs.boundErr != nil {
		why = fmt.Sprintf("its zarr.json could not be read before it was opened: %v", o.rs.boundErr)
	}
	return fmt.Errorf("%s: its shards may reach %s, but the upload parts were sized for shards of at most %s (%s); nothing was written, run the command again", o.output, humanBytes(need), humanBytes(opened), why)
}

func readMeta(fsys fs.FS, name string) (*zarr.Meta, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return zarr.ParseArray(b)
}

// resumeSpec is the spec the run continues: the store's, which must have
// zwrite's layout, with every flag given checked against it.
func resumeSpec(o *appendOptions, f *pflag.FlagSet, m *zarr.Meta, where string) (zarr.Spec, error) {
	var bad []string
	if !m.Sharded {
		bad = append(bad, "not sharded")
	}
	if m.IndexAtStart {
		bad = append(bad, "shard index at the start")
	}
	if !m.IndexCRC {
		bad = append(bad, "shard index without crc32c")
	}
	if m.V2Keys || m.Separator != "/" {
		bad = append(bad, "chunk keys not c/0/1 style")
	}
	if !m.FillIsZero() {
		bad = append(bad, "a fill value other than 0")
	}
	if m.ZstdChecksum {
		bad = append(bad, "zstd checksums")
	}
	if m.Spec.Codec.Blosc() && (m.BloscTypeSize != m.Spec.DType.Size() || m.BloscBlockSize != 0) {
		bad = append(bad, "blosc settings zwrite does not write")
	}
	if len(bad) > 0 {
		return zarr.Spec{}, &usageError{fmt.Errorf("%s cannot be continued: zwrite writes what it reads back, and this store has %s", where, strings.Join(bad, ", "))}
	}
	s := m.Spec.Clone()
	stored := s.Shape[0]
	s.Shape[0] = 0 // a resumed dim 0 grows, unless --shape fixes it
	// The flags given must agree. o.spec holds what validate parsed.
	var diffs []string
	diff := func(flag string, ok bool, got, want any) {
		if f.Changed(flag) && !ok {
			diffs = append(diffs, fmt.Sprintf("--%s %v differs from the store's %v", flag, got, want))
		}
	}
	if f.Changed("shape") {
		g := o.spec.Shape
		same := len(g) == len(s.Shape)
		for d := 1; same && d < len(g); d++ {
			same = g[d] == s.Shape[d]
		}
		diff("shape", same, dimsString(g[1:]), dimsString(s.Shape[1:])+" in dims 1..")
		if same && g[0] > 0 {
			if g[0] < stored {
				diffs = append(diffs, fmt.Sprintf("--shape %d,... declares fewer frames than the %d the store holds", g[0], stored))
			}
			s.Shape[0] = g[0]
		}
	}
	diff("dtype", o.spec.DType == s.DType, o.spec.DType, s.DType)
	diff("chunk", slices.Equal(o.spec.Chunk, s.Chunk), dimsString(o.spec.Chunk), dimsString(s.Chunk))
	diff("shard", slices.Equal(o.spec.Shard, s.Shard), dimsString(o.spec.Shard), dimsString(s.Shard))
	diff("codec", o.spec.Codec == s.Codec, o.spec.Codec, s.Codec)
	diff("level", o.spec.Level == s.Level, o.spec.Level, s.Level)
	diff("shuffle", o.spec.Shuffle == s.Shuffle, zarr.ShuffleName(o.spec.Shuffle), zarr.ShuffleName(s.Shuffle))
	diff("dims", strings.Join(o.spec.DimNames, ",") == strings.Join(s.DimNames, ","), strings.Join(o.spec.DimNames, ","), strings.Join(s.DimNames, ","))
	if len(diffs) > 0 {
		return zarr.Spec{}, usagef("--resume of %s: %s", where, strings.Join(diffs, "; "))
	}
	if err := s.Validate(); err != nil {
		return zarr.Spec{}, &usageError{fmt.Errorf("%s cannot be continued: %w", where, err)}
	}
	return s, nil
}

// sameLayout compares what fixes a level's bytes.
func sameLayout(want, got *zarr.Spec) error {
	if !slices.Equal(want.Shape[1:], got.Shape[1:]) || !slices.Equal(want.Chunk, got.Chunk) || !slices.Equal(want.Shard, got.Shard) ||
		want.DType != got.DType || want.Codec != got.Codec || want.Level != got.Level || want.Shuffle != got.Shuffle {
		return errors.New("shape, chunk, shard, dtype or codec differ")
	}
	return nil
}

// restartFrames is, per level, where its writer starts and what its
// zarr.json names now. Every level restarts at the same place of the
// stream: the latest point before every level's last partial shard row
// that begins a shard row at every level (so each level's writer starts
// at a row start, rule of pipeline.Config.StartFrame), in level-0 frames
// S; level k starts at S / 2^k when dim 0 is reduced. Level 0's frames
// from S on are read back from the store and written again, which
// rebuilds every level's rows from there exactly as one run would.
func restartFrames(metas []*zarr.Meta, reduce []bool) (starts, existing []int64) {
	reduce0 := len(reduce) > 0 && reduce[0]
	scale := func(k int) int64 {
		if reduce0 {
			return int64(1) << uint(k)
		}
		return 1
	}
	// The unit S must be a multiple of: level k's shard row in level-0
	// frames, for every level (and pairs of frames, for the kicks).
	unit := int64(1)
	s := int64(-1)
	for k, m := range metas {
		row := m.Spec.Shard[0] * scale(k)
		unit = lcm(unit, row)
		done := m.Spec.Shape[0] / m.Spec.Shard[0] * m.Spec.Shard[0] * scale(k)
		if s < 0 || done < s {
			s = done
		}
	}
	if len(metas) > 1 && reduce0 {
		unit = lcm(unit, 2)
	}
	s = s / unit * unit
	for k, m := range metas {
		starts = append(starts, s/scale(k))
		existing = append(existing, m.Spec.Shape[0])
	}
	return starts, existing
}

func lcm(a, b int64) int64 {
	g, x := a, b
	for x != 0 {
		g, x = x, g%x
	}
	return a / g * b
}

func dimsString(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

// refeed writes level 0's frames [from, to) of the resumed store into w:
// the rows every level rewrites (see restartFrames).
func refeed(ctx context.Context, o *appendOptions, store sink.Store, w io.Writer, from, to int64) error {
	if from >= to {
		return nil
	}
	fsys, err := store.FS()
	if err != nil {
		return err
	}
	if o.img.image() {
		if fsys, err = fs.Sub(fsys, "0"); err != nil {
			return err
		}
	}
	a, err := zarr.Open(fsys)
	if err != nil {
		return fmt.Errorf("read back %s: %w", store.Location(), err)
	}
	defer a.Close()
	if err := a.ReadFramesContext(ctx, w, from, to); err != nil {
		return fmt.Errorf("read back frames %d..%d of %s (the last shard row, rewritten with the new frames): %w", from, to, store.Location(), err)
	}
	return nil
}
