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

// singleSegmentMax is klauspost's default window (8 MiB). Chunks up to it
// are written as single-segment frames, which always carry the frame
// content size (the encoder would drop it for frames under 256 bytes
// otherwise); larger chunks are multi-segment frames, whose content size
// (>= 256) is always written.
const singleSegmentMax = 8 << 20

// NewChunkEncoder makes an encoder for spec's codec and level.
func NewChunkEncoder(spec *zarr.Spec) (*ChunkEncoder, error) {
	e := &ChunkEncoder{codec: spec.Codec, chunkBytes: int(spec.ChunkBytes())}
	switch spec.Codec {
	case zarr.CodecNone:
	case zarr.CodecZstd:
		// The klauspost settings for the level are the blosc package's, so
		// that plain zstd and blosc-zstd streams are made the same way.
		opts := blosc.ZstdEncoderOptions(spec.Level)
		if e.chunkBytes <= singleSegmentMax {
			// A window larger than the chunk buys nothing (no match can
			// reach further back than the chunk's start) but costs memory
			// per encoder: klauspost keeps window+128 KiB of history. (The
			// window comes after the level: klauspost's fastest level keeps
			// its 64 KiB blocks only then.)
			opts = append(opts, zstd.WithSingleSegment(true), zstd.WithWindowSize(blosc.WindowFor(e.chunkBytes)))
		}
		enc, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			return nil, fmt.Errorf("new zstd encoder (level %d): %w", spec.Level, err)
		}
		e.zstd = enc
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
		// What the store's metadata records: blosc cname lz4 or zstd,
		// clevel = level, the spec's shuffle, typesize = dtype size,
		// blocksize 0 (the blosc package's default for the compressor).
		if spec.Level < 0 || spec.Level > 9 {
			return nil, fmt.Errorf("new chunk encoder: %v (blosc clevel) level %d out of range 0..9", spec.Codec, spec.Level)
		}
		e.blosc = new(blosc.Encoder)
		e.bloscOpts = blosc.Options{TypeSize: spec.DType.Size(), CLevel: spec.Level, Shuffle: spec.Shuffle}
		if spec.Codec == zarr.CodecBloscZstd {
			e.bloscOpts.Compressor = blosc.Zstd
		}
	default:
		return nil, fmt.Errorf("new chunk encoder: codec %v is not supported by the cpu stage", spec.Codec)
	}
	return e, nil
}

// Bound is the room Encode needs after len(dst), for a chunk of n bytes, to
// write in place without allocating.
func (e *ChunkEncoder) Bound(n int) int {
	switch e.codec {
	case zarr.CodecZstd:
		return blosc.ZstdBound(e.zstd, n)
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
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
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
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
