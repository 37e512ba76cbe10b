// Package bench is zwrite's end-to-end benchmark: the reference scenarios
// (256cube, orca2, medfmt, smallepoch and custom shapes), the synthetic
// fills (xor, zeros, rand, thirds, camera) that the CLI's synth command and the
// tests also use, the timed run of a pipeline.Writer with --prefill, the
// same-run baselines (parallel memmove, CPU codec ceiling) and the
// versioned JSON record with the machine it ran on.
//
// It drives the pipeline, stage, backend and sink packages through their
// public APIs only and never changes them. It prints nothing itself: Run
// returns a Report, and the CLI decides where its table and JSON go.
package bench
