package zstdenc

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// LevelEncoder writes one zstd frame per call at a zstd level (-7..22):
// level 1 and below with this package's Encoder, higher levels with
// klauspost's encoder (2..4 SpeedDefault, 5..8 SpeedBetterCompression,
// 9 and up SpeedBestCompression). The one definition of how zwrite makes
// zstd frames, for the zstd codec and for blosc's zstd streams.
//
// Level 1 (the default) is ours because klauspost's levels trade ratio and
// speed otherwise than libzstd on sensor data. Measured with
// internal/codec's TestMeasureCodecs (-tags zstdref: libzstd, the
// system's 1.5.4 when this table was made, in the same process, the
// candidates taking turns) on the 2-core dev VM, 64 chunks
// of 256 KiB uint16 per fill, ratio and MB/s per core (thread CPU time;
// camera is internal/bench's fill, camera2 codectest.Camera):
//
//	                        thirds       rand         xor          camera       camera2
//	libzstd 1.5.4 level 1   4.1455 1809  1.1691  968  10.706  537  1.9006  262  1.5673  391
//	zstdenc (ours)          4.1520 1745  1.1691  813  10.746  357  1.9206  224  1.5755  337
//	zstdenc before huff.go  4.1519 1180  1.1691  684  10.746  287  1.9209  169  1.5756  249
//	klauspost fastest+lits  4.0876  541  1.1689  339   7.814  194  1.8722  114  1.5529  166
//	klauspost default+lits  4.1509  456  1.1691  390  11.016  186  1.9636   65  1.6429   74
//	klauspost fastest       3.15   1992  1.00  6338   7.81  235   -        -    1.24   265
//
// (the "before" row and klauspost's are from earlier runs, when libzstd
// measured 1779, 928, 525, 272 and 379 MB/s, and 761, 560, 316, 172 and
// 257: absolute speeds move by a third or more from run to run on the
// shared VM, the order does not; klauspost's fastest level stores the
// literals of blocks without matches raw, so sensor noise is not
// compressed at all; "+lits" is WithAllLitEntropyCompression.) Ours
// reaches libzstd's ratio on every fill (rand: 14,350,551 B against
// 14,350,554 B) at 0.95 of its speed per core on thirds, 0.85 on the
// camera fills, 0.83 on rand and 0.65 on xor (what is left: the sequence
// coder and the parse loop, which spill registers, and the Huffman
// streams); klauspost's fastest level is faster but 1-27% larger, its
// default level, the only other one at libzstd's ratio, slower still on
// camera data. For sensor data blosc-zstd with byte shuffle is the
// better codec anyway (camera 2.47, rand 1.33: see blosc.Geometry).
type LevelEncoder struct {
	level int
	own   *Encoder
	kz    *zstd.Encoder
}

// NewLevel makes an encoder for frames of at most maxInput bytes (the
// window: no match reaches further back).
func NewLevel(level, maxInput int) (*LevelEncoder, error) {
	if level < -7 || level > 22 {
		return nil, fmt.Errorf("zstd level %d out of range -7..22", level)
	}
	l := &LevelEncoder{level: level}
	if level <= 1 {
		l.own = new(Encoder)
		return l, nil
	}
	opts := []zstd.EOption{
		zstd.WithEncoderLevel(KlauspostLevel(level)),
		// One frame per call on one goroutine: callers parallelise over
		// chunks, not inside one.
		zstd.WithEncoderConcurrency(1),
		// Zarr's zstd codec is configured with checksum: false, and
		// c-blosc writes its zstd frames without one.
		zstd.WithEncoderCRC(false),
		// Entropy-code the literals of blocks without matches too (the
		// default below SpeedBetterCompression stores them raw).
		zstd.WithAllLitEntropyCompression(true),
	}
	if maxInput <= singleMax {
		// A window larger than the input buys nothing but costs memory
		// (klauspost keeps window+128 KiB of history). Single-segment
		// frames always carry their content size (klauspost drops it for
		// frames under 256 bytes otherwise).
		opts = append(opts, zstd.WithSingleSegment(true), zstd.WithWindowSize(windowFor(maxInput)))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder (level %d): %w", level, err)
	}
	l.kz = enc
	return l, nil
}

// KlauspostLevel is the klauspost encoder a zstd level above 1 runs.
func KlauspostLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 4:
		return zstd.SpeedDefault
	case level <= 8:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

// Level is the zstd level the encoder was made for.
func (l *LevelEncoder) Level() int { return l.level }

// klauspostSlack is headroom per 128 KiB block beyond klauspost's
// MaxEncodedSize: its sequence writer grows its buffer when fewer than ~28
// bytes are left, even if the block then fits (measured: 16 bytes leave
// rare reallocations at SpeedBestCompression, 32 none).
const klauspostSlack = 64

// Bound is the room EncodeAll needs after len(dst) for n input bytes to
// write in place; BoundBlocks the same for EncodeAllBlocks.
func (l *LevelEncoder) Bound(n int) int { return l.BoundBlocks(n, 0) }

func (l *LevelEncoder) BoundBlocks(n, block int) int {
	if l.own != nil {
		return MaxEncodedSizeBlocks(n, block)
	}
	return l.kz.MaxEncodedSize(n) + klauspostSlack*(n/maxBlock+1)
}

// EncodeAll appends the frame of src to dst. When cap(dst)-len(dst) >=
// Bound(len(src)) the frame lands in dst's backing array.
func (l *LevelEncoder) EncodeAll(dst, src []byte) []byte { return l.EncodeAllBlocks(dst, src, 0) }

// EncodeAllBlocks is EncodeAll with zstd blocks of at most block bytes
// (0: 128 KiB) at level 1 (Encoder.EncodeAllBlocks); klauspost's levels
// choose their own.
func (l *LevelEncoder) EncodeAllBlocks(dst, src []byte, block int) []byte {
	if l.own != nil {
		return l.own.EncodeAllBlocks(dst, src, block)
	}
	out := l.kz.EncodeAll(src, dst)
	// klauspost may grow its buffer mid-block even when the block ends up
	// fitting; callers rely on the bytes landing in dst.
	if len(out) > 0 && len(out) <= cap(dst) && cap(dst) > 0 && &out[:1][0] != &dst[:1][0] {
		out = append(dst, out[len(dst):]...)
	}
	return out
}

// windowFor is the smallest power of two >= n that zstd accepts as a
// window size.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n {
		w *= 2
	}
	return w
}
