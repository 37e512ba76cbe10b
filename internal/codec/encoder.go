package codec

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/codec/zstdenc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// ChunkEncoder compresses one padded inner chunk with the spec's codec, the
// same way the CPU stage does. It is not safe for concurrent use: make one
// per goroutine. The bench's codec-ceiling baseline and the GPU tests use
// it as the reference.
type ChunkEncoder struct {
	codec      zarr.Codec
	chunkBytes int
	zstd       *zstdenc.LevelEncoder
	blosc      *blosc.Encoder
	bloscOpts  blosc.Options
}

// NewChunkEncoder makes an encoder for spec's codec and level.
func NewChunkEncoder(spec *zarr.Spec) (*ChunkEncoder, error) {
	e := &ChunkEncoder{codec: spec.Codec, chunkBytes: int(spec.ChunkBytes())}
	switch spec.Codec {
	case zarr.CodecNone:
	case zarr.CodecZstd:
		// One frame per chunk, made the way blosc's zstd streams are
		// (zstdenc.LevelEncoder says how, and why level 1 is our own
		// encoder).
		enc, err := zstdenc.NewLevel(spec.Level, e.chunkBytes)
		if err != nil {
			return nil, fmt.Errorf("new chunk encoder: %w", err)
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
		return e.zstd.Bound(n)
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
		return e.zstd.EncodeAll(dst, src), nil
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
		return e.blosc.Encode(dst, src, e.bloscOpts), nil
	}
	return dst, fmt.Errorf("encode chunk: codec %v is not supported", e.codec)
}

// PreShuffle reports whether the codec byte-shuffles each chunk before
// compressing it (blosc with byte shuffle, typesize above 1), and so
// takes input already in that layout through EncodeShuffled: ts is the
// typesize and bs the blosc block each shuffle covers
// (blosc.ShuffledOffset maps a byte of the chunk to its place).
func (e *ChunkEncoder) PreShuffle() (ts, bs int, ok bool) {
	if e.blosc == nil {
		return 0, 0, false
	}
	bs, ok = blosc.PreShuffled(e.bloscOpts, e.chunkBytes)
	return e.bloscOpts.TypeSize, bs, ok
}

// EncodeShuffled is Encode of a chunk laid out as PreShuffle says (each
// blosc block already byte-shuffled): the same bytes, without the
// shuffle pass. Only for an encoder whose PreShuffle is ok, on a chunk of
// the spec's size.
func (e *ChunkEncoder) EncodeShuffled(dst, src []byte) ([]byte, error) {
	if _, _, ok := e.PreShuffle(); !ok || len(src) != e.chunkBytes {
		return dst, fmt.Errorf("encode pre-shuffled chunk: codec %v (shuffle %v) of %d bytes takes no pre-shuffled input of %d", e.codec, e.bloscOpts.Shuffle, e.chunkBytes, len(src))
	}
	return e.blosc.EncodeShuffled(dst, src, e.bloscOpts), nil
}

// Close releases the encoder's resources (none beyond memory today; kept
// so that callers need not know).
func (e *ChunkEncoder) Close() error { return nil }
