package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/sysinfo"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Defaults for the zero values of Config.
const (
	// DefaultDepth: three slots are the fewest that let the three stages
	// overlap fully (one slot filling, one compressing, one being
	// delivered). BenchmarkDepth, with producer, CPU zstd stage and sink
	// balanced at ~200 MB/s each on the 2-core dev machine (loaded), gave
	// depth 1: 95-104 MB/s, 2: 106-120, 3: 129-141, 4: 118-143, 6: 85-102;
	// more slots only cost memory and cache.
	DefaultDepth = 3
	// DefaultBatchBytes: 32 MiB per kick is large enough that a kick's
	// fixed cost (queueing, waking workers, a GPU launch) is negligible and
	// every core gets many chunks, and small enough that Depth slots stay
	// well under a few hundred MiB and a batch takes ~10 ms at 3 GB/s.
	DefaultBatchBytes = 32 << 20
	// DefaultFlushInterval: a second bounds what an interrupt or a crash
	// of a slow stream loses to about a second of frames beyond the open
	// shard row, while a fast stream (which fills a 32 MiB slot in
	// milliseconds) never waits for it. Each flush is one kick of whatever
	// whole epochs a slot holds, so a flush a second costs nothing.
	DefaultFlushInterval = time.Second
	// The copy-helper defaults are in settings.go, with their benchmark.
)

// Config describes a Writer. Zero values mean "default".
type Config struct {
	Spec  zarr.Spec
	Stage stage.Stage // compress backend; the caller closes it after the Writer
	Sink  sink.Sink   // store; the caller closes it after the Writer
	// Depth is the number of slots, so up to Depth batches are in flight
	// (one filling, the others compressing or being delivered). 1 drains
	// every batch inline, with no worker.
	Depth int
	// BatchBytes is the raw size the compress stage gets per kick; it is
	// rounded to a whole number of epochs (at least one).
	BatchBytes int64
	// CopyHelpers is the number of goroutines that help the producer copy
	// a large Write into staging; < 0 turns the pool off (serial copies).
	CopyHelpers int
	// CopyThreshold is the smallest Write that is split across the helpers.
	CopyThreshold int
	// MaxPending bounds the raw bytes kicked and not yet delivered; the
	// producer blocks instead of kicking more.
	MaxPending int64
	// Down receives every batch's Output.Down (the next pyramid level's
	// frames, when the stage computes them), in stream order, before the
	// batch's slot is released: the next level's Writer. An error from it
	// fails this Writer.
	Down io.Writer
	// KickAlign makes every batch but the stream's last hold a multiple of
	// this many frames (and start at one): 2 when the stage reduces dim 0,
	// so pairs of frames never straddle two batches. 0 or 1: any.
	KickAlign int64
	// MemoryBudget bounds the slots' memory (0: a quarter of what the
	// machine has available): writers that share a machine (the levels of
	// a pyramid) share one budget.
	MemoryBudget int64
	// StartFrame continues an existing array (a resume): the first byte
	// written is frame StartFrame, which must begin a shard row (the rows
	// before it stay as they are). ExistingFrames is the shape[0] its
	// zarr.json names now: it is left alone until the committed rows pass
	// it (so a resume that is itself interrupted loses nothing). Both 0:
	// a new array, whose zarr.json is written at once with shape[0] = 0.
	StartFrame, ExistingFrames int64
	// Derived marks an array computed from another writer's frames (a
	// pyramid's levels 1..): when it aborts, its zarr.json names exactly
	// its committed frames, fewer than before if need be. A resumed
	// level's last partial row was reduced from the frames its source had
	// then, and is stale once the source has more; the source (level 0)
	// itself never names fewer frames on abort (see ExistingFrames).
	Derived bool
	// IOWorkers is the number of I/O lanes that write shard files in
	// parallel (each file's bytes in order by one lane); 0 means the
	// default, < 0 writes inline. Depth 1 always writes inline (rule 4).
	IOWorkers int
	// FlushInterval is how long whole epochs may wait in a slot that is
	// not yet full before they are kicked anyway, so that a slow stream
	// commits each shard row soon after it fills (and an interrupt or a
	// crash loses at most what arrived in the last interval and the rows
	// still open). < 0 turns it off: slots are kicked only when full.
	FlushInterval time.Duration
}

// Settings are the values a Writer runs with, after defaults.
type Settings struct {
	Depth         int
	BatchFrames   int64
	BatchBytes    int64
	CopyHelpers   int // 0: serial copies
	CopyThreshold int
	MaxPending    int64
	FlushInterval time.Duration // < 0: off
	IOWorkers     int           // 0: inline
	AlignFrames   int64         // kicks (but the last) are multiples of it: whole epochs and KickAlign
	BatchChunks   int64         // inner chunks of a full batch
	IndexBytes    int64         // memory of the open shard row's indexes
	SinkBytes     int64         // the sink's own buffers at most (sink.Buffered), counted in MaxPending
}

