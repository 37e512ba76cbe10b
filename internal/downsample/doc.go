// Package downsample reduces frames by 2 along chosen dimensions, the step
// from one level of a multiscale pyramid to the next: mean, min, max or
// decimate over each block of up to 2 elements per reduced dimension. An
// edge block (odd size) reduces only the elements that exist.
//
// Arithmetic, the same everywhere (CPU stage, GPU kernels, reference):
//   - integer mean: the exact sum in a wide accumulator (64 bits, 128 for
//     the 64-bit types), divided by the count of existing elements,
//     rounded half to even (so a constant stays constant at every level
//     and rounding has no bias);
//   - float mean: the sum in float64 (compensated for float64 input),
//     divided by the count, rounded to the type once; NaN propagates;
//   - min and max: of the existing elements (a NaN in the block makes the
//     canonical quiet NaN);
//   - decimate: the first element of the block (even indices).
//
// Each level is made from the level above it, so level k is these rules
// applied k times (what verify recomputes with Reference, an independent
// element-by-element implementation using exact rationals).
//
// It owns no goroutines and no files: Block reduces a range of output
// frames, so callers split the work across their own workers.
package downsample
