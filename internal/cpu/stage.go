package cpu

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/codec"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/hostmem"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Stage is the compress stage on CPU cores: a fixed pool of workers, shared by
// all slots, tiles and compresses the chunks of every kicked batch.
//
// Work distribution: Kick puts a ticket for its slot on a FIFO queue; idle
// workers look at the head ticket (without taking it) and claim ranges of
// that batch's chunks from an atomic counter until none are left, then drop
// the ticket and move to the next one. So all workers help with the oldest
// batch first, and the queue lock is taken only when switching batches.
//
// Output layout: chunk k (in Plan order) is compressed into its own
// fixed-capacity scratch slot at k*bound. A commit frontier moves finished
// chunks, in order, down to their final offsets in the same buffer (a move
// only goes left and never reaches slot k+1, so it cannot touch a chunk
// still being compressed). Whichever worker finishes a chunk advances the
// frontier if nobody else is; the worker that finishes the batch completes
// it. The bytes therefore depend only on the input, never on scheduling.
// The commit is serial but cheap: measured at about 1% of the compress
// time for zstd and lz4, so one committer keeps up with ~50+ workers.
//
// Memory per slot, allocated once by NewSlot: staging (maxFrames frames),
// scratch (one encoder bound per chunk of the largest batch, about the
// staging size; Output.Data lives in it), and the plan (a few words per
// chunk). Per worker: an encoder and Layout.MaxGroup padded chunk buffers.
type Stage struct {
	spec    zarr.Spec
	layout  *stage.Layout
	workers []*cpuWorker
	down    *stage.Downsample // nil: no next pyramid level

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []ticket // ring buffer
	qHead  int
	qLen   int
	closed bool // the workers stop once the queue is empty
	wg     sync.WaitGroup

	// Posted scatter jobs (scatter.go): the pool under mu, and open, the
	// jobs with parts left to claim, which workers read between claims.
	jobs [maxJobs]scatterJob
	open atomic.Int32

	slots stage.Slots
}

// ticket names one kicked batch of a slot. gen tells a stale ticket (its
// batch finished and the slot was kicked again) from the current one; n and
// grain travel in the ticket so that a worker holding a stale ticket reads
// nothing the next Kick may be writing.
type ticket struct {
	sl    *cpuSlot
	gen   uint32
	n     int64 // chunks in the batch
	grain int64 // chunks per claim
}

type cpuWorker struct {
	enc *codec.ChunkEncoder
	// tiles holds Layout.MaxGroup chunks: padded chunk buffers for codecs
	// that compress, or slice headers into the slot's scratch for none.
	tiles [][]byte
	one   [][]byte // a fused batch's chunk, read in place from the slot
	// out is where the encoder writes (one encoder bound): it stays in
	// this core's cache, and place copies the result to the slot.
	out []byte
}

// New starts a CPU stage with cfg.Workers workers (0 = GOMAXPROCS).
func New(cfg stage.Config) (stage.Stage, error) {
	spec := cfg.Spec.Clone()
	layout, err := stage.NewLayout(&spec)
	if err != nil {
		return nil, fmt.Errorf("new cpu stage: %w", err)
	}
	n := cfg.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s := &Stage{spec: spec, layout: layout, queue: make([]ticket, 16)}
	if cfg.Down != nil {
		if err := cfg.Down.Validate(&spec); err != nil {
			return nil, fmt.Errorf("new cpu stage: %w", err)
		}
		s.down = &stage.Downsample{Reduce: append([]bool(nil), cfg.Down.Reduce...), Method: cfg.Down.Method}
	}
	s.cond = sync.NewCond(&s.mu)
	for i := range s.jobs {
		s.jobs[i].done = make(chan struct{}, 1)
	}
	for i := 0; i < n; i++ {
		enc, err := codec.NewChunkEncoder(&spec)
		if err != nil {
			for _, w := range s.workers {
				w.enc.Close()
			}
			return nil, fmt.Errorf("new cpu stage: %w", err)
		}
		w := &cpuWorker{enc: enc, tiles: make([][]byte, layout.MaxGroup()), one: make([][]byte, 1)}
		if spec.Codec != zarr.CodecNone {
			w.out = make([]byte, enc.Bound(int(layout.ChunkBytes())))
		}
		if spec.Codec != zarr.CodecNone {
			for i := range w.tiles {
				w.tiles[i] = make([]byte, layout.ChunkBytes())
			}
		}
		s.workers = append(s.workers, w)
	}
	s.wg.Add(n)
	for _, w := range s.workers {
		go s.run(w)
	}
	return s, nil
}

