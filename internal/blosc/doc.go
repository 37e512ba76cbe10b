// Package blosc is the blosc1 buffer format with the LZ4 and zstd
// compressors, as the Zarr "blosc" codec stores it (cname lz4 or zstd):
// an encoder that reproduces c-blosc 1.x's layout rules and a strict
// decoder for reading stores written by us, tensorstore, zarr-python or
// numcodecs.
//
// It owns only the byte format: no goroutines, no files, no knowledge of
// arrays or shards (internal/zarr and internal/codec call it). The GPU
// encoder in internal/gpu follows Geometry and must produce buffers this
// decoder accepts. The rules, with where c-blosc 1.x (blosc/blosc.c,
// blosc/shuffle.c) sets them:
//
//   - Header (README_HEADER.rst): version 2, then the compressor's format
//     version (1 for both LZ4 and zstd: BLOSC_LZ4_VERSION_FORMAT,
//     BLOSC_ZSTD_VERSION_FORMAT; the decoder refuses others, as
//     initialize_decompress_func does), flags (shuffle bits, DONT_SPLIT,
//     compressor code 1 for LZ4 and 4 for zstd in bits 5-7), typesize,
//     sizes. GPU-CODECS.md §2.2 has the byte layout.
//   - Splits (split_block, FORWARD_COMPAT mode, c-blosc's default): LZ4
//     blocks of at most 16-byte elements and at least 128 of them are
//     stored as one stream per byte plane; zstd blocks never are. The
//     decoder follows blosc_d: split unless DONT_SPLIT, the leftover
//     block, typesize > 16 or fewer than 128 elements.
//   - Streams (blosc_c): a stream the compressor cannot shrink is stored
//     raw (csize == its size); a buffer that would not fit in its input
//     plus the header is stored memcpyed, as is clevel 0 and input under
//     128 bytes. Every stream must decode to exactly its share of the
//     block (blosc_d: nbytes != neblock is an error); a zstd stream is
//     decoded into a buffer capped at that share.
//   - Levels: LZ4 runs with acceleration 10-clevel (get_accel); zstd at
//     level 2*clevel-1, 22 at clevel 9 (zstd_wrap_compress; ZstdLevel),
//     each stream one whole zstd frame (ZSTD_compressCCtx).
//   - Byte shuffle (shuffle_generic): a transpose of the block's elements
//     into byte planes, trailing bytes copied; only for typesize > 1.
//   - Bit shuffle (blosc_internal_bitshuffle): bitshuffle's
//     bshuf_trans_bit_elem over the block's elements when their count is a
//     multiple of 8, the bytes after the last whole element copied; a
//     block whose element count is not a multiple of 8 is copied whole,
//     and a block shorter than one element is left alone.
//
// TestNumcodecs checks all of this against c-blosc itself (numcodecs'
// WebAssembly build): c-blosc decodes every filter, compressor, typesize
// and block-size case our encoder writes, we decode c-blosc's, and our
// lz4 buffers are byte for byte c-blosc's. TestTensorstoreFixture does
// the same for tensorstore's blosc-lz4 store.
//
// The LZ4 streams come from internal/codec/lz4enc, which writes what
// lz4.c's LZ4_compress_fast writes (c-blosc's compressor, and what the GPU
// kernel reproduces), faster than pierrec's port of it; pierrec's decoder
// reads them.
//
// The shuffle filters (shuffle.go) move whole words, with SSE2 kernels on
// amd64 and AVX2 for typesize 2 where the CPU has it (build tag purego
// selects the pure-Go loops); tests compare every path with the one-byte
// reference loops.
package blosc
