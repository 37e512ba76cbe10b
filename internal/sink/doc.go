// Package sink is where finished bytes go. Open prepares an output store
// for one run: it refuses to touch anything that is not a Zarr store,
// takes the store's lock (one writer per store), and with Overwrite
// writes the new store beside the old one until Finish swaps it in, so a
// run that fails leaves the old store as it was. The Sink it hands out is
// a directory (temp file, rename: a file is visible only complete);
// Discard drops bytes for benchmarks; Sub is a sink under a key prefix.
// Test sinks (in memory, slow, stalled, failing, recording) live in
// sinktest.
//
// It knows of Zarr only what the overwrite check needs (which entries a
// store may hold); the pipeline decides what is written.
package sink
