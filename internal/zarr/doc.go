// Package zarr is the Zarr v3 format as zwrite writes it: the array spec
// and its geometry (epochs, inner chunks, shards), zarr.json encoding and
// parsing, the sharding_indexed shard index, chunk keys, and a reader used
// by verify, cat and the tests. It is pure format: no goroutines, and files
// only through an fs.FS the caller hands in.
package zarr
