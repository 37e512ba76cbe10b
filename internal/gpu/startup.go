package gpu

import "time"

// StartupTimes is where a GPU stage's start-up went, so the CLI can print
// start-up time split up and a slow start says what to blame. It is data:
// the CLI renders it.
type StartupTimes struct {
	// DriverInit is loading libcuda, cuInit and creating the device's
	// primary context: paid once per process, by whoever came first (a
	// backend probe may have), so every stage reports the same.
	DriverInit time.Duration
	// ModuleLoad is the stage's module loads together; Modules has each
	// one, with the image it took (a cubin, or PTX the driver JIT-compiled)
	// and why a cubin was not used.
	ModuleLoad time.Duration
	Modules    []ModuleLoad
	// Alloc is the device memory, streams and events of the slots made so
	// far.
	Alloc time.Duration
	// Prefault is pinning the slots' host buffers: cuMemHostAlloc faults
	// in and locks every page, the GPU stage's counterpart of the CPU
	// slot's pre-fault (a pinned buffer reused from a freed slot costs
	// nothing).
	Prefault time.Duration
}

// Startup reports the stage's start-up times so far (slots made later add
// to Alloc and Prefault). Safe to call from any goroutine.
func (s *Stage) Startup() StartupTimes {
	st := StartupTimes{DriverInit: loadTime + s.d.openTime}
	for _, m := range []*Module{s.tileMod, s.aggMod, s.codecMod} {
		if m != nil {
			l := m.Loaded()
			st.Modules = append(st.Modules, l)
			st.ModuleLoad += l.Load
		}
	}
	s.mu.Lock()
	st.Alloc, st.Prefault = s.allocTime, s.pinTime
	s.mu.Unlock()
	return st
}
