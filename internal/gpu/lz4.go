package gpu

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/zarr"
)

// The lz4 codec: kernels/lz4.cu turns every chunk into one blosc1 buffer
// (byte shuffle by the element size, LZ4 streams, c-blosc's split and
// raw/memcpyed rules), what the store's `blosc {cname: lz4, shuffle}`
// metadata promises. Three kernels per batch: lz4_shuffle (chunk bytes to
// shuffled streams in scratch), lz4_compress (one warp per stream, into
// scratch) and lz4_assemble (header, block starts and streams at
// out + i*stride). kernels/lz4emu runs the same source on a CPU for tests.

func init() { RegisterCodec(zarr.CodecLZ4, "lz4", newLZ4) }

// These mirror the #defines of kernels/lz4.cu (TestLZ4ConstantsMatchSource
// keeps them in step).
const (
	// lz4BlockSize is the blosc block size: 64 KiB keeps every LZ4 stream
	// within the kernel's 16-bit positions and offsets, and equals
	// internal/blosc.DefaultBlockSize, so CPU and GPU stores are cut the
	// same way and their ratios compare.
	lz4BlockSize   = 64 << 10
	lz4ShufCTA     = 256 // LZ4_SHUF_CTA
	lz4ShufTile    = lz4ShufCTA * 16
	lz4WarpsPerCTA = 4 // LZ4_WPB
	// lz4CTAsPerSM sizes lz4_compress's persistent grid: more CTAs than
	// fit at once on an SM (those start late and find no work left).
	lz4CTAsPerSM = 16
	lz4AsmCTA    = 128 // LZ4_ASM_CTA
	// lz4Pad is the slack after each scratch buffer: the match finder
	// reads a little past a stream's end (never uses those bytes).
	lz4Pad = 256
	// lz4MaxChunk is the blosc1 limit on one buffer's input.
	lz4MaxChunk = 1<<31 - 1 - 16
	// lz4Carveout is lz4_compress's preferred shared-memory carveout in
	// percent (-1: the driver's choice). The match finder reads the stream
	// through L1, so a smaller carveout can beat more resident warps.
	lz4Carveout = -1
)

type lz4Codec struct {
	shuffle, compress, assemble *Function
	typesize                    uint32
	// accel is LZ4's acceleration, 10 - clevel as c-blosc sets it, so the
	// GPU parse skips like the CPU one and the ratios stay comparable.
	accel uint32
	// memcpy is clevel 0: c-blosc stores the chunk uncompressed.
	memcpy bool
	sms    int64 // multiprocessors, for the persistent grid
}

func newLZ4(m *Module, spec zarr.Spec) (CodecKernels, error) {
	if spec.Level < 0 || spec.Level > 9 {
		return nil, fmt.Errorf("lz4 codec: blosc clevel %d out of range 0..9", spec.Level)
	}
	if spec.Shuffle != zarr.ByteShuffle {
		return nil, fmt.Errorf("%w: lz4 codec with shuffle %s (the GPU kernels byte-shuffle); use --backend cpu", ErrNoKernels, zarr.ShuffleName(spec.Shuffle))
	}
	if cb := spec.ChunkBytes(); cb > lz4MaxChunk {
		return nil, fmt.Errorf("lz4 codec: a chunk of %d bytes exceeds the blosc1 limit of %d; use smaller chunks", cb, lz4MaxChunk)
	}
	c := &lz4Codec{typesize: uint32(spec.DType.Size()), accel: uint32(10 - spec.Level), memcpy: spec.Level == 0, sms: int64(max(m.Device().SMs(), 1))}
	if c.typesize == 0 {
		return nil, fmt.Errorf("lz4 codec: dtype %v has no size", spec.DType)
	}
	for _, k := range []struct {
		f    **Function
		name string
	}{{&c.shuffle, "lz4_shuffle"}, {&c.compress, "lz4_compress"}, {&c.assemble, "lz4_assemble"}} {
		f, err := m.Function(k.name)
		if err != nil {
			return nil, fmt.Errorf("lz4 codec: %w", err)
		}
		*k.f = f
	}
	if lz4Carveout >= 0 {
		if err := setCarveout(c.compress, lz4Carveout); err != nil {
			return nil, fmt.Errorf("lz4 codec: %w", err)
		}
	}
	return c, nil
}

// setCarveout sets CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT.
func setCarveout(f *Function, pct int) error {
	const attrCarveout = 9
	defer f.m.d.enter()()
	return check("cuFuncSetAttribute("+f.Name+", carveout)", drv.cuFuncSetAttribute(f.h, attrCarveout, int32(pct)))
}

