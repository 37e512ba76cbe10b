// Package codec compresses one padded inner chunk on the CPU with a spec's
// codec (ChunkEncoder: zstd frames from zstdenc.LevelEncoder, LZ4 or zstd
// in blosc1 framing). The CPU backend compresses with it, and it is the
// reference the GPU tests and the bench's codec-ceiling baseline compare
// against. Subpackages: zstdenc (the zstd encoder and the one choice of
// encoder per level), codectest (test helpers: the independent decoder,
// a camera-like generator), zstdref (libzstd for measurements, opt-in).
//
// It owns no goroutines, no files and no knowledge of shards or batches:
// one chunk in, its encoded bytes out.
package codec
