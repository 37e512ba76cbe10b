//go:build !unix

package bench

import "time"

// cpuTime is not available here; the report's CPU fields stay zero.
func cpuTime() time.Duration { return 0 }