// Name implements Stage.
func (s *Stage) Name() string { return "cpu" }

// CopyHelpers implements stage.CopyHinter: none. The stage splits large
// writes over its own workers (WriteFrames), which take the parts between
// chunks; copy helpers would be goroutines beyond the cores, waiting for
// a worker's preemption to run while the producer waits for them.
func (s *Stage) CopyHelpers() int { return 0 }

// Layout returns the stage's geometry.
func (s *Stage) Layout() *stage.Layout { return s.layout }

// Close stops the workers after they have drained the queue and waits for
// them. With slots not freed it refuses (stage.Slots); a second Close does
// nothing.
func (s *Stage) Close() error {
	first, err := s.slots.Close()
	if err != nil {
		return fmt.Errorf("cpu stage: %w", err)
	}
	if !first {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	var errs []error
	for _, w := range s.workers {
		if err := w.enc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Stage) push(t ticket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("kick: %w", stage.ErrClosed)
	}
	if s.qLen == len(s.queue) { // grow the ring; rare (more slots than ever before)
		q := make([]ticket, 2*len(s.queue))
		for i := 0; i < s.qLen; i++ {
			q[i] = s.queue[(s.qHead+i)%len(s.queue)]
		}
		s.queue, s.qHead = q, 0
	}
	s.queue[(s.qHead+s.qLen)%len(s.queue)] = t
	s.qLen++
	s.cond.Broadcast()
	return nil
}

// peek blocks for the oldest ticket or a posted scatter job (then t.sl is
// nil); ok is false once closed and drained.
func (s *Stage) peek() (t ticket, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.qLen == 0 && s.open.Load() == 0 && !s.closed {
		s.cond.Wait()
	}
	if s.qLen == 0 {
		return ticket{}, s.open.Load() > 0
	}
	return s.queue[s.qHead], true
}

// drop removes t if it is still the head (another worker may have done so).
func (s *Stage) drop(t ticket) {
	s.mu.Lock()
	if s.qLen > 0 && s.queue[s.qHead] == t {
		s.queue[s.qHead] = ticket{}
		s.qHead = (s.qHead + 1) % len(s.queue)
		s.qLen--
	}
	s.mu.Unlock()
}

func (s *Stage) run(w *cpuWorker) {
	defer s.wg.Done()
	for {
		t, ok := s.peek()
		if !ok {
			return
		}
		if t.sl == nil {
			s.help()
			continue
		}
		// Scatter parts first: the producer waits for them, and the
		// batches it fills are the work of the coming claims.
		for s.help() || t.sl.work(w, t) {
		}
		s.drop(t)
	}
}

// NewSlot implements Stage.
func (s *Stage) NewSlot(maxFrames int64) (stage.Slot, error) {
	if maxFrames <= 0 {
		return nil, fmt.Errorf("new slot: %d frames; want > 0", maxFrames)
	}
	l := s.layout
	maxChunks := l.Epochs(maxFrames) * l.ChunksPerEpoch()
	if maxChunks >= 1<<31 {
		// The claim counter keeps the chunk index in 32 bits.
		return nil, fmt.Errorf("new slot: %d frames make %d chunks per batch; the limit is 2^31, use fewer frames per batch or larger chunks", maxFrames, maxChunks)
	}
	bound := l.ChunkBytes()
	if len(s.workers) > 0 {
		bound = int64(s.workers[0].enc.Bound(int(l.ChunkBytes())))
	}
	cm := newChunkMajor(&s.spec)
	if len(s.workers) > 0 && s.spec.Codec != zarr.CodecNone {
		if ts, bs, ok := s.workers[0].enc.PreShuffle(); ok {
			cm.preShuffle(int64(ts), int64(bs))
		}
	}
	sl := &cpuSlot{
		stage:     s,
		maxFrames: maxFrames,
		cm:        cm,
		chunks:    make([]byte, cm.size(maxFrames)),
		plan:      l.NewPlan(maxFrames),
		bound:     bound,
		scratch:   make([]byte, maxChunks*bound),
		downBuf:   downBuffer(s, maxFrames),
		finished:  make([]atomic.Uint32, maxChunks),
		done:      make(chan struct{}, 1),
		life:      stage.NewLife(maxFrames),
		moving:    make([]moveRun, 2*len(s.workers)+2),
	}
	sl.tiledInPlace = s.spec.Codec == zarr.CodecNone
	if s.down != nil {
		// The reduction reads frame order: WriteFrames keeps it too.
		sl.staging = make([]byte, maxFrames*l.FrameBytes())
		hostmem.Touch(sl.staging)
	}
	hostmem.Touch(sl.chunks)
	// Only the first half of the scratch is faulted in ahead: a batch
	// writes its compressed bytes (Data, from offset 0: the first half
	// holds them from a ratio of 2 up, and the serial commit then takes no
	// faults) and the chunks parked behind the commit frontier at k*bound
	// (those of the second half fault in on the workers, in parallel). So
	// most of the second half is never touched, and a fault costs about
	// as much as the codec on a small VM: 0.4-0.6 s of CPU per GB on the
	// 2-core one, where the three slots of medfmt faulted 7.5 GB, 30% of
	// the run's CPU time, when all was touched.
	hostmem.Touch(sl.scratch[:len(sl.scratch)/2&^4095])
	hostmem.Touch(sl.downBuf)
	if err := s.slots.Add(); err != nil {
		return nil, fmt.Errorf("cpu stage: %w", err)
	}
	return sl, nil
}

// errCancelled is what Wait reports for a batch stopped by Cancel.
var errCancelled = errors.New("cancelled")

type cpuSlot struct {
	stage     *Stage
	maxFrames int64
	// staging is the frame-order input of the Slot contract, allocated on
	// the first Staging call (the pipeline feeds a FrameWriter through
	// WriteFrames and never asks), or at once with a next pyramid level.
	staging []byte
	// chunks is the chunk-major input WriteFrames fills (see chunkMajor).
	chunks []byte
	cm     chunkMajor
	// fed is set by WriteFrames and CarryFrames and cleared by Staging:
	// whether the last feed, and so the next batch's input, is chunks.
	// Kick takes it into fused, the current batch's mode.
	fed       atomic.Bool
	fused     bool
	scatterNs atomic.Int64 // WriteFrames time since the last Kick
	scatter   time.Duration
	plan      *stage.Plan
	bound     int64  // capacity of one chunk's scratch slot
	scratch   []byte // chunk k at k*bound, compacted in place into Output.Data
	// tiledInPlace: codec none; chunks are tiled straight to their final
	// place and need no compaction.
	tiledInPlace bool

	// downBuf receives Output.Down (nil without a next level).
	downBuf []byte

	// Per batch, written by Kick before the ticket is queued; workers read
	// them only while they hold an unfinished claim of that batch.
	batch   stage.Batch
	n       int64 // work units: the batch's chunks, then its downsample units
	nChunks int64 // chunks in the batch
	// The batch's reduction for the next level: output frames [u*downGrain,
	// ...) are unit nChunks+u.
	downPlan  *downsample.Plan
	downGrain int64
	gen       uint32 // batch generation, never 0 for a kicked batch
	kicked    time.Time

	claim    atomic.Uint64 // gen<<32 | next unclaimed chunk
	pending  atomic.Int64  // chunks not yet done
	cancel   atomic.Bool
	finished []atomic.Uint32 // gen of the batch in which chunk k finished
	tileNs   atomic.Int64
	downNs   atomic.Int64
	compNs   atomic.Int64
	aggNs    atomic.Int64

	errMu sync.Mutex
	err   error

	// Commit frontier, under commitMu.
	commitMu sync.Mutex
	next     int64
	off      int64
	// moving: the runs of chunks whose offsets are assigned and whose
	// bytes are being moved outside commitMu (see assign), oldest first;
	// a ring of fixed size under commitMu.
	moving     []moveRun
	mHead, mLn int

	done chan struct{}
	life stage.Life
	out  stage.Output
}

// Staging implements Slot. The frame-order buffer is allocated on the
// first call (a slot fed through WriteFrames needs none).
func (sl *cpuSlot) Staging() []byte {
	sl.fed.Store(false)
	if sl.staging == nil && !sl.life.Freed() {
		sl.staging = make([]byte, sl.maxFrames*sl.stage.layout.FrameBytes())
		hostmem.Touch(sl.staging)
	}
	return sl.staging
}

// Kick implements Slot.
func (sl *cpuSlot) Kick(b stage.Batch) error {
	return sl.life.Kick(b, func() error { return sl.kick(b) })
}

func (sl *cpuSlot) kick(b stage.Batch) error {
	if err := sl.stage.layout.Plan(b, sl.plan); err != nil {
		return fmt.Errorf("kick: %w", err)
	}
	sl.kicked = time.Now()
	sl.batch = b
	sl.nChunks = int64(len(sl.plan.Chunks))
	sl.fused = sl.fed.Load()
	if !sl.fused && sl.staging == nil {
		sl.Staging() // never fed: the batch compresses a zeroed staging
	}
	sl.scatter = time.Duration(sl.scatterNs.Swap(0))
	if c0 := sl.cm.c0; sl.fused && b.Frames%c0 != 0 {
		sl.cm.clearTail(sl.chunks, b.Frames/c0, b.Frames%c0)
	}
	sl.n = sl.nChunks
	if d := sl.stage.down; d != nil {
		if err := sl.planDown(d, b); err != nil {
			return fmt.Errorf("kick: %w", err)
		}
	}
	// Claim enough chunks at a time that the claim costs nothing next to
	// the work (>= 256 KiB of input), but leave several claims per worker
	// so that the workers stay balanced.
	workers := int64(len(sl.stage.workers))
	grain := max(1, min(ceilDiv(256<<10, sl.stage.layout.ChunkBytes()), sl.nChunks/(4*workers)))
	// Let whole groups of neighbours be tiled together (Layout.TileGroup).
	grain = max(grain, sl.stage.layout.MaxGroup())
	sl.gen++
	if sl.gen == 0 {
		sl.gen = 1
	}
	sl.err = nil
	sl.next, sl.off = 0, 0
	sl.mHead, sl.mLn = 0, 0
	sl.tileNs.Store(0)
	sl.downNs.Store(0)
	sl.compNs.Store(0)
	sl.aggNs.Store(0)
	sl.cancel.Store(false)
	sl.pending.Store(sl.n)
	sl.claim.Store(uint64(sl.gen) << 32)
	return sl.stage.push(ticket{sl: sl, gen: sl.gen, n: sl.n, grain: grain})
}

// work claims and processes one range of chunks of batch gen; it reports
// false when there is nothing left to claim (or the ticket is stale).
func (sl *cpuSlot) work(w *cpuWorker, t ticket) bool {
	gen := t.gen
	var lo, hi int64
	for {
		v := sl.claim.Load()
		if uint32(v>>32) != gen {
			return false
		}
		lo = int64(uint32(v))
		if lo >= t.n {
			return false
		}
		hi = min(lo+t.grain, t.n)
		if sl.claim.CompareAndSwap(v, uint64(gen)<<32|uint64(hi)) {
			break
		}
	}
	if !sl.cancel.Load() {
		if lo < sl.nChunks {
			sl.process(w, gen, lo, min(hi, sl.nChunks))
		}
		if hi > sl.nChunks {
			sl.reduce(max(lo, sl.nChunks)-sl.nChunks, hi-sl.nChunks)
		}
	}
	if sl.pending.Add(lo-hi) == 0 {
		sl.finish(gen)
	}
	return true
}

func (sl *cpuSlot) process(w *cpuWorker, gen uint32, lo, hi int64) {
	l := sl.stage.layout
	p := sl.plan
	cb := l.ChunkBytes()
	frames := sl.batch.Frames
	var tile, comp time.Duration
	for k := lo; k < hi; {
		t0 := time.Now()
		g := l.GroupLen(p, k, hi)
		// Tile chunks k..k+g-1: codec none straight to their final place,
		// the others into the worker's buffers.
		tiles := w.tiles[:g]
		switch {
		case sl.fused:
			o := sl.cm.at(p.Epoch[k], p.Pos[k])
			g, tiles = 1, w.one
			tiles[0] = sl.chunks[o : o+cb : o+cb]
			if sl.tiledInPlace {
				// Codec none: the chunk is ready, only placed in the output.
				copy(sl.scratch[k*cb:(k+1)*cb], tiles[0])
			}
		case sl.tiledInPlace:
			for i := range tiles {
				tiles[i] = sl.scratch[(k+int64(i))*cb : (k+int64(i)+1)*cb]
			}
			l.TileGroup(tiles, sl.staging, frames, p.Epoch[k], p.Pos[k])
		default:
			l.TileGroup(tiles, sl.staging, frames, p.Epoch[k], p.Pos[k])
		}
		t1 := time.Now()
		tile += t1.Sub(t0)
		for i := range tiles {
			c := &p.Chunks[k+int64(i)]
			if sl.tiledInPlace {
				c.Off, c.Size = (k+int64(i))*cb, cb
				continue
			}
			t2 := time.Now()
			var out []byte
			var err error
			if sl.fused && sl.cm.shuffle {
				out, err = w.enc.EncodeShuffled(w.out[:0], tiles[i])
			} else {
				out, err = w.enc.Encode(w.out[:0], tiles[i])
			}
			if err == nil && (int64(len(out)) > sl.bound || int64(len(out)) > int64(len(w.out))) {
				err = fmt.Errorf("chunk %d: %d bytes exceed the encoder's bound %d", k+int64(i), len(out), sl.bound)
			}
			if err != nil {
				sl.fail(fmt.Errorf("compress %w", err))
				out = nil
			}
			// Parking a chunk counts as compression (it is the encoder's
			// output reaching the slot, which the encoder itself used to
			// write there); Aggregate is the commit alone (offsets and
			// moves, summed over the workers that do them).
			comp += time.Since(t2) - sl.place(gen, k+int64(i), out)
		}
		k += g
	}
	sl.tileNs.Add(int64(tile))
	sl.compNs.Add(int64(comp))
}

// place puts chunk k's compressed bytes (in a worker's buffer) into the
// slot: at the commit frontier straight to its final offset, elsewhere
// parked in its scratch slot at k*bound for a later commit to move. So
// every chunk is written once from cache into the slot, and moved again
// only when it finished before the chunks ahead of it (compressing into
// the scratch slot directly wrote to memory not in any cache and moved
// every chunk: lz4 10% slower per chunk, measured on the 2-core VM).
//
// It returns the time it spent committing (also added to aggNs).
func (sl *cpuSlot) place(gen uint32, k int64, out []byte) time.Duration {
	c := &sl.plan.Chunks[k]
	c.Size = int64(len(out))
	if sl.commitMu.TryLock() {
		if sl.next == k && sl.safe(sl.off+c.Size) && sl.mLn < len(sl.moving) {
			t0 := time.Now()
			c.Off = sl.off
			sl.off += c.Size
			sl.next++
			sl.finished[k].Store(gen)
			r := sl.push(k, k+1)
			sl.commitMu.Unlock()
			if moveHook != nil {
				moveHook()
			}
			if copyNT(sl.scratch[c.Off:c.Off+c.Size], out) {
				storeFence()
			}
			sl.moved(gen, r)
			d := time.Since(t0)
			sl.aggNs.Add(int64(d))
			return d
		}
		sl.commitMu.Unlock()
	}
	base := k * sl.bound
	copy(sl.scratch[base:base+c.Size], out)
	sl.finished[k].Store(gen)
	return sl.commit(gen, false)
}

func (sl *cpuSlot) fail(err error) {
	sl.errMu.Lock()
	if sl.err == nil {
		sl.err = err
	}
	sl.errMu.Unlock()
}

// moveRun is chunks [a, b) of a batch, their offsets assigned, being
// moved by one worker outside commitMu.
type moveRun struct {
	a, b int64
	done bool
}

// The commit assigns offsets under commitMu and moves the bytes outside
// it, so that several workers move at once (one committer at a time was a
// serial copy of every compressed byte: on 16 cores a limit near the
// lz4 rate). Moves may run together because their ranges are disjoint:
//
//   - a chunk's destination [off, off+size) ends at or below (k+1)*bound
//     (every size is <= bound), so it never reaches a chunk parked beyond
//     the run (at j*bound, j >= b), nor one parked later;
//   - inside one run the chunks move in ascending order, so a destination
//     overlaps only its own source (copy is a memmove) or sources already
//     moved;
//   - a new run starts only if its destinations end at or below the
//     oldest in-flight run's first source (safe): in a steady stream, with
//     compression, they lie far below (at about k*bound/ratio). Otherwise
//     it waits for that run (the last move, or finish, picks it up).

// moveHook, when set (tests), runs before every move outside commitMu:
// a test makes moves slow with it, so that they overlap.
var moveHook func()

// safe reports whether destinations ending at end may be written while
// the runs in flight move. The caller holds commitMu.
func (sl *cpuSlot) safe(end int64) bool {
	return sl.mLn == 0 || end <= sl.moving[sl.mHead].a*sl.bound
}

// push records a run in flight and returns its ring index. The caller
// holds commitMu and has checked that the ring has room.
func (sl *cpuSlot) push(a, b int64) int {
	r := (sl.mHead + sl.mLn) % len(sl.moving)
	sl.moving[r] = moveRun{a: a, b: b}
	sl.mLn++
	return r
}

// assign gives the finished chunks at the frontier their offsets, as far
// as safe allows, and records them as a run in flight; ok is false when
// there is none. The caller holds commitMu.
func (sl *cpuSlot) assign(gen uint32) (r int, a, b int64, ok bool) {
	if sl.mLn == len(sl.moving) {
		return 0, 0, 0, false
	}
	chunks := sl.plan.Chunks
	a, b = sl.next, sl.next
	for b < sl.nChunks && sl.finished[b].Load() == gen && sl.safe(sl.off+chunks[b].Size) {
		c := &chunks[b]
		c.Off = sl.off
		sl.off += c.Size
		b++
	}
	if b == a {
		return 0, 0, 0, false
	}
	sl.next = b
	return sl.push(a, b), a, b, true
}

// move copies chunks [a, b), offsets assigned, from their scratch slots
// to their final offsets, in ascending order. Outside commitMu.
func (sl *cpuSlot) move(a, b int64) {
	if moveHook != nil {
		moveHook()
	}
	chunks := sl.plan.Chunks
	nt := false
	for k := a; k < b; k++ {
		c := &chunks[k]
		if src := k * sl.bound; src != c.Off {
			// Compacting: the final offset is below the scratch slot.
			nt = copyNT(sl.scratch[c.Off:c.Off+c.Size], sl.scratch[src:src+c.Size]) || nt
		}
	}
	if nt {
		storeFence()
	}
}

// moved marks run r done, drops the done runs at the ring's head, and
// commits what that made safe.
func (sl *cpuSlot) moved(gen uint32, r int) {
	sl.commitMu.Lock()
	sl.moving[r].done = true
	for sl.mLn > 0 && sl.moving[sl.mHead].done {
		sl.mHead = (sl.mHead + 1) % len(sl.moving)
		sl.mLn--
	}
	sl.drain(gen)
}

// drain assigns and moves runs until none is left; it is entered with
// commitMu held and returns with it released.
func (sl *cpuSlot) drain(gen uint32) {
	for {
		r, a, b, ok := sl.assign(gen)
		if !ok {
			sl.commitMu.Unlock()
			return
		}
		sl.commitMu.Unlock()
		sl.move(a, b)
		sl.commitMu.Lock()
		sl.moving[r].done = true
		for sl.mLn > 0 && sl.moving[sl.mHead].done {
			sl.mHead = (sl.mHead + 1) % len(sl.moving)
			sl.mLn--
		}
	}
}

// commit moves finished chunks at the frontier to their final offsets. With
// wait false it gives up at once if another worker is committing (that one
// will pick the chunks up, or the final commit will). With wait true
// (finish: every chunk is compressed, and every move in flight has ended,
// since moves run inside process, before the batch's last chunk is
// counted) it commits the rest.
//
// It returns the time it spent (also added to aggNs).
func (sl *cpuSlot) commit(gen uint32, wait bool) time.Duration {
	if wait {
		sl.commitMu.Lock()
	} else if !sl.commitMu.TryLock() {
		return 0
	}
	t0 := time.Now()
	sl.drain(gen)
	d := time.Since(t0)
	sl.aggNs.Add(int64(d))
	return d
}

// finish runs on the worker that completed the batch's last chunk.
func (sl *cpuSlot) finish(gen uint32) {
	t0 := time.Now()
	out := &sl.out
	p := sl.plan
	if !sl.tiledInPlace {
		sl.commit(gen, true)
	}
	if !sl.cancel.Load() {
		for i := range p.Segs {
			s := &p.Segs[i]
			first, last := p.Chunks[s.First], p.Chunks[s.First+s.N-1]
			s.Off = first.Off
			s.Len = last.Off + last.Size - first.Off
		}
		var size int64
		if n := len(p.Chunks); n > 0 {
			size = p.Chunks[n-1].Off + p.Chunks[n-1].Size
		}
		out.Data = sl.scratch[:size]
		out.Segs = p.Segs
		out.Chunks = p.Chunks
		out.Down, out.DownFrames = nil, 0
		if sl.downPlan != nil {
			out.DownFrames = sl.downPlan.Out[0]
			out.Down = sl.downBuf[:out.DownFrames*sl.downPlan.FrameBytes()]
		}
	}
	out.Times = stage.Times{
		Scatter:   sl.scatter,
		Tile:      time.Duration(sl.tileNs.Load()),
		Downscale: time.Duration(sl.downNs.Load()),
		Compress:  time.Duration(sl.compNs.Load()),
		Aggregate: time.Duration(sl.aggNs.Load()) + time.Since(t0),
		Wall:      time.Since(sl.kicked),
	}
	sl.done <- struct{}{}
	// Delivery waits for this batch (and the producer for delivery): let
	// it run now rather than at this core's next preemption, ~10 ms away
	// when every core is busy compressing.
	runtime.Gosched()
}

// Wait implements Slot.
func (sl *cpuSlot) Wait(ctx context.Context) (*stage.Output, error) {
	return sl.life.Wait(func() (*stage.Output, error) { return sl.wait(ctx) })
}

func (sl *cpuSlot) wait(ctx context.Context) (*stage.Output, error) {
	select {
	case <-sl.done:
	case <-ctx.Done():
		// Workers skip the chunks they have not started; the channel
		// receive below is what guarantees they no longer touch the slot.
		sl.cancel.Store(true)
		<-sl.done
		return nil, fmt.Errorf("wait for batch at epoch %d: %w", sl.batch.FirstEpoch, ctx.Err())
	}
	if sl.err != nil {
		return nil, fmt.Errorf("batch at epoch %d: %w", sl.batch.FirstEpoch, sl.err)
	}
	if sl.cancel.Load() {
		// Cancelled while in flight: some chunks were skipped, so there
		// is no output (finish built none).
		return nil, fmt.Errorf("batch at epoch %d: %w", sl.batch.FirstEpoch, errCancelled)
	}
	return &sl.out, nil
}

// downBuffer is a slot's Output.Down buffer for batches of maxFrames.
func downBuffer(s *Stage, maxFrames int64) []byte {
	if s.down == nil {
		return nil
	}
	return make([]byte, s.down.DownFrames(maxFrames)*s.down.DownFrameBytes(&s.spec))
}

// planDown prepares the batch's reduction: a plan for its frames, and
// units of about 1 MiB of input each, claimed by the workers after the
// chunks.
func (sl *cpuSlot) planDown(d *stage.Downsample, b stage.Batch) error {
	shape := append([]int64{b.Frames}, sl.stage.spec.Shape[1:]...)
	p, err := downsample.NewPlan(shape, d.Reduce, sl.stage.spec.DType, d.Method)
	if err != nil {
		return err
	}
	per := sl.stage.layout.FrameBytes()
	if d.Reduce[0] {
		per *= 2
	}
	sl.downPlan = p
	sl.downGrain = max(1, (1<<20)/max(per, 1))
	sl.n += ceilDiv(p.Out[0], sl.downGrain)
	return nil
}

// reduce computes downsample units [lo, hi) of the batch.
func (sl *cpuSlot) reduce(lo, hi int64) {
	t0 := time.Now()
	p := sl.downPlan
	in := sl.staging[:sl.batch.Frames*sl.stage.layout.FrameBytes()]
	p.Frames(sl.downBuf, in, lo*sl.downGrain, min(hi*sl.downGrain, p.Out[0]))
	sl.downNs.Add(int64(time.Since(t0)))
}

// Cancel implements Canceler: workers skip the chunks of the batch they
// have not started.
func (sl *cpuSlot) Cancel() { sl.cancel.Store(true) }

// Free implements Slot.
func (sl *cpuSlot) Free() error {
	return sl.life.Free(func() error {
		sl.staging, sl.chunks, sl.scratch, sl.finished, sl.plan, sl.downBuf = nil, nil, nil, nil, nil, nil
		sl.out = stage.Output{}
		sl.stage.slots.Done()
		return nil
	})
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