// Stats are the Writer's counters. Every field is read atomically, so
// Stats may be called from any goroutine while the Writer runs.
type Stats struct {
	BytesIn    int64 // bytes accepted
	Frames     int64 // whole frames accepted
	Batches    int64 // batches kicked
	Delivered  int64 // batches delivered
	BytesOut   int64 // bytes written to the sink (shards, indexes, zarr.json)
	MetaBytes  int64 // of BytesOut, zarr.json's (every rewrite): the rest is the stored data
	Named      int64 // shape[0] of the last zarr.json written: what a reader sees now
	Shards     int64 // shard files committed
	Committed  int64 // frames in committed shard rows
	Pending    int64 // raw bytes kicked and not yet delivered
	PendingMax int64 // high-water mark of Pending

	Copy         time.Duration // input into staging: Write's copy (helpers included), or ReadFrom's reads (source waits included)
	StallJoin    time.Duration // producer waiting for a slot's delivery
	StallPending time.Duration // producer blocked by MaxPending
	StallRows    time.Duration // delivery held while OpenRows rows were uncommitted
	StageWait    time.Duration // delivery waiting for the compress stage
	Deliver      time.Duration // delivery writing to the sink
	AllocFirst   time.Duration // New allocating the first slot (before any input is taken)
	AllocRest    time.Duration // the other slots, allocated in the background
	StallAlloc   time.Duration // producer waiting for a slot still being allocated
	Stage        stage.Times   // the stage's own per-step times, summed
}

type slot struct {
	st stage.Slot
	// The slot's input goes through fw when the stage's slot is a
	// stage.FrameWriter (the CPU backend: it lays the bytes out for
	// compression as they arrive), else into staging (nil with fw).
	fw      stage.FrameWriter
	staging []byte
	size    int // input bytes the slot takes: Settings.BatchBytes
	fill    int // bytes copied in
	// fillStart is when the first byte since the slot's last kick arrived:
	// the flusher kicks its whole epochs once they waited FlushInterval.
	fillStart time.Time
	busy      bool // kicked and not joined (producer's view)
	batch     stage.Batch
	done      chan struct{} // delivery finished; capacity 1
	// ready is closed once the stage gave the slot its buffers (st and
	// staging are set); allocated is the producer's record that it saw so.
	ready     chan struct{}
	allocated bool
}

// Writer is a pipelined store writer. Write, ReadFrom and Close are called
// from one goroutine (the producer); Abort and Stats from any.
type Writer struct {
	spec        zarr.Spec
	st          stage.Stage
	sink        sink.Sink
	down        io.Writer // the next pyramid level, or nil
	startFrame  int64     // frames of the array before this run's first byte (a resume)
	set         Settings
	frameBytes  int64
	epochFrames int64
	rowFrames   int64 // frames per shard row

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex // held by Write, ReadFrom, Close and Abort's teardown
	slots     []*slot
	smu       sync.Mutex
	stSlots   []stage.Slot  // the stage's slots allocated so far (for Cancel), under smu
	allocDone chan struct{} // allocRest finished, or will never run
	restOnce  sync.Once     // startRest
	restAsked bool          // grow has started allocRest (producer, w.mu)
	cur       int
	nextEpoch int64
	bytesIn   int64
	offered   int64 // bytes offered, including those refused by a fixed shape
	inputErr  error // too many frames: reported, but the store is finished
	closed    atomic.Bool
	reading   *slot // ReadFrom is in r.Read into this slot, without mu
	// bounce and bounces are where ReadFrom and ReadAt's readers read
	// when the slots take their input through stage.FrameWriter.
	bounce    []byte
	bounces   [][]byte
	deferFree *slot // its Free, left to ReadFrom by a teardown meanwhile

	jobs       chan *slot
	workerDone chan struct{}
	stopped    bool

	flushStop, flushDone chan struct{} // nil when FlushInterval is off
	flushOnce            sync.Once

	cp copier

	errMu sync.Mutex
	err   error // first fatal error

	sw *shardWriter // the shard bookkeeping; delivery calls it oldest batch first

	queued, retired atomic.Int64
	retiredSig      chan struct{}
	c               counters
}

type counters struct {
	bytesIn, batches, delivered, bytesOut, metaBytes, shards, committed, pendingMax atomic.Int64
	copy, stallJoin, stallPending, stageWait, deliver                               atomic.Int64
	stallRows                                                                       atomic.Int64
	allocFirst, allocRest, stallAlloc                                               atomic.Int64
	h2d, scatter, tile, shuffle, compress, aggregate, d2h, wall                     atomic.Int64
}

