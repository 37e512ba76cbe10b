package blosc

// Shuffle and Geometry internals for the external benchmarks (lz4_bench_test.go),
// which need internal/bench's fills and so cannot live in package blosc.
var ShuffleBlock = shuffle
var NoAVX2 = &noAVX2
