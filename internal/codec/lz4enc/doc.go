// Package lz4enc is LZ4_compress_fast of the reference lz4.c (1.9/1.10)
// for the blocks blosc-lz4 compresses: the same bytes as lz4.c (so as
// c-blosc, pierrec's CompressorCCompat and the GPU kernel in
// internal/gpu/kernels/lz4.cu), made faster for inputs below lz4.c's
// LZ4_64Klimit (every stream of a blosc block up to 64 KiB), where lz4.c
// uses its 16-bit table and never checks match distances. Larger inputs go
// to pierrec's port unchanged.
//
// It owns no goroutines and no files. Tests compare its output with
// pierrec's CompressorCCompat byte for byte and decode it with pierrec's
// decoder; internal/blosc's TestNumcodecs compares the blosc buffers with
// c-blosc's.
package lz4enc