// New checks cfg, allocates the slots, writes the initial zarr.json and
// starts the workers. ctx ending aborts the Writer (Write then returns its
// cause; call Abort or Close to tear down).
func New(ctx context.Context, cfg Config) (*Writer, error) {
	spec := cfg.Spec.Clone()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stage == nil || cfg.Sink == nil {
		return nil, errors.New("pipeline: Stage and Sink are required")
	}
	w := &Writer{
		spec:        spec,
		st:          cfg.Stage,
		sink:        cfg.Sink,
		frameBytes:  spec.FrameBytes(),
		epochFrames: spec.EpochFrames(),
		rowFrames:   spec.Shard[0],
		down:        cfg.Down,
		startFrame:  cfg.StartFrame,
		retiredSig:  make(chan struct{}, 1),
	}
	if cfg.Depth < 0 || cfg.Depth > MaxDepth {
		return nil, &DepthError{Depth: cfg.Depth}
	}
	if s0 := cfg.StartFrame; s0 < 0 || s0%spec.Shard[0] != 0 || s0 > cfg.ExistingFrames || (!spec.Growing() && cfg.ExistingFrames > spec.Shape[0]) {
		return nil, fmt.Errorf("pipeline: resume at frame %d of %d: want the start of a shard row (%d frames) within the array", s0, cfg.ExistingFrames, spec.Shard[0])
	}
	w.set = settle(&spec, cfg)
	if cfg.MaxPending > 0 && w.set.SinkBytes > 0 && cfg.MaxPending < w.set.SinkBytes+w.set.BatchBytes {
		return nil, &PendingError{Asked: cfg.MaxPending, SinkBytes: w.set.SinkBytes, BatchBytes: w.set.BatchBytes, Files: spec.ShardsPerRow()}
	}
	if err := checkMemory(w.set, sysinfo.MemAvailable()); err != nil {
		return nil, err
	}
	w.ctx, w.cancel = context.WithCancelCause(ctx)

	w.sw = newShardWriter(&w.spec, w.sink, w.set.IOWorkers, w.fail, func() bool { return w.error() != nil }, &w.c)
	w.nextEpoch = cfg.StartFrame / w.epochFrames
	w.sw.resumeAt(cfg.StartFrame, cfg.ExistingFrames)
	w.sw.derived = cfg.Derived

	// The first slot is allocated now, so that a stage that cannot give
	// one fails New; the others are allocated in the background once the
	// first is an eighth full (see grow), so the first bytes are accepted
	// as early as possible (a slot is tens of MiB to GBs, pre-faulted or
	// pinned: up to a second per GB), and a short input (one frame) never
	// pays for slots it does not need, nor has its one batch's copies
	// slowed by allocations running beside them (pinning takes the
	// driver's lock: measured 0.3 s per 8 MB copy on the H200 machine).
	// Memory stays at most Depth slots; the producer waits for a slot's
	// allocation when it reaches it (join).
	w.slots = make([]*slot, w.set.Depth)
	for i := range w.slots {
		w.slots[i] = &slot{ready: make(chan struct{}), done: make(chan struct{}, 1)}
	}
	start := time.Now()
	if err := w.allocSlot(0); err != nil {
		w.sw.stop()
		w.cancel(nil)
		return nil, err
	}
	w.slots[0].allocated = true
	w.c.allocFirst.Store(int64(time.Since(start)))
	w.allocDone = make(chan struct{})
	// Nothing is committed yet, so zarr.json names no frame, for a fixed
	// dim 0 too: it grows with the committed shard rows (delivery) and
	// names the declared size only once every frame is in (Close).
	if cfg.ExistingFrames > 0 || cfg.StartFrame > 0 {
		// A resume: the store's zarr.json stays until more is committed.
	} else if err := w.sw.putMeta(0); err != nil {
		w.cancel(nil)
		w.startRest(false)
		<-w.allocDone
		w.sw.stop()
		w.freeSlots()
		return nil, err
	}
	if w.set.Depth > 1 {
		// Capacity Depth: at most Depth slots are kicked and not joined,
		// so the producer never blocks on this send (rule 2 bounds it).
		w.jobs = make(chan *slot, w.set.Depth)
		w.workerDone = make(chan struct{})
		go w.worker()
	}
	w.cp.start(w.set.CopyHelpers, w.set.CopyThreshold)
	if w.set.FlushInterval > 0 {
		w.flushStop = make(chan struct{})
		w.flushDone = make(chan struct{})
		go w.flusher()
	}
	return w, nil
}

// allocSlot asks the stage for slot i's buffers.
func (w *Writer) allocSlot(i int) error {
	s, err := w.st.NewSlot(w.set.BatchFrames)
	if err != nil {
		return fmt.Errorf("allocate slot %d of %d (%d bytes of staging): %w", i+1, w.set.Depth, w.set.BatchBytes, err)
	}
	sl := w.slots[i]
	if fw, ok := s.(stage.FrameWriter); ok {
		sl.fw = fw // Staging is never asked for: it may not exist
	} else {
		staging := s.Staging()
		if int64(len(staging)) < w.set.BatchBytes {
			s.Free()
			return fmt.Errorf("stage %s gave %d bytes of staging for %d frames, want %d", w.st.Name(), len(staging), w.set.BatchFrames, w.set.BatchBytes)
		}
		sl.staging = staging[:w.set.BatchBytes]
	}
	sl.st, sl.size = s, int(w.set.BatchBytes)
	w.smu.Lock()
	w.stSlots = append(w.stSlots, s)
	w.smu.Unlock()
	close(sl.ready)
	return nil
}

