package codec

import (
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// ChunkEncoder compresses one padded inner chunk with the spec's codec, the
// same way the CPU stage does. It is not safe for concurrent use: make one
// per goroutine. The bench's codec-ceiling baseline and the GPU tests use
// it as the reference.
type ChunkEncoder struct {
	codec      zarr.Codec
	chunkBytes int
	zstd       *zstd.Encoder
	blosc      *blosc.Encoder
	bloscOpts  blosc.Options
}

// zstdLevel maps a Zarr zstd level (-7..22) onto klauspost's four encoder
// levels: <= 1 SpeedFastest, 2..4 SpeedDefault, 5..8 SpeedBetterCompression,
// >= 9 SpeedBestCompression. Level 1 (the default) is the fastest path,
// which is what live acquisition wants; the cut points follow the speed and
// ratio of the reference zstd levels each klauspost level resembles.
func zstdLevel(level int) zstd.EncoderLevel {
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

// singleSegmentMax is klauspost's default window (8 MiB). Chunks up to it
// are written as single-segment frames, which always carry the frame
// content size (the encoder would drop it for frames under 256 bytes
// otherwise); larger chunks are multi-segment frames, whose content size
// (>= 256) is always written.
const singleSegmentMax = 8 << 20

// windowFor is the smallest power of two >= n that zstd accepts as a
// window size.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n {
		w *= 2
	}
	return w
}

// NewChunkEncoder makes an encoder for spec's codec and level.
func NewChunkEncoder(spec *zarr.Spec) (*ChunkEncoder, error) {
	e := &ChunkEncoder{codec: spec.Codec, chunkBytes: int(spec.ChunkBytes())}
	switch spec.Codec {
	case zarr.CodecNone:
	case zarr.CodecZstd:
		opts := []zstd.EOption{
			zstd.WithEncoderLevel(zstdLevel(spec.Level)),
			// One chunk per call on one goroutine: the stage parallelises
			// over chunks, not inside one.
			zstd.WithEncoderConcurrency(1),
			// The store's metadata says checksum: false.
			zstd.WithEncoderCRC(false),
		}
		if e.chunkBytes <= singleSegmentMax {
			// A window larger than the chunk buys nothing (no match can
			// reach further back than the chunk's start) but costs memory
			// per encoder: klauspost keeps window+128 KiB of history.
			opts = append(opts, zstd.WithSingleSegment(true), zstd.WithWindowSize(windowFor(e.chunkBytes)))
		}
		enc, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			return nil, fmt.Errorf("new zstd encoder (level %d): %w", spec.Level, err)
		}
		e.zstd = enc
	case zarr.CodecLZ4:
		// What the store's metadata records: blosc cname lz4, clevel =
		// level, the spec's shuffle, typesize = dtype size, blocksize 0 (the
		// blosc package's default, as c-blosc picks for lz4).
		e.blosc = new(blosc.Encoder)
		e.bloscOpts = blosc.Options{TypeSize: spec.DType.Size(), CLevel: spec.Level, Shuffle: spec.Shuffle}
		if spec.Level < 0 || spec.Level > 9 {
			return nil, fmt.Errorf("new chunk encoder: lz4 (blosc clevel) level %d out of range 0..9", spec.Level)
		}
	default:
		return nil, fmt.Errorf("new chunk encoder: codec %v is not supported by the cpu stage", spec.Codec)
	}
	return e, nil
}

// zstdSlack is headroom per 128 KiB block beyond MaxEncodedSize: the
// sequence writer grows its buffer when fewer than ~28 bytes are left, even
// if the block then ends up within MaxEncodedSize (measured: 16 bytes
// leave rare reallocations at SpeedBestCompression, 32 none).
const zstdSlack = 64

// Bound is the room Encode needs after len(dst), for a chunk of n bytes, to
// write in place without allocating.
func (e *ChunkEncoder) Bound(n int) int {
	switch e.codec {
	case zarr.CodecZstd:
		blocks := n/(128<<10) + 1
		return e.zstd.MaxEncodedSize(n) + zstdSlack*blocks
	case zarr.CodecLZ4:
		return blosc.MaxEncodedSize(n)
	}
	return n
}

// Encode appends the encoded src to dst and returns the extended slice.
// When cap(dst)-len(dst) >= Bound(len(src)) the result is always in dst's
// backing array, and no allocation happens except in pathological cases.
func (e *ChunkEncoder) Encode(dst, src []byte) ([]byte, error) {
	switch e.codec {
	case zarr.CodecNone:
		return append(dst, src...), nil
	case zarr.CodecZstd:
		out := e.zstd.EncodeAll(src, dst)
		// The encoder may grow its buffer mid-block even when the block
		// ends up fitting; callers rely on the bytes landing in dst.
		if len(out) > 0 && len(out) <= cap(dst) && cap(dst) > 0 && &out[:1][0] != &dst[:1][0] {
			out = append(dst[:len(dst)], out[len(dst):]...)
		}
		return out, nil
	case zarr.CodecLZ4:
		return e.blosc.Encode(dst, src, e.bloscOpts), nil
	}
	return dst, fmt.Errorf("encode chunk: codec %v is not supported", e.codec)
}

// Close releases the encoder's resources.
func (e *ChunkEncoder) Close() error {
	if e.zstd != nil {
		return e.zstd.Close()
	}
	return nil
}
