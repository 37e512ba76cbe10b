// Package zarr is the Zarr v3 format as zwrite writes it: the array spec
// and its geometry (epochs, inner chunks, shards), zarr.json encoding
// (MarshalArray) and parsing of ours and other writers' (ParseArray, Meta),
// the sharding_indexed shard index (AppendIndex, DecodeIndex), chunk keys,
// a reader (Open, Array.ReadAll/ReadChunk/Verify/Usage) used by verify,
// info, cat and the tests, and the nodes of group stores (ReadNode,
// WalkNodes, OpenArray). It is pure format: no goroutines, and files only
// through an fs.FS the caller hands in. It must not write stores: that is
// internal/stage, internal/pipeline and internal/sink. Codecs come from
// klauspost/compress (zstd) and internal/blosc (blosc1 with LZ4).
package zarr