// grow starts the background allocation of slots 1.. once the producer
// has put an eighth of a batch into slot 0 (or moved past it). Producer
// only, with w.mu held.
func (w *Writer) grow(s *slot) { w.growTo(s, s.fill) }

// growTo is grow for a slot about to hold fill bytes. Write and ReadAt
// know how much a copy or read will put in and ask before it starts, so
// a whole-slot copy overlaps the allocation (and need not ask again
// after: the slot then holds at most fill); ReadFrom cannot know what a
// read returns (a slow pipe gives little), so it asks after each read.
func (w *Writer) growTo(s *slot, fill int) {
	if !w.restAsked && (s != w.slots[0] || fill >= s.size/8) {
		w.restAsked = true
		w.startRest(true)
	}
}

// startRest runs allocRest (run) or, when it never ran, marks it done, so
// that whoever waits on allocDone never blocks on an allocation that was
// not needed. Only the first call counts.
func (w *Writer) startRest(run bool) {
	w.restOnce.Do(func() {
		if run && len(w.slots) > 1 {
			go w.allocRest()
			return
		}
		close(w.allocDone)
	})
}

// allocRest allocates slots 1.. in the background (see New). A failure
// fails the Writer; an abort stops it early.
func (w *Writer) allocRest() {
	defer close(w.allocDone)
	start := time.Now()
	defer func() { w.c.allocRest.Store(int64(time.Since(start))) }()
	for i := 1; i < len(w.slots); i++ {
		if w.ctx.Err() != nil {
			return
		}
		if err := w.allocSlot(i); err != nil {
			if w.ctx.Err() != nil {
				return // closing or aborted: the slot is not needed
			}
			w.fail(err)
			return
		}
	}
}

// Settings returns the values the Writer runs with.
func (w *Writer) Settings() Settings { return w.set }

// Write copies p into staging, kicking every slot that fills. With a fixed
// shape[0] it takes at most the declared frames and then reports a
// *TooManyFramesError (the store is still finished by Close).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return 0, err
	}
	w.offered += int64(len(p))
	over := false
	if !w.spec.Growing() {
		if room := w.roomBytes(); int64(len(p)) > room {
			p, over = p[:room], true
		}
	}
	n := 0
	for len(p) > 0 {
		s := w.slots[w.cur]
		if err := w.join(s); err != nil {
			return n, err
		}
		k := min(s.size-s.fill, len(p))
		start := time.Now()
		if s.fill == 0 {
			s.fillStart = start
		}
		w.growTo(s, s.fill+k)
		w.cp.put(s, s.fill, p[:k])
		w.c.copy.Add(int64(time.Since(start)))
		s.fill += k
		n += k
		p = p[k:]
		w.bytesIn += int64(k)
		w.c.bytesIn.Store(w.bytesIn)
		if s.fill == s.size {
			if err := w.kick(s); err != nil {
				return n, err
			}
		}
	}
	if over {
		w.inputErr = &TooManyFramesError{Declared: w.spec.Shape[0], AtLeast: w.startFrame + (w.offered+w.frameBytes-1)/w.frameBytes}
		return n, w.inputErr
	}
	return n, nil
}

// roomBytes is what a fixed shape[0] still takes.
func (w *Writer) roomBytes() int64 {
	return (w.spec.Shape[0]-w.startFrame)*w.frameBytes - w.bytesIn
}

// check returns the error every producer call reports once the Writer has
// failed, been closed, or refused input.
func (w *Writer) check() error {
	if err := w.error(); err != nil {
		return err
	}
	if w.inputErr != nil {
		return w.inputErr
	}
	if w.closed.Load() {
		return ErrClosed
	}
	return nil
}

