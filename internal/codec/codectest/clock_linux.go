package codectest

import (
	"syscall"
	"unsafe"
)

// ThreadClock reads CLOCK_THREAD_CPUTIME_ID (Linux clock id 3) in
// seconds: the CPU time of the calling thread, which counts in nanoseconds
// where getrusage counts in scheduler ticks, and which other load on a
// shared machine does not inflate. Callers lock their goroutine to its
// thread (runtime.LockOSThread) around what they time.
func ThreadClock() float64 {
	var ts syscall.Timespec
	// unsafe: the kernel writes one Timespec through the pointer, and ts
	// stays live (on this stack) for the call.
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}
