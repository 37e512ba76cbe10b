// Package stage defines the compress-stage contract (Stage, Slot, Batch,
// Output) that the pipeline drives, and implements it on CPU cores:
// tiling frames into padded inner chunks, the CPU codecs (klauspost zstd,
// LZ4 in blosc1 framing) and aggregation of chunks into shard segments.
// It owns no goroutines beyond its worker pool and knows nothing of sinks.
package stage