// ReadFrom reads r to its end straight into staging, saving the copy that
// io.Copy's intermediate buffer would cost. io.Copy uses it when the
// source does not implement io.WriterTo itself.
//
// The Writer's lock is released while r.Read blocks (an idle pipe may
// block forever), so that Abort from another goroutine still returns
// promptly; the slot being read into is then freed only once Read returns.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return 0, err
	}
	var total int64
	var one [1]byte
	for {
		s := w.slots[w.cur]
		if err := w.join(s); err != nil {
			return total, err
		}
		var buf []byte
		if s.fw != nil {
			// Read into the bounce buffer, then scatter it: the read's
			// extra pass stays in cache (see readBounce).
			if w.bounce == nil {
				w.bounce = make([]byte, readBounce)
			}
			buf = w.bounce[:min(len(w.bounce), s.size-s.fill)]
		} else {
			buf = s.staging[s.fill:]
		}
		probe := false
		if !w.spec.Growing() {
			room := w.roomBytes()
			if room == 0 {
				// Declared frames are all in: one more byte means too many.
				buf, probe = one[:], true
			} else if int64(len(buf)) > room {
				buf = buf[:room]
			}
		}
		w.reading = s
		w.mu.Unlock()
		start := time.Now()
		n, err := r.Read(buf)
		w.c.copy.Add(int64(time.Since(start)))
		w.mu.Lock()
		w.reading = nil
		if w.closed.Load() {
			// Abort tore the Writer down while Read blocked: the bytes are
			// dropped, and the slot left for us is freed now.
			if w.deferFree != nil {
				if ferr := w.deferFree.st.Free(); ferr != nil {
					w.fail(fmt.Errorf("free slot: %w", ferr))
				}
				w.deferFree = nil
			}
			if res := w.result(); res != nil {
				return total, res
			}
			return total, ErrClosed
		}
		if probe {
			if n > 0 {
				w.offered++
				w.inputErr = &TooManyFramesError{Declared: w.spec.Shape[0], AtLeast: w.spec.Shape[0] + 1}
				return total, w.inputErr
			}
		} else if n > 0 {
			if s.fill == 0 {
				s.fillStart = time.Now()
			}
			if s.fw != nil {
				w.cp.put(s, s.fill, buf[:n])
			}
			s.fill += n
			w.grow(s)
			total += int64(n)
			w.bytesIn += int64(n)
			w.offered += int64(n)
			w.c.bytesIn.Store(w.bytesIn)
			if s.fill == s.size {
				if err := w.kick(s); err != nil {
					return total, err
				}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read input: %w", err)
		}
		if err := w.error(); err != nil {
			return total, err
		}
	}
}

