package blosc

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// ZstdLevel is the zstd level c-blosc 1.x compresses a block with at
// clevel 1..9 (blosc.c zstd_wrap_compress): 2*clevel-1 below 9 (1, 3, 5,
// ..., 15), ZSTD_maxCLevel() (22) at 9. (The source then tests the result
// for 8, which 2*clevel-1 never is, so clevel 8 stays 15.)
func ZstdLevel(clevel int) int {
	if clevel >= 9 {
		return 22
	}
	return 2*clevel - 1
}

// ZstdEncoderLevel is the klauspost encoder for a zstd level (-7..22):
// <= 1 SpeedFastest, 2..4 SpeedDefault, 5..8 SpeedBetterCompression, >= 9
// SpeedBestCompression. Level 1 (the default) is the fastest path, which
// is what live acquisition wants; the cut points follow the speed and
// ratio of the reference zstd levels each klauspost level resembles. One
// definition for the blosc-zstd streams here and the zstd codec
// (internal/codec).
func ZstdEncoderLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 1:
		return zstd.SpeedFastest
	case level <= 4:
		return zstd.SpeedDefault
	case level <= 8:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

// ZstdEncoderOptions are the klauspost options for one zstd frame per
// call (EncodeAll) at a zstd level, shared by the blosc-zstd streams and
// the zstd codec.
func ZstdEncoderOptions(level int) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(ZstdEncoderLevel(level)),
		// One frame per call on one goroutine: callers parallelise over
		// chunks, not inside one.
		zstd.WithEncoderConcurrency(1),
		// Zarr's zstd codec is configured with checksum: false, and c-blosc
		// writes its zstd frames without one (ZSTD_compressCCtx defaults).
		zstd.WithEncoderCRC(false),
		// Entropy-code the literals of blocks without matches too:
		// klauspost stores them raw by default below SpeedBetterCompression,
		// which leaves the sensor noise of camera data (12 significant bits
		// of 16) uncompressed, where libzstd's Huffman stage gets 1.17-1.33.
		zstd.WithAllLitEntropyCompression(true),
	}
}

// WindowFor is the smallest power of two >= n that zstd accepts as a
// window size.
func WindowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n {
		w *= 2
	}
	return w
}

// zstdEncoder writes blosc's zstd streams: each one zstd frame (as
// c-blosc's ZSTD_compressCCtx writes it: single segment, content size
// present, no checksum), from klauspost's encoder, made on first use and
// remade only when the level or the block size grows past its window.
type zstdEncoder struct {
	enc    *zstd.Encoder
	level  int
	window int
	buf    []byte // frames that might not fit dst's spare capacity
}

// zstdSlack is headroom per 128 KiB zstd block beyond MaxEncodedSize: the
// sequence writer grows its buffer when fewer than ~28 bytes are left,
// even if the block then ends up within MaxEncodedSize (measured: 16 bytes
// leave rare reallocations at SpeedBestCompression, 32 none).
const zstdSlack = 64

// ZstdBound is the room klauspost's EncodeAll needs after len(dst) to
// write the frame of n bytes in place, without growing dst.
func ZstdBound(enc *zstd.Encoder, n int) int {
	return enc.MaxEncodedSize(n) + zstdSlack*(n/(128<<10)+1)
}

// prepare makes sure enc encodes at zstd level level with a window that
// holds a whole block of bs bytes (a window larger than the block buys
// nothing: no match reaches before the block's start).
func (z *zstdEncoder) prepare(level, bs int) {
	if z.enc != nil && z.level == level && z.window >= bs {
		return
	}
	w := WindowFor(bs)
	opts := append(ZstdEncoderOptions(level), zstd.WithSingleSegment(true), zstd.WithWindowSize(w))
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		// Only invalid options fail, and these are fixed and valid.
		panic(fmt.Sprintf("blosc: zstd encoder: %v", err))
	}
	z.enc, z.level, z.window = enc, level, w
	z.buf = make([]byte, 0, ZstdBound(enc, w))
}

// compress writes the zstd frame of stream at dst[len(dst):] and returns
// its size, or 0 when it is larger than maxout (c-blosc's
// zstd_wrap_compress gives 0 when the frame does not fit its maxout); dst
// has at least maxout bytes of spare capacity. The frame is written in
// place when the spare capacity holds the worst case, else into the
// encoder's own buffer and copied (so an incompressible stream near the
// end of dst never makes klauspost allocate).
func (z *zstdEncoder) compress(dst, stream []byte, maxout int) int {
	into := dst[len(dst):len(dst)]
	if cap(into) < ZstdBound(z.enc, len(stream)) {
		into = z.buf[:0]
	}
	out := z.enc.EncodeAll(stream, into)
	n := len(out)
	if n == 0 || n > maxout {
		return 0
	}
	if p := dst[len(dst) : len(dst)+n]; &out[0] != &p[0] {
		copy(p, out)
	}
	return n
}
