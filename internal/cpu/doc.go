// Package cpu is the compress backend on CPU cores (New): a worker pool
// shared by all slots tiles each batch's frames into padded inner chunks
// in the order stage.Layout plans, compresses them with the CPU codecs
// (internal/codec) and aggregates them into shard segments, and reduces
// the batch for the next pyramid level when asked. Fed through
// stage.FrameWriter, it scatters the producer's bytes straight into
// chunk-major order (non-temporal stores), splitting large writes over
// the same workers, which take those parts before their next chunk.
//
// It implements internal/stage's contract and passes its conformance
// suite (stagetest); it never imports internal/gpu, and owns no goroutines
// beyond its workers (started by New, joined by Close).
package cpu