// flusher kicks the current slot's whole epochs once they have waited
// FlushInterval, so that a slow stream commits shard rows as they fill
// instead of when a slot is full. It takes mu like the producer; while
// the producer copies or waits it holds mu, so the flusher acts only when
// the producer is idle (waiting for input), which is when it is needed.
func (w *Writer) flusher() {
	defer close(w.flushDone)
	tick := time.NewTicker(max(w.set.FlushInterval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-w.flushStop:
			return
		case <-w.ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		if err := w.flushDue(); err != nil {
			w.fail(err)
		}
		w.mu.Unlock()
	}
}

// stopFlusher ends the flusher and waits for it. Called without mu.
func (w *Writer) stopFlusher() {
	if w.flushStop == nil {
		return
	}
	w.flushOnce.Do(func() { close(w.flushStop) })
	<-w.flushDone
}

// flushDue kicks the current slot's whole epochs when they are due. mu is
// held. Nothing is kicked while ReadFrom reads into the slot without mu
// (it owns the bytes past fill then), nor after a failure or Close.
func (w *Writer) flushDue() error {
	if w.closed.Load() || w.reading != nil || w.inputErr != nil || w.error() != nil {
		return nil
	}
	s := w.slots[w.cur]
	eb := int(w.set.AlignFrames * w.frameBytes) // whole epochs, in KickAlign steps
	whole := s.fill / eb * eb
	if whole == 0 || s.busy || time.Since(s.fillStart) < w.set.FlushInterval {
		return nil
	}
	return w.kickWhole(s, whole)
}

// kickWhole kicks the first n bytes of slot s (whole epochs) and carries
// the rest (part of the next epoch) to the slot that fills next. The tail
// is copied before the kick, so the stage owns s alone from then on (rule
// 1); at depth 1 the slot is its own successor and the inline delivery
// has finished with it when kick returns, so the tail moves down in it.
func (w *Writer) kickWhole(s *slot, n int) error {
	tail := s.fill - n
	next := w.slots[(w.cur+1)%len(w.slots)]
	if tail == 0 {
		return w.kick(s)
	}
	if next == s {
		s.fill = n
		if err := w.kick(s); err != nil {
			return err
		}
		if err := w.carry(s, s, n, tail); err != nil {
			return err
		}
		s.fill, s.fillStart = tail, time.Now()
		return nil
	}
	if err := w.join(next); err != nil {
		return err
	}
	if err := w.carry(s, next, n, tail); err != nil {
		return err
	}
	next.fill, next.fillStart = tail, time.Now()
	s.fill = n
	return w.kick(s)
}

// carry moves bytes [n, n+tail) of from's input to the start of to's.
func (w *Writer) carry(from, to *slot, n, tail int) error {
	if from.fw == nil {
		copy(to.staging, from.staging[n:n+tail])
		return nil
	}
	if err := from.fw.CarryFrames(to.st, int64(n), int64(tail)); err != nil {
		w.fail(fmt.Errorf("carry a partial epoch to the next slot: %w", err))
		return w.error()
	}
	return nil
}

// join waits until slot s is delivered, so the producer may refill it
// (rule 2). Only the producer calls it.
func (w *Writer) join(s *slot) error {
	if !s.allocated {
		// Not yet allocated by allocRest: wait for it (only the first
		// pass over the slots can wait here). A flush may move on from
		// slot 0 before grow asked for the rest: ask now.
		w.restAsked = true
		w.startRest(true)
		start := time.Now()
		select {
		case <-s.ready:
			s.allocated = true
		case <-w.ctx.Done():
		}
		w.c.stallAlloc.Add(int64(time.Since(start)))
		if !s.allocated {
			return w.error()
		}
	}
	if !s.busy {
		return nil
	}
	start := time.Now()
	select {
	case <-s.done:
		s.busy = false
	case <-w.ctx.Done():
	}
	w.c.stallJoin.Add(int64(time.Since(start)))
	return w.error()
}

// kick hands slot s (its whole frames) to the stage and queues its
// delivery at the same moment. Only the producer calls it.
func (w *Writer) kick(s *slot) error {
	frames := int64(s.fill) / w.frameBytes
	raw := frames * w.frameBytes
	if err := w.waitPending(raw); err != nil {
		return err
	}
	s.batch = stage.Batch{FirstEpoch: w.nextEpoch, Frames: frames}
	w.nextEpoch += (frames + w.epochFrames - 1) / w.epochFrames
	s.fill = 0
	q := w.queued.Add(raw)
	w.maxPending(q - w.retired.Load())
	if err := s.st.Kick(s.batch); err != nil {
		w.retired.Add(raw)
		w.fail(fmt.Errorf("compress batch at frame %d: %w", s.batch.FirstEpoch*w.epochFrames, err))
		return w.error()
	}
	w.c.batches.Add(1)
	s.busy = true
	w.cur = (w.cur + 1) % len(w.slots)
	if w.jobs == nil {
		// Depth 1 (rule 4): deliver inline, no worker and no queue.
		w.deliverSlot(s, false)
		s.busy = false
		return w.error()
	}
	w.jobs <- s
	return nil
}

func (w *Writer) maxPending(p int64) {
	for {
		m := w.c.pendingMax.Load()
		if p <= m || w.c.pendingMax.CompareAndSwap(m, p) {
			return
		}
	}
}

// waitPending blocks while kicking n more bytes would exceed MaxPending
// (rule 5). New makes MaxPending at least one batch, so an idle pipeline
// always accepts a kick.
func (w *Writer) waitPending(n int64) error {
	if w.queued.Load()-w.retired.Load()+n <= w.set.MaxPending {
		return nil
	}
	start := time.Now()
	defer func() { w.c.stallPending.Add(int64(time.Since(start))) }()
	for w.queued.Load()-w.retired.Load()+n > w.set.MaxPending {
		select {
		case <-w.retiredSig:
		case <-w.ctx.Done():
			return w.error()
		}
	}
	return nil
}

// worker delivers jobs strictly in kick order (rule 3): one goroutine
// reading one FIFO channel.
func (w *Writer) worker() {
	defer close(w.workerDone)
	for s := range w.jobs {
		w.deliverSlot(s, true)
	}
}

// deliverSlot waits for slot s's batch and hands it to the shard writer.
// The slot is released (its raw bytes retired and, with signal, its done
// sent) once every byte of the batch is written, since the queued writes
// point into the slot's output. After a failure it still waits (so the
// stage stops touching the slot before anyone frees it) but writes
// nothing. The inline path of depth 1 does not signal: its producer
// marks the slot free itself.
func (w *Writer) deliverSlot(s *slot, signal bool) {
	raw := s.batch.Frames * w.frameBytes
	release := func() {
		w.retired.Add(raw)
		select {
		case w.retiredSig <- struct{}{}:
		default:
		}
		if signal {
			s.done <- struct{}{}
		}
	}
	start := time.Now()
	out, err := s.st.Wait(w.ctx)
	w.c.stageWait.Add(int64(time.Since(start)))
	if err != nil {
		w.fail(fmt.Errorf("compress batch at frame %d: %w", s.batch.FirstEpoch*w.epochFrames, err))
		release()
		return
	}
	w.addTimes(&out.Times)
	if w.error() != nil {
		release()
		return
	}
	if w.down != nil && out.DownFrames > 0 {
		// The next level takes its frames now, while the slot holds them.
		if _, err := w.down.Write(out.Down); err != nil {
			w.fail(fmt.Errorf("next pyramid level: %w", err))
			release()
			return
		}
	}
	err = w.sw.deliver(out, s.batch, w.epochFrames, func() {
		if w.error() == nil {
			w.c.delivered.Add(1)
		}
		release()
	})
	if err != nil {
		w.fail(err)
		release()
	}
}

func (w *Writer) addTimes(t *stage.Times) {
	w.c.h2d.Add(int64(t.H2D))
	w.c.scatter.Add(int64(t.Scatter))
	w.c.tile.Add(int64(t.Tile))
	w.c.shuffle.Add(int64(t.Shuffle))
	w.c.compress.Add(int64(t.Compress))
	w.c.aggregate.Add(int64(t.Aggregate))
	w.c.d2h.Add(int64(t.D2H))
	w.c.wall.Add(int64(t.Wall))
}

// error returns the first fatal error, or the cause of ctx if it ended.
func (w *Writer) error() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil && w.ctx.Err() != nil {
		if cause := context.Cause(w.ctx); cause != errClosedCtx {
			w.err = cause
		}
	}
	return w.err
}

