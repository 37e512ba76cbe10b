package gpu

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// The lz4 codec: kernels/lz4.cu turns every chunk into one blosc1 buffer
// (the spec's shuffle by the element size, LZ4 streams, c-blosc's split and
// raw/memcpyed rules), what the store's `blosc {cname: lz4, shuffle}`
// metadata promises, byte for byte what the CPU encoder (internal/blosc)
// writes. Four kernels per batch: blosc_shuffle or blosc_bitshuffle
// (blosc.cuh: chunk bytes to shuffled blocks in scratch), lz4_compress (one
// warp per stream, into scratch), lz4_plan (c-blosc's raw and memcpyed
// decisions, one thread per chunk) and lz4_assemble (header, block starts
// and streams at out + i*stride). The block size and split come from
// blosc.Geometry, as on the CPU. kernels/emu runs the same source on a CPU
// for tests.

func init() { RegisterCodec(zarr.CodecLZ4, "lz4", newLZ4) }

// These mirror the #defines of kernels/lz4.cu (TestLZ4ConstantsMatchSource
// keeps them in step).
const (
	lz4WarpsPerCTA = 2 // LZ4_WPB
	// lz4CTAsPerSM sizes lz4_compress's persistent grid: more CTAs than
	// fit at once on an SM (those start late and find no work left).
	lz4CTAsPerSM = 16
	lz4AsmCTA    = 128 // LZ4_ASM_CTA
	// lz4MaxStream is the longest stream the kernel compresses: its hash
	// table holds 16-bit positions.
	lz4MaxStream = 64 << 10
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
	shuf                     bloscShuffler
	compress, plan, assemble *Function
	opts                     blosc.Options // what the CPU encoder would be given
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
	if cb := spec.ChunkBytes(); cb > lz4MaxChunk {
		return nil, fmt.Errorf("lz4 codec: a chunk of %d bytes exceeds the blosc1 limit of %d; use smaller chunks", cb, lz4MaxChunk)
	}
	ts := spec.DType.Size()
	if ts == 0 {
		return nil, fmt.Errorf("lz4 codec: dtype %v has no size", spec.DType)
	}
	c := &lz4Codec{
		opts:   blosc.Options{TypeSize: ts, CLevel: spec.Level, Shuffle: spec.Shuffle, Compressor: blosc.LZ4},
		accel:  uint32(10 - spec.Level),
		memcpy: spec.Level == 0,
		sms:    int64(max(m.Device().SMs(), 1)),
	}
	var err error
	if c.shuf, err = newBloscShuffler(m, spec.Shuffle, ts); err != nil {
		return nil, fmt.Errorf("lz4 codec: %w", err)
	}
	if c.compress, err = m.Function("lz4_compress"); err != nil {
		return nil, fmt.Errorf("lz4 codec: %w", err)
	}
	if c.plan, err = m.Function("blosc_plan"); err != nil {
		return nil, fmt.Errorf("lz4 codec: %w", err)
	}
	if c.assemble, err = m.Function("lz4_assemble"); err != nil {
		return nil, fmt.Errorf("lz4 codec: %w", err)
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
	if f.m.emulated {
		return nil
	}
	defer f.m.d.enter()()
	return check("cuFuncSetAttribute("+f.Name+", carveout)", drv.cuFuncSetAttribute(f.h, attrCarveout, int32(pct)))
}

// Bound: a chunk that does not compress is stored memcpyed, header + bytes.
func (*lz4Codec) Bound(chunkBytes int64) int64 { return chunkBytes + 16 }

// lz4Scratch is where lz4.cu's buffers for n chunks lie in the scratch:
// the shuffled streams and the LZ4 output (each n*cstride + pad), the work
// counter of lz4_compress, then per stream its LZ4 size and the bytes
// stored, per block its start and per chunk the plan.
type lz4Scratch struct {
	shuf, lzout, next, csizes, stored, bstarts, plan, total int64
}

func (c *lz4Codec) scratchLayout(chunkBytes int64, n int) lz4Scratch {
	l := newBloscLayout(c.opts, chunkBytes)
	round := func(v int64) int64 { return (v + 255) &^ 255 }
	region := round(l.cstride*int64(n) + lz4Pad)
	streams := round(4 * l.spc * int64(n))
	var s lz4Scratch
	s.lzout = region
	s.next = 2 * region
	s.csizes = s.next + 256
	s.stored = s.csizes + streams
	s.bstarts = s.stored + streams
	s.plan = s.bstarts + round(4*l.nblocks*int64(n))
	s.total = s.plan + 4*int64(n)
	return s
}

func (c *lz4Codec) Scratch(chunkBytes int64, nChunks int) int64 {
	return c.scratchLayout(chunkBytes, nChunks).total
}

func (c *lz4Codec) Encode(q Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error {
	if n == 0 {
		return nil
	}
	if chunkBytes <= 0 || chunkBytes > lz4MaxChunk {
		return fmt.Errorf("lz4 encode: chunk of %d bytes (want 1..%d)", chunkBytes, lz4MaxChunk)
	}
	if stride < c.Bound(chunkBytes) || stride > 1<<32-1 {
		return fmt.Errorf("lz4 encode: output stride %d for chunks of %d bytes", stride, chunkBytes)
	}
	l := newBloscLayout(c.opts, chunkBytes)
	if l.bs/l.nsp > lz4MaxStream {
		return fmt.Errorf("lz4 encode: blosc streams of %d bytes; the kernel takes at most %d", l.bs/l.nsp, lz4MaxStream)
	}
	if l.spc*int64(n) > 1<<31-1 {
		return fmt.Errorf("lz4 encode: %d chunks of %d bytes are %d LZ4 streams, more than one batch may hold; use smaller batches", n, chunkBytes, l.spc*int64(n))
	}
	sc := c.scratchLayout(chunkBytes, n)
	at := scratch.Add
	nb, ts, bs, split, nn := uint32(chunkBytes), c.shuf.typesize, uint32(l.bs), flag32(l.split), uint32(n)
	if !c.memcpy {
		if err := c.shuf.run(q, in, at(sc.shuf), chunkBytes, l, n); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
		if err := q.Memset32(at(sc.next), 0, 1); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
		g2 := Dim3{X: uint32(min((l.spc*int64(n)+lz4WarpsPerCTA-1)/lz4WarpsPerCTA, c.sms*lz4CTAsPerSM))}
		if err := q.Launch(c.compress, g2, Dim3{X: 32 * lz4WarpsPerCTA}, 0, at(sc.shuf), at(sc.lzout), at(sc.csizes),
			nb, ts, bs, split, nn, c.accel, at(sc.next)); err != nil {
			return fmt.Errorf("lz4 encode: %w", err)
		}
	}
	gp := Dim3{X: uint32((int64(n) + bloscPlanCTA - 1) / bloscPlanCTA)}
	if err := q.Launch(c.plan, gp, Dim3{X: bloscPlanCTA}, 0, at(sc.csizes), at(sc.stored), at(sc.bstarts), at(sc.plan),
		nb, ts, bs, split, nn, flag32(c.memcpy)); err != nil {
		return fmt.Errorf("lz4 encode: %w", err)
	}
	g3, err := gridX(l.nblocks*int64(n), n, chunkBytes)
	if err != nil {
		return fmt.Errorf("lz4 encode: %w", err)
	}
	if err := q.Launch(c.assemble, g3, Dim3{X: lz4AsmCTA}, 0, in, at(sc.shuf), at(sc.lzout), at(sc.stored), at(sc.bstarts), at(sc.plan),
		out, uint32(stride), sizes, nb, ts, bs, split, nn, bloscFlags(c.opts, l.split)); err != nil {
		return fmt.Errorf("lz4 encode: %w", err)
	}
	return nil
}
