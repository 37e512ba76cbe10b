// Package codectest holds test helpers for code that produces encoded
// chunks (the CPU and GPU backends, the codec package).
package codectest

import (
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Decode undoes spec's codec on one encoded chunk b with decoders
// independent of the encoders under test (klauspost's zstd reader, the
// strict blosc decoder), checking the frame properties the store's
// metadata promises: zstd frames carry their content size and no checksum;
// blosc buffers name the spec's compressor, shuffle and typesize.
func Decode(t testing.TB, spec *zarr.Spec, b []byte) []byte {
	t.Helper()
	switch spec.Codec {
	case zarr.CodecNone:
		return b
	case zarr.CodecZstd:
		var h zstd.Header
		if err := h.Decode(b); err != nil {
			t.Fatalf("zstd header: %v", err)
		}
		if !h.HasFCS || h.HasCheckSum {
			t.Fatalf("zstd frame: content size present %v (want true), checksum %v (want false)", h.HasFCS, h.HasCheckSum)
		}
		d, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		out, err := d.DecodeAll(b, nil)
		if err != nil {
			t.Fatalf("zstd decode: %v", err)
		}
		if h.FrameContentSize != uint64(len(out)) {
			t.Fatalf("zstd frame content size %d, decoded %d", h.FrameContentSize, len(out))
		}
		return out
	case zarr.CodecLZ4, zarr.CodecBloscZstd:
		h, err := blosc.ParseHeader(b)
		if err != nil {
			t.Fatalf("blosc header: %v", err)
		}
		if h.CompressorName() != spec.Codec.BloscCName() || h.Shuffle() != spec.Shuffle || h.TypeSize != spec.DType.Size() || h.CBytes != len(b) {
			t.Fatalf("blosc header %+v (compressor %s, shuffle %v) of a %d-byte buffer; want %s, shuffle %v, typesize %d", h, h.CompressorName(), h.Shuffle(), len(b), spec.Codec.BloscCName(), spec.Shuffle, spec.DType.Size())
		}
		out, err := blosc.Decode(nil, b)
		if err != nil {
			t.Fatalf("blosc decode: %v", err)
		}
		return out
	}
	t.Fatalf("no decoder for %v", spec.Codec)
	return nil
}