// fail records err unless an error (or ctx's cause) came first, and
// cancels everything in flight.
func (w *Writer) fail(err error) {
	w.errMu.Lock()
	if w.err == nil {
		if cause := context.Cause(w.ctx); cause != nil && cause != errClosedCtx {
			w.err = cause
		} else {
			w.err = err
		}
	}
	w.errMu.Unlock()
	w.cancel(err)
}

// Close flushes the partial epoch, delivers everything, joins the worker,
// writes the final zarr.json and frees the slots (rule 6). It returns the
// first error: a failure, a *TooManyFramesError, a *PartialFrameError or a
// *ShortInputError. Calling it again returns the same.
func (w *Writer) Close() error {
	w.stopFlusher()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed.Load() {
		return w.result()
	}
	var partial error
	if w.error() == nil {
		s := w.slots[w.cur]
		if rem := int64(s.fill) % w.frameBytes; rem != 0 {
			partial = &PartialFrameError{Frame: w.startFrame + w.bytesIn/w.frameBytes, Have: rem, FrameBytes: w.frameBytes}
			w.bytesIn -= rem
			w.c.bytesIn.Store(w.bytesIn)
			s.fill -= int(rem)
		}
		if s.fill > 0 {
			// A slot holding bytes is never in flight, so no join is
			// needed; a kick error is recorded and handled below.
			w.kick(s)
		}
	}
	w.stopWorker()
	frames := w.startFrame + w.bytesIn/w.frameBytes // the array's, not this run's
	if w.error() == nil {
		// The open row is finished as it is and every byte written and
		// committed before the final zarr.json names the frames.
		w.sw.close(frames)
	}
	var short error
	if w.error() == nil {
		shape0 := frames
		if !w.spec.Growing() && frames < w.spec.Shape[0] && w.inputErr == nil {
			short = &ShortInputError{Got: frames, Declared: w.spec.Shape[0]}
		}
		if err := w.sw.putMeta(shape0); err != nil {
			w.fail(err)
		}
	}
	if w.error() != nil {
		w.abandon()
	}
	w.teardown()
	if w.inputErr == nil {
		w.inputErr = partial
	}
	if w.inputErr == nil {
		w.inputErr = short
	}
	return w.result()
}

// result is what Close and Abort report: the first fatal error, else the
// input error.
func (w *Writer) result() error {
	if err := w.error(); err != nil {
		return err
	}
	return w.inputErr
}

// errClosedCtx cancels the Writer's context after a clean Close; it is not
// an error of the Writer.
var errClosedCtx = errors.New("writer closed")

// Abort stops the Writer: input stops, in-flight batches are finished or
// cancelled, open shard files are dropped, zarr.json is rewritten to name
// the frames of the committed shard rows, and slots are freed. It returns
// within a bounded time even when the sink is stalled, and returns the
// first error (err itself unless something failed earlier). It may be
// called from any goroutine, also while Write blocks.
func (w *Writer) Abort(err error) error {
	if w.closed.Load() {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.result()
	}
	if err == nil {
		err = ErrAborted
	}
	w.fail(err)
	if w.set.IOWorkers == 0 {
		// Writes are inline: the producer or the worker may be blocked
		// in one, so it is interrupted now.
		w.sw.interrupt()
	} else {
		// Lanes get drainTimeout to finish the complete rows queued to them
		// (see shardWriter.abort), then every file is interrupted, also
		// if the worker is blocked queueing to a stalled lane.
		time.AfterFunc(drainTimeout, w.sw.interrupt)
	}
	w.cancelSlots()
	w.stopFlusher()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed.Load() {
		return w.result()
	}
	w.stopWorker()
	w.abandon()
	w.teardown()
	return w.result()
}