// lz4Geom is the blosc geometry of one chunk, derived exactly as the
// kernels' lz4_geom does.
type lz4Geom struct {
	nblocks int64 // blosc blocks
	spc     int64 // LZ4 streams per chunk
	cstride int64 // chunk stride in the scratch buffers
}

func newLZ4Geom(nbytes, typesize int64) lz4Geom {
	bs := min(nbytes, lz4BlockSize)
	if bs == 0 {
		bs = 1
	}
	nsp := int64(1)
	if typesize <= 16 && bs/typesize >= 128 {
		nsp = typesize
	}
	nfull, leftover := nbytes/bs, nbytes%bs
	g := lz4Geom{nblocks: nfull, spc: nfull * nsp, cstride: (nbytes + 15) &^ 15}
	if leftover > 0 {
		g.nblocks++
		g.spc++
	}
	return g
}

// Bound: a chunk that does not compress is stored memcpyed, header + bytes.
func (*lz4Codec) Bound(chunkBytes int64) int64 { return chunkBytes + 16 }

// scratchLayout places, for n chunks, the shuffled streams, the LZ4
// output (both n*cstride + pad, 256-aligned), the work counter of
// lz4_compress and the per-stream sizes.
func (c *lz4Codec) scratchLayout(chunkBytes int64, n int) (shuf, lzout, next, csizes, total int64) {
	g := newLZ4Geom(chunkBytes, int64(c.typesize))
	region := (g.cstride*int64(n) + lz4Pad + 255) &^ 255
	shuf, lzout, next, csizes = 0, region, 2*region, 2*region+256
	total = csizes + 4*g.spc*int64(n)
	return
}

func (c *lz4Codec) Scratch(chunkBytes int64, nChunks int) int64 {
	_, _, _, _, total := c.scratchLayout(chunkBytes, nChunks)
	return total
}

func (c *lz4Codec) Encode(st *Stream, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error {
	if n == 0 {
		return nil
	}
	if chunkBytes <= 0 || chunkBytes > lz4MaxChunk {
		return fmt.Errorf("lz4 encode: chunk of %d bytes (want 1..%d)", chunkBytes, lz4MaxChunk)
	}
	if stride < c.Bound(chunkBytes) || stride > 1<<32-1 {
		return fmt.Errorf("lz4 encode: output stride %d for chunks of %d bytes", stride, chunkBytes)
	}
	g := newLZ4Geom(chunkBytes, int64(c.typesize))
	if g.spc*int64(n) > 1<<31-1 {
		return fmt.Errorf("lz4 encode: %d chunks of %d bytes are %d LZ4 streams, more than one batch may hold; use smaller batches", n, chunkBytes, g.spc*int64(n))
	}
	so, lo, no, co, _ := c.scratchLayout(chunkBytes, n)
	shuf, lzout, next, csizes := scratch.Add(so), scratch.Add(lo), scratch.Add(no), scratch.Add(co)
	nb, ts, bs, nn := uint32(chunkBytes), c.typesize, uint32(lz4BlockSize), uint32(n)
	grid := func(v int64) (Dim3, error) {
		if v > 1<<31-1 {
			return Dim3{}, fmt.Errorf("lz4 encode: %d chunks of %d bytes need %d CTAs; use smaller batches", n, chunkBytes, v)
		}
		return Dim3{X: uint32(v)}, nil
	}
	memcpy := uint32(0)
	if c.memcpy {
		memcpy = 1
	} else {
		g1, err := grid((g.cstride + lz4ShufTile - 1) / lz4ShufTile * int64(n))
		if err != nil {
			return err
		}
		if err := st.Launch(c.shuffle, g1, Dim3{X: lz4ShufCTA}, 0, in, shuf, nb, ts, bs, nn); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
		if err := st.Memset32(next, 0, 1); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
		g2 := Dim3{X: uint32(min((g.spc*int64(n)+lz4WarpsPerCTA-1)/lz4WarpsPerCTA, c.sms*lz4CTAsPerSM))}
		if err := st.Launch(c.compress, g2, Dim3{X: 32 * lz4WarpsPerCTA}, 0, shuf, lzout, csizes, nb, ts, bs, nn, c.accel, next); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
	}
	g3, err := grid(g.nblocks * int64(n))
	if err != nil {
		return err
	}
	if err := st.Launch(c.assemble, g3, Dim3{X: lz4AsmCTA}, 0, in, shuf, lzout, csizes, out, uint32(stride), sizes, nb, ts, bs, nn, memcpy); err != nil {
		return fmt.Errorf("lz4 encode: %w", err)
	}
	return nil
}
