package gpu

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// The blosc-zstd codec (zarr.CodecBloscZstd, the Zarr blosc codec with
// cname zstd): every chunk becomes one blosc1 buffer whose blocks are
// shuffled (the spec's shuffle) and then each compressed into one zstd
// frame by the zstd kernels (kernels/zstd.cu, the module the zstd codec
// uses too). blosc rules as c-blosc 1.x: header versionlz 1
// (BLOSC_ZSTD_VERSION_FORMAT) and compressor code 4 (BLOSC_ZSTD_FORMAT),
// block size from blosc.Geometry with Compressor Zstd, never split into
// streams (DONT_SPLIT set), a block stored raw when its frame is not
// shorter, the chunk memcpyed at clevel 0, under 128 bytes or when a raw
// block no longer fits. Kernels per batch: blosc_shuffle or
// blosc_bitshuffle, zstd_blocks + zstd_seqs (one frame per blosc block),
// bzstd_sizes, blosc_plan and bzstd_assemble.

func init() { RegisterCodec(zarr.CodecBloscZstd, "zstd", newBloscZstd) }

// Launch constants of zstd.cu's blosc-zstd kernels
// (TestZstdConstantsMatchSource).
const (
	bzstdSizesCTA = 128 // BZS_SIZES_CTA
	bzstdAsmCTA   = 128 // BZS_ASM_CTA
)

type bloscZstdCodec struct {
	shuf                  bloscShuffler
	k                     zstdKern
	sizes, plan, assemble *Function
	opts                  blosc.Options
	memcpy                bool
	note                  string
}

// bloscZstdLevel is the zstd level c-blosc 1.x runs for a blosc clevel
// (zstd_wrap_compress: 2*clevel - 1, and the maximum, 22, for clevel 9).
func bloscZstdLevel(clevel int) int {
	if clevel < 9 {
		return 2*clevel - 1
	}
	return 22
}

func newBloscZstd(m *Module, spec zarr.Spec) (CodecKernels, error) {
	if spec.Level < 0 || spec.Level > 9 {
		return nil, fmt.Errorf("blosc-zstd codec: blosc clevel %d out of range 0..9", spec.Level)
	}
	if cb := spec.ChunkBytes(); cb > lz4MaxChunk {
		return nil, fmt.Errorf("blosc-zstd codec: a chunk of %d bytes exceeds the blosc1 limit of %d; use smaller chunks", cb, lz4MaxChunk)
	}
	ts := spec.DType.Size()
	if ts == 0 {
		return nil, fmt.Errorf("blosc-zstd codec: dtype %v has no size", spec.DType)
	}
	zl := bloscZstdLevel(spec.Level)
	parse, _, _ := zstdParse(zl)
	c := &bloscZstdCodec{
		opts:   blosc.Options{TypeSize: ts, CLevel: spec.Level, Shuffle: spec.Shuffle, Compressor: blosc.Zstd},
		memcpy: spec.Level == 0,
		note:   zstdParseNote(fmt.Sprintf("blosc clevel %d (zstd level %d)", spec.Level, zl), zl),
	}
	if c.memcpy {
		c.note = "blosc clevel 0 stores chunks uncompressed"
	}
	var err error
	if c.shuf, err = newBloscShuffler(m, spec.Shuffle, ts); err != nil {
		return nil, fmt.Errorf("blosc-zstd codec: %w", err)
	}
	if c.k, err = zstdKernels(m, parse); err != nil {
		return nil, fmt.Errorf("blosc-zstd codec: %w", err)
	}
	for _, k := range []struct {
		f    **Function
		name string
	}{{&c.sizes, "bzstd_sizes"}, {&c.plan, "blosc_plan"}, {&c.assemble, "bzstd_assemble"}} {
		if *k.f, err = m.Function(k.name); err != nil {
			return nil, fmt.Errorf("blosc-zstd codec: %w", err)
		}
	}
	return c, nil
}

// Note says which GPU parse runs the store's clevel (Noter).
func (c *bloscZstdCodec) Note() string { return c.note }

// Bound: a chunk that does not compress is stored memcpyed.
func (*bloscZstdCodec) Bound(chunkBytes int64) int64 { return chunkBytes + 16 }

// bzstdScratch is where the codec's buffers for n chunks lie in the
// scratch: the shuffled chunks (n*cstride + pad), the zstd block sizes and
// slots (one zstd block per blosc block), then per blosc block its frame
// size, the bytes stored and its start, and per chunk the plan.
type bzstdScratch struct {
	shuf, blkSize, slots, csizes, stored, bstarts, plan, total int64
}

// planes is the byte planes zstd_blocks cuts a blosc block's frame at
// (ZsGeo in zstd.cu): the shuffle's, as internal/blosc's encoder does.
func (c *bloscZstdCodec) planes() uint32 {
	ts := uint32(max(c.opts.TypeSize, 1))
	switch c.opts.Shuffle {
	case zarr.ByteShuffle:
		return ts
	case zarr.BitShuffle:
		return ts | zstdBitShuf
	}
	return 1
}

