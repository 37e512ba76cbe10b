// Package sink is where finished bytes go: a store directory (temp file,
// rename, so a file is visible only complete), a discard sink for benches,
// an in-memory sink, and test sinks that are slow, stall or fail. It knows
// nothing of Zarr beyond keys.
package sink
