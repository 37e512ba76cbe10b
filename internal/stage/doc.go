// Package stage defines the compress-stage contract that the pipeline
// drives and both backends (internal/cpu, internal/gpu) implement: Stage,
// Slot, Batch, Output and the optional Canceler and CopyHinter;
// the slot life cycle they share (Life, Slots); and the chunk
// and segment plan (Layout, Plan), the one definition of tiling and chunk
// order, so both backends produce the same bytes in the same order.
//
// It owns no goroutines and no backend code, knows nothing of sinks, files
// or the pipeline's schedule, and never prints. stage.go is the shared
// contract: extend it only additively. stagetest is its conformance suite.
package stage