// frames is the zstd frame geometry of a chunk's blosc blocks (one frame
// per blosc block): the last block's bytes (it may be short), the block
// slots per blosc block and the scratch bytes of one.
func (c *bloscZstdCodec) frames(l bloscLayout, chunkBytes int64) (last, nbf, stride int64) {
	last = chunkBytes % l.bs
	if last == 0 {
		last = l.bs
	}
	nbf, stride = zstdFrames(l.bs, last, c.planes())
	return last, nbf, stride
}

func (c *bloscZstdCodec) scratchLayout(chunkBytes int64, n int) bzstdScratch {
	l := newBloscLayout(c.opts, chunkBytes)
	round := func(v int64) int64 { return (v + 255) &^ 255 }
	blocks := l.nblocks * int64(n)
	_, nbf, stride := c.frames(l, chunkBytes)
	var s bzstdScratch
	s.blkSize = round(l.cstride*int64(n) + lz4Pad)
	s.slots = s.blkSize + round(4*blocks*nbf)
	s.csizes = s.slots + blocks*nbf*stride
	s.stored = s.csizes + round(4*blocks)
	s.bstarts = s.stored + round(4*blocks)
	s.plan = s.bstarts + round(4*blocks)
	s.total = s.plan + 4*int64(n)
	return s
}

func (c *bloscZstdCodec) Scratch(chunkBytes int64, nChunks int) int64 {
	return c.scratchLayout(chunkBytes, nChunks).total
}

func (c *bloscZstdCodec) Encode(q Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error {
	if n == 0 {
		return nil
	}
	if chunkBytes <= 0 || chunkBytes > lz4MaxChunk {
		return fmt.Errorf("blosc-zstd encode: chunk of %d bytes (want 1..%d)", chunkBytes, lz4MaxChunk)
	}
	if stride < c.Bound(chunkBytes) || stride > 1<<32-1 {
		return fmt.Errorf("blosc-zstd encode: output stride %d for chunks of %d bytes", stride, chunkBytes)
	}
	l := newBloscLayout(c.opts, chunkBytes)
	if l.split {
		return fmt.Errorf("blosc-zstd encode: blosc.Geometry splits zstd blocks, which c-blosc 1.x never does")
	}
	if l.bs > zstdBlock {
		return fmt.Errorf("blosc-zstd encode: blosc blocks of %d bytes; the kernels take one zstd block (%d bytes) per blosc block", l.bs, zstdBlock)
	}
	blocks := l.nblocks * int64(n)
	if blocks > 1<<31-1 {
		return fmt.Errorf("blosc-zstd encode: %d chunks of %d bytes are %d blosc blocks, more than one batch may hold; use smaller batches", n, chunkBytes, blocks)
	}
	sc := c.scratchLayout(chunkBytes, n)
	at := scratch.Add
	nb, ts, bs, nn := uint32(chunkBytes), c.shuf.typesize, uint32(l.bs), uint32(n)
	if !c.memcpy {
		if err := c.shuf.run(q, in, at(sc.shuf), chunkBytes, l, n); err != nil {
			return fmt.Errorf("blosc-zstd encode: %w", err)
		}
		last, nbf, _ := c.frames(l, chunkBytes)
		if blocks*nbf > 1<<31-1 {
			return fmt.Errorf("blosc-zstd encode: %d chunks of %d bytes are %d zstd blocks, more than one batch may hold; use smaller batches", n, chunkBytes, blocks*nbf)
		}
		if err := zstdRunBlocks(q, c.k, at(sc.shuf), uint64(l.cstride), uint64(l.bs), uint32(l.nblocks), uint64(last),
			c.planes(), blocks*nbf, at(sc.slots), at(sc.blkSize)); err != nil {
			return fmt.Errorf("blosc-zstd encode: %w", err)
		}
		gs := Dim3{X: uint32((blocks + bzstdSizesCTA - 1) / bzstdSizesCTA)}
		if err := q.Launch(c.sizes, gs, Dim3{X: bzstdSizesCTA}, 0, at(sc.blkSize), at(sc.csizes), nb, ts, bs, nn, c.planes()); err != nil {
			return fmt.Errorf("blosc-zstd encode: %w", err)
		}
	}
	gp := Dim3{X: uint32((int64(n) + bloscPlanCTA - 1) / bloscPlanCTA)}
	if err := q.Launch(c.plan, gp, Dim3{X: bloscPlanCTA}, 0, at(sc.csizes), at(sc.stored), at(sc.bstarts), at(sc.plan),
		nb, ts, bs, uint32(0), nn, flag32(c.memcpy)); err != nil {
		return fmt.Errorf("blosc-zstd encode: %w", err)
	}
	ga, err := gridX(blocks, n, chunkBytes)
	if err != nil {
		return fmt.Errorf("blosc-zstd encode: %w", err)
	}
	if err := q.Launch(c.assemble, ga, Dim3{X: bzstdAsmCTA}, 0, in, at(sc.shuf), at(sc.slots), at(sc.blkSize), at(sc.stored),
		at(sc.bstarts), at(sc.plan), out, uint32(stride), sizes, nb, ts, bs, nn, bloscFlags(c.opts, false), c.planes()); err != nil {
		return fmt.Errorf("blosc-zstd encode: %w", err)
	}
	return nil
}
