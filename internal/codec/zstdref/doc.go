// Package zstdref is libzstd 1.5.7, compiled from the sources
// github.com/DataDog/zstd bundles (cgo), as a measurement reference for
// the zstd encoders (internal/codec's TestMeasureCodecs; go.mod pins the
// module). 1.5.7 because tensorstore's bundled zstd writes the same
// bytes (its orca2 rand-fill store, 640 frames on the GPU machine, is 20
// times 1.5.7's 516,622,362 bytes of one epoch's chunks plus the shard
// indexes, to the byte), so the references agree. It is built only
// with -tags zstdref (the C sources compile in about a minute);
// otherwise Level returns nil and the measurements run without it. Nothing
// in zwrite uses it.
package zstdref
