package blosc

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/codec/zstdenc"
)

// ZstdLevel is the zstd level c-blosc 1.x compresses a block with at
// clevel 1..9 (blosc.c zstd_wrap_compress): 2*clevel-1 below 9 (1, 3, 5,
// ..., 15), ZSTD_maxCLevel() (22) at 9. (The source then tests the result
// for 8, which 2*clevel-1 never is, so clevel 8 stays 15.) The frames are
// made by zstdenc.LevelEncoder at that level, as the zstd codec's are.
func ZstdLevel(clevel int) int {
	if clevel >= 9 {
		return 22
	}
	return 2*clevel - 1
}

// minPlaneBlock is the smallest byte plane coded as a zstd block of its
// own: below it the block and table headers cost more than separate
// statistics save.
const minPlaneBlock = 8 << 10

// zstdEncoder writes blosc's zstd streams: each one zstd frame (as
// c-blosc's ZSTD_compressCCtx writes it: single segment, content size
// present, no checksum), made on first use and remade only when the level
// changes or a block outgrows its window.
type zstdEncoder struct {
	enc    *zstdenc.LevelEncoder
	window int
	buf    []byte // frames that might not fit dst's spare capacity
}

// prepare makes sure enc encodes at zstd level level with a window that
// holds a whole block of bs bytes (a window larger than the block buys
// nothing: no match reaches before the block's start).
func (z *zstdEncoder) prepare(level, bs int) {
	if z.enc != nil && z.enc.Level() == level && z.window >= bs {
		return
	}
	w := max(bs, z.window)
	enc, err := zstdenc.NewLevel(level, w)
	if err != nil {
		// Only a level outside -7..22 fails, and ZstdLevel gives 1..22.
		panic(fmt.Sprintf("blosc: %v", err))
	}
	z.enc, z.window = enc, w
	z.buf = make([]byte, 0, enc.BoundBlocks(w, 1))
}

// compress writes the zstd frame of stream at dst[len(dst):] and returns
// its size, or 0 when it is larger than maxout (c-blosc's
// zstd_wrap_compress gives 0 when the frame does not fit its maxout); dst
// has at least maxout bytes of spare capacity. The frame is written in
// place when the spare capacity holds the worst case, else into the
// encoder's own buffer and copied (so an incompressible stream near the
// end of dst never makes the encoder allocate). planes is the number of
// byte planes a shuffle made of the stream (1: none): each plane becomes
// its own zstd block, with its own literal table (see Geometry).
func (z *zstdEncoder) compress(dst, stream []byte, maxout, planes int) int {
	block := len(stream) / planes
	if block < minPlaneBlock {
		block = 0 // planes too small to pay for tables of their own
	}
	into := dst[len(dst):len(dst)]
	if cap(into) < z.enc.BoundBlocks(len(stream), block) {
		into = z.buf[:0]
	}
	out := z.enc.EncodeAllBlocks(into, stream, block)
	n := len(out)
	if n == 0 || n > maxout {
		return 0
	}
	if p := dst[len(dst) : len(dst)+n]; &out[0] != &p[0] {
		copy(p, out)
	}
	return n
}
