//go:build race

package blosc

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// klauspost's zstd decoder allocates; allocation counts are only checked
// without it.
const raceEnabled = true
