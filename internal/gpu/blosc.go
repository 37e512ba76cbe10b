package gpu

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// What the two blosc1 codecs on the GPU (lz4.go: blosc-lz4, bzstd.go:
// blosc-zstd) share: the chunk geometry, the header flags and the shuffle
// kernels of kernels/blosc.cuh, which both modules include.

// bloscLayout is the blosc1 geometry of one chunk: the block size and
// split decision from blosc.Geometry (the one definition the CPU encoder
// follows too) and what the kernels derive from them (blosc.cuh
// blosc_geom; TestBloscGeometryAgrees compares the two).
type bloscLayout struct {
	bs      int64 // block size in the header
	split   bool  // full blocks stored as typesize streams
	nsp     int64 // streams per full block
	nblocks int64
	spc     int64 // streams per chunk
	cstride int64 // chunk stride in the kernels' scratch buffers
}

func newBloscLayout(o blosc.Options, nbytes int64) bloscLayout {
	bs, split := blosc.Geometry(o, int(nbytes))
	l := bloscLayout{bs: int64(max(bs, 1)), split: split, nsp: 1, cstride: (nbytes + 15) &^ 15}
	if split {
		l.nsp = int64(max(o.TypeSize, 1))
	}
	nfull, leftover := nbytes/l.bs, nbytes%l.bs
	l.nblocks, l.spc = nfull, nfull*l.nsp
	if leftover > 0 {
		l.nblocks++
		l.spc++
	}
	return l
}

// flag32 is a kernel argument of 0 or 1.
func flag32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// Header flag bits and compressor codes (c-blosc blosc.h:
// BLOSC_LZ4_FORMAT 1, BLOSC_ZSTD_FORMAT 4, both with format version 1).
const (
	bloscFlagShuffle    = 0x01
	bloscFlagBitShuffle = 0x04
	bloscFlagDontSplit  = 0x10
	bloscFormatShift    = 5
	bloscFormatLZ4      = 1
	bloscFormatZstd     = 4
)

// bloscFlags is the header flags byte without MEMCPYED, which the
// assembling kernel adds for the chunks it stores uncompressed.
func bloscFlags(o blosc.Options, split bool) uint32 {
	f := uint32(bloscFormatLZ4)
	if o.Compressor == blosc.Zstd {
		f = bloscFormatZstd
	}
	f <<= bloscFormatShift
	switch o.Shuffle {
	case blosc.ByteShuffle:
		f |= bloscFlagShuffle
	case blosc.BitShuffle:
		f |= bloscFlagBitShuffle
	}
	if !split {
		f |= bloscFlagDontSplit
	}
	return f
}

// Shuffle modes of blosc.cuh (BLOSC_NOSHUF, BLOSC_BYTESHUF, BLOSC_BITSHUF).
const (
	shufNone = 0
	shufByte = 1
	shufBit  = 2
)

// bloscShuffler runs blosc.cuh's shuffle kernels of one module.
type bloscShuffler struct {
	shuffle, bitshuffle *Function
	mode                uint32
	typesize            uint32
}

func newBloscShuffler(m *Module, s zarr.Shuffle, typesize int) (bloscShuffler, error) {
	sh := bloscShuffler{typesize: uint32(typesize)}
	switch s {
	case blosc.NoShuffle:
		sh.mode = shufNone
	case blosc.ByteShuffle:
		sh.mode = shufByte
	case blosc.BitShuffle:
		sh.mode = shufBit
	default:
		return sh, fmt.Errorf("shuffle %d is not a blosc filter", int(s))
	}
	var err error
	if sh.shuffle, err = m.Function("blosc_shuffle"); err != nil {
		return sh, err
	}
	if sh.bitshuffle, err = m.Function("blosc_bitshuffle"); err != nil {
		return sh, err
	}
	return sh, nil
}

// Launch constants of blosc.cuh (TestBloscConstantsMatchSource).
const (
	bloscShufCTA  = 256 // BLOSC_SHUF_CTA
	bloscShufTile = bloscShufCTA * 16
	bloscBitCTA   = 256 // BLOSC_BIT_CTA
	bloscPlanCTA  = 128 // BLOSC_PLAN_CTA
)

// run enqueues the shuffle of n chunks of nbytes from in into shuf (chunk
// c at c*cstride, its blocks at c*cstride + b*bs).
func (sh bloscShuffler) run(q Queue, in, shuf DevPtr, nbytes int64, l bloscLayout, n int) error {
	nb, bs, nn := uint32(nbytes), uint32(l.bs), uint32(n)
	if sh.mode == shufBit {
		g, err := gridX(l.nblocks*int64(n), n, nbytes)
		if err != nil {
			return err
		}
		return q.Launch(sh.bitshuffle, g, Dim3{X: bloscBitCTA}, 0, in, shuf, nb, sh.typesize, bs, nn)
	}
	g, err := gridX((l.cstride+bloscShufTile-1)/bloscShufTile*int64(n), n, nbytes)
	if err != nil {
		return err
	}
	return q.Launch(sh.shuffle, g, Dim3{X: bloscShufCTA}, 0, in, shuf, nb, sh.typesize, bs, nn, sh.mode)
}

// gridX is a one-dimensional grid of v CTAs, refused past 2^31-1.
func gridX(v int64, n int, chunkBytes int64) (Dim3, error) {
	if v > 1<<31-1 {
		return Dim3{}, fmt.Errorf("%d chunks of %d bytes need %d CTAs; use smaller batches", n, chunkBytes, v)
	}
	return Dim3{X: uint32(v)}, nil
}
