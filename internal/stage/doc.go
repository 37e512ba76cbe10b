// Package stage defines the compress-stage contract (Stage, Slot, Batch,
// Output) that the pipeline drives, and implements it on CPU cores (NewCPU):
// tiling frames into padded inner chunks (Layout.Tile, "lifted strides"),
// the CPU codecs (internal/codec) and
// aggregation of chunks into shard segments in the order Layout.Plan gives,
// which the GPU backend shares so both produce the same order.
//
// It owns no goroutines beyond its worker pool (started by NewCPU, joined by
// Close) and knows nothing of sinks, files or the pipeline's schedule; it
// never prints. stage.go is the shared contract: extend it only additively.
package stage
