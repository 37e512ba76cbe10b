// Package blosc is the blosc1 buffer format with the LZ4 compressor, as the
// Zarr "blosc" codec stores it (cname lz4): an encoder that reproduces
// c-blosc's layout rules (header, block split into byte-plane streams, raw
// streams, whole-buffer memcpy fallback) and a strict decoder for reading
// stores written by us, tensorstore, zarr-python or numcodecs.
//
// It owns only the byte format: no goroutines, no files, no knowledge of
// arrays or shards (internal/zarr and internal/stage call it). The rules it
// follows are written down in shared/GPU-CODECS.md §2.2; the GPU encoder in
// internal/gpu must produce buffers this decoder accepts.
//
// The shuffle filters (shuffle.go) move whole words, with SSE2 kernels on
// amd64 (build tag purego selects the pure-Go loops); tests compare every
// path with the one-byte reference loops. Byte shuffle and the encoder are
// checked against c-blosc's own output (tensorstore fixture, byte for
// byte). Bit shuffle follows the bitshuffle
// library's scalar algorithm and c-blosc 1.x's rules for it, but no
// c-blosc-written bit-shuffled buffer has been checked yet.
package blosc