// ClampNamed rewrites zarr.json to name n frames when it names more, once
// the Writer is closed or aborted: a pyramid whose level 0 holds fewer
// frames than a lower level committed (level 0's last rows failed after
// their frames were reduced) names no level frame that level 0 lacks. n
// should end a shard row: the committed rows past it stay on disk, as
// rows beyond shape[0], which readers never look at.
func (w *Writer) ClampNamed(n int64) error {
	if !w.closed.Load() {
		return errors.New("pipeline: ClampNamed before Close or Abort")
	}
	if n < 0 || n >= w.sw.named() {
		return nil
	}
	// Around the file tracking (an abort refuses new tracked files), and
	// bounded like an abort's rewrite: the sink may be the stalled one.
	w.sw.putMetaBounded(n, abortMetaTimeout)
	if got := w.sw.named(); got != n {
		return fmt.Errorf("zarr.json still names %d frames, not %d: %w", got, n, w.error())
	}
	return nil
}

// cancelSlots asks every slot's in-flight batch to stop early (where the
// stage can), so an abort does not wait for Depth batches to compress.
// Safe from any goroutine.
func (w *Writer) cancelSlots() {
	w.smu.Lock()
	defer w.smu.Unlock()
	for _, s := range w.stSlots {
		if c, ok := s.(stage.Canceler); ok {
			c.Cancel()
		}
	}
}

// stopWorker closes the job queue and waits for the worker to deliver or
// drop every queued batch. Afterwards no slot is in flight. Producer only.
func (w *Writer) stopWorker() {
	if w.stopped {
		return
	}
	w.stopped = true
	if w.jobs != nil {
		close(w.jobs)
		<-w.workerDone
	}
	// Every delivered batch's writes finish (or are dropped) before any
	// slot counts as free.
	w.sw.drain()
	for _, s := range w.slots {
		s.busy = false
	}
}

// abandon drops the open shard files and rewrites zarr.json naming only
// the frames of committed shard rows, within abortMetaTimeout. The worker
// is stopped, so the delivery state belongs to the caller.
func (w *Writer) abandon() {
	w.sw.abort(abortMetaTimeout)
}

// teardown stops the copy helpers and frees the slots: only after the
// worker is joined, so no job can touch a freed buffer.
func (w *Writer) teardown() {
	w.cp.stop()
	w.cancel(errClosedCtx) // stops a background allocation still running
	w.freeSlots()
	w.closed.Store(true)
}

func (w *Writer) freeSlots() {
	// No slot may still be in allocation: allocRest stops at the
	// cancelled context (teardown cancels before it frees).
	w.startRest(false)
	<-w.allocDone
	for _, s := range w.slots {
		if s.st == nil {
			continue // never allocated
		}
		if s == w.reading {
			// r.Read is still writing into its staging (see ReadFrom).
			w.deferFree = s
			continue
		}
		if err := s.st.Free(); err != nil {
			w.fail(fmt.Errorf("free slot: %w", err))
		}
	}
	w.slots = nil
}

// Stats returns the counters; safe from any goroutine.
func (w *Writer) Stats() Stats {
	q, r := w.queued.Load(), w.retired.Load()
	bi := w.c.bytesIn.Load()
	return Stats{
		BytesIn:      bi,
		Frames:       bi / w.frameBytes,
		Batches:      w.c.batches.Load(),
		Delivered:    w.c.delivered.Load(),
		BytesOut:     w.c.bytesOut.Load(),
		MetaBytes:    w.c.metaBytes.Load(),
		Named:        w.sw.named(),
		Shards:       w.c.shards.Load(),
		Committed:    w.c.committed.Load(),
		Pending:      q - r,
		PendingMax:   w.c.pendingMax.Load(),
		Copy:         time.Duration(w.c.copy.Load()),
		StallJoin:    time.Duration(w.c.stallJoin.Load()),
		StallPending: time.Duration(w.c.stallPending.Load()),
		StallRows:    time.Duration(w.c.stallRows.Load()),
		StageWait:    time.Duration(w.c.stageWait.Load()),
		Deliver:      time.Duration(w.c.deliver.Load()),
		AllocFirst:   time.Duration(w.c.allocFirst.Load()),
		AllocRest:    time.Duration(w.c.allocRest.Load()),
		StallAlloc:   time.Duration(w.c.stallAlloc.Load()),
		Stage: stage.Times{
			H2D:       time.Duration(w.c.h2d.Load()),
			Scatter:   time.Duration(w.c.scatter.Load()),
			Tile:      time.Duration(w.c.tile.Load()),
			Shuffle:   time.Duration(w.c.shuffle.Load()),
			Compress:  time.Duration(w.c.compress.Load()),
			Aggregate: time.Duration(w.c.aggregate.Load()),
			D2H:       time.Duration(w.c.d2h.Load()),
			Wall:      time.Duration(w.c.wall.Load()),
		},
	}
}

// abortMetaTimeout bounds the zarr.json rewrite during an abort: a sink
// that stalls must not make Abort hang. If it runs out, the previous
// zarr.json stays, which names at most the committed frames too. A
// healthy disk writes it in well under a millisecond; 150 ms keeps
// Abort's whole bound (1 s, what an interrupted user waits at most) far
// above it.
const abortMetaTimeout = 150 * time.Millisecond
