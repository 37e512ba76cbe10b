//go:build !race

package cpu

// raceEnabled: this is not a race-detector build (see copyNT).
const raceEnabled = false
