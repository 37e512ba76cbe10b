// Package pipeline is zwrite's writer: it owns the goroutines and the order
// between them. A Writer takes raw frames through Write (or ReadFrom),
// copies them into the current slot's staging buffer (split across copy
// helpers when large), kicks a full slot to the compress stage, and hands
// the batch to one delivery worker that appends its shard segments to the
// open shard files of the sink, oldest batch first (shared/DESIGN.md "Data
// flow", rules 1–7). It keeps backpressure, teardown and per-stage counters.
//
// It knows the compress stage and the sink only through their interfaces
// (internal/stage, internal/sink), never which backend or store is behind
// them, and it prints nothing: Stats is data for the CLI and the bench.
package pipeline
