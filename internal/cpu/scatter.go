package cpu

import (
	"runtime"
	"sync/atomic"
	"time"
)

// The scatter (WriteFrames) is split over the stage's workers: a large
// write is posted as a job of parts (whole lines of the frame where they
// are not too long, so that parts never share a destination cache line),
// the producer works through the parts itself, and every worker takes
// parts of a posted job before its next claim of compression work. So the
// producer, one goroutine, is no longer the limit on many cores (one core
// scatters at a fraction of the socket's bandwidth: 2.7 GB/s per busy
// second on the 16-core machine, where the codec ran at 8-20 GB/s on all
// cores), and no core idles waiting for it: a worker that has nothing to
// compress because the producer is behind helps the producer instead.
//
// A job lives in the stage's fixed pool (no allocation per write); when
// the pool is taken (more concurrent writers than maxJobs) a write
// scatters alone, as before.

// maxJobs bounds the writes posted at once: the pipeline writes from one
// producer (plus its copy helpers, which the CPU stage asks to be none).
const maxJobs = 8

// scatterPart is the bytes per part (rounded to whole lines): large
// enough that a claim (one CAS) and a helper's wake-up are noise, small
// enough that the producer, which waits for the parts others took, waits
// a fraction of a part's time (~0.1 ms at ~10 GB/s). A variable so that
// tests can split tiny writes.
var scatterPart int64 = 1 << 20

// scatterMin is the smallest write that is split; smaller ones are
// scattered by the caller alone. A variable for the tests.
var scatterMin int64 = 2 << 20

// scatterJob is one posted write. Its fields are set by the owner (the
// WriteFrames call) under the stage's lock before gen is published in
// claim; a helper reads them only after claiming a part of that
// generation, and the owner does not reuse the job before every claimed
// part is done (left reaches 0), so a helper never sees a later write's
// fields with an earlier claim.
type scatterJob struct {
	// Under Stage.mu: whether the job is posted, and its generation.
	inUse bool
	gen   uint32
	n     int64 // parts

	claim atomic.Uint64 // gen<<32 | next unclaimed part
	left  atomic.Int64  // parts not yet done
	done  chan struct{} // capacity 1: the part that brings left to 0 sends

	sl        *cpuSlot
	p         []byte
	off, base int64 // the write's input offset; the offset parts are counted from
	part      int64 // bytes per part
}

// splitUnit is the granularity of part boundaries, in input bytes: whole
// lines when a line is at most 4 MiB (a part then starts where a line's
// first segment does, so every part begins chunk-aligned and two parts
// never write one cache line), else pages.
func (g *chunkMajor) splitUnit() int64 {
	if g.rank >= 2 && g.lineBytes <= 4<<20 {
		return g.lineBytes
	}
	return 4096
}

// post sets up a job for p at off of sl's input, or returns nil when the
// write is too small to split or the pool is taken.
func (s *Stage) post(sl *cpuSlot, p []byte, off int64) (*scatterJob, uint32, int64) {
	if int64(len(p)) < scatterMin || len(s.workers) < 2 {
		return nil, 0, 0
	}
	unit := sl.cm.splitUnit()
	part := max(unit, (scatterPart+unit-1)/unit*unit)
	base := off / part * part
	n := (off + int64(len(p)) - base + part - 1) / part
	if n < 2 {
		return nil, 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.jobs {
		j := &s.jobs[i]
		if j.inUse {
			continue
		}
		j.inUse = true
		j.gen++
		if j.gen == 0 {
			j.gen = 1
		}
		j.n = n
		j.sl, j.p, j.off, j.base, j.part = sl, p, off, base, part
		j.left.Store(n)
		j.claim.Store(uint64(j.gen) << 32)
		s.open.Add(1)
		s.cond.Broadcast() // idle workers help at once
		return j, j.gen, n
	}
	return nil, 0, 0
}

// release returns the owner's job to the pool once every part is done.
func (s *Stage) release(j *scatterJob) {
	s.mu.Lock()
	j.inUse = false
	j.sl, j.p = nil, nil
	s.mu.Unlock()
}

// openJob finds a posted job with parts left to claim (nil if none). The
// caller holds s.mu.
func (s *Stage) openJob() (*scatterJob, uint32, int64) {
	for i := range s.jobs {
		j := &s.jobs[i]
		if j.inUse && int64(uint32(j.claim.Load())) < j.n {
			return j, j.gen, j.n
		}
	}
	return nil, 0, 0
}

// help does parts of posted jobs until none is left to claim; it reports
// whether it did any. Workers call it between claims of compression work.
func (s *Stage) help() bool {
	did := false
	for s.open.Load() > 0 {
		s.mu.Lock()
		j, gen, n := s.openJob()
		s.mu.Unlock()
		if j == nil {
			break
		}
		if j.run(s, gen, n, false) {
			did = true
		}
	}
	return did
}

// run claims and scatters parts of job generation gen until none is left;
// it reports whether it did any. owner: the caller is the write's own
// WriteFrames call.
func (j *scatterJob) run(s *Stage, gen uint32, n int64, owner bool) bool {
	did := false
	for {
		v := j.claim.Load()
		if uint32(v>>32) != gen {
			return did
		}
		i := int64(uint32(v))
		if i >= n {
			return did
		}
		if !j.claim.CompareAndSwap(v, v+1) {
			continue
		}
		if i == n-1 {
			s.open.Add(-1) // the last part is claimed: nothing left to help with
		}
		did = true
		lo := max(j.off, j.base+i*j.part)
		hi := min(j.off+int64(len(j.p)), j.base+(i+1)*j.part)
		j.sl.put(j.p[lo-j.off:hi-j.off], lo)
		if j.left.Add(-1) == 0 {
			j.done <- struct{}{}
			if !owner {
				// The owner (the producer) waits for this part: let it
				// have this core now rather than at the next preemption.
				runtime.Gosched()
			}
		}
	}
}

// put writes p at off of the slot's chunk-major input (and of its
// frame-order staging with a next pyramid level), timing it.
func (sl *cpuSlot) put(p []byte, off int64) {
	t0 := time.Now()
	sl.cm.write(sl.chunks, p, off)
	if sl.stage.down != nil {
		copy(sl.staging[off:], p)
	}
	sl.scatterNs.Add(int64(time.Since(t0)))
}

// writeFrames scatters p at off, split over the workers when it is large.
func (sl *cpuSlot) writeFrames(p []byte, off int64) {
	s := sl.stage
	j, gen, n := s.post(sl, p, off)
	if j == nil {
		sl.put(p, off)
		return
	}
	j.run(s, gen, n, true)
	<-j.done // every part is done, whoever did it
	s.release(j)
}
