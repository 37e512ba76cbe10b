// Package zstdref is libzstd, through cgo, as a measurement reference for
// the zstd encoders (internal/codec's TestMeasureCodecs). It is built only
// with -tags zstdref (and libzstd-dev installed); otherwise Level returns
// nil and the measurements run without it. Nothing in zwrite uses it.
package zstdref
