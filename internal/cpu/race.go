//go:build race

package cpu

// raceEnabled: this is a race-detector build (see copyNT).
const raceEnabled = true
