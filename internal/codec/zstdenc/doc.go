// Package zstdenc is a zstd encoder (RFC 8878) of libzstd level 1's class
// for the zwrite CPU codecs: one frame per call, a greedy single-table
// match finder, Huffman-coded literals (our own coder, huff.go, reusing
// the previous block's table when that is cheaper; klauspost's fse codes
// the table's weights) and FSE-coded sequences with predefined, RLE or
// per-block tables. It exists because klauspost's encoder levels trade
// ratio and speed differently from libzstd on sensor data: see
// internal/codec's ChunkEncoder for the measurements.
//
// It owns no goroutines and no files; its output is checked by
// klauspost's decoder and libzstd (tests, and the interop check).
package zstdenc
