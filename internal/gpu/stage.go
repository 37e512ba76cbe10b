package gpu

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// tileParams mirrors struct TileParams in kernels/tile.cu (all fields
// 8-byte aligned, no padding differences).
type tileParams struct {
	limit      [zarr.MaxRank]int64
	chunk      [zarr.MaxRank]int64
	grid       [zarr.MaxRank]int64
	stride     [zarr.MaxRank]int64
	ext        [zarr.MaxRank]int64
	estride    [zarr.MaxRank]int64
	edim       [zarr.MaxRank]int64
	emul       [zarr.MaxRank]uint32
	eshr       [zarr.MaxRank]uint32
	chunkElems int64
	rank       int32
	nd         int32
}

// Options tune the GPU stage; the zero value is the default.
type Options struct {
	// Device is the CUDA ordinal (0 = first GPU).
	Device int
	// GeneralPath runs codec none through the codec plug-in path (an
	// identity encoder, then prefix sum and compaction) instead of copying
	// the tiled buffer straight back. Tests use it to check aggregation
	// against the CPU stage with a codec whose output is known.
	GeneralPath bool
	// ScratchLimit caps the codec scratch of one slot, in bytes (0: an
	// eighth of the card's free memory). A batch whose chunks need more is
	// encoded in groups of chunks, one after the other on the slot's
	// stream, reusing the scratch. Tests set it low to force groups.
	ScratchLimit int64
}

// Stage is the GPU compress stage (stage.Stage). Slots each own a stream,
// events, device buffers and pinned host buffers, and a worker goroutine
// that enqueues and completes their batches, so the H2D copy of one slot's
// batch, the kernels of another's and the D2H copy of a third overlap.
type Stage struct {
	spec       zarr.Spec
	opts       Options
	d          *Device
	lay        *stage.Layout // shared with the CPU stage: same tiling, same order
	frameBytes int64
	chunkBytes int64

	tileMod, aggMod *Module
	codecMod        *Module
	tileFn          *Function
	scanFn          *Function
	compactFn       *Function
	codec           CodecKernels // nil: codec none, tiled bytes go straight back
	downCfg         *stage.Downsample
	downMod         *Module
	down            *downKernel // nil: no next pyramid level

	slots stage.Slots // live slots; Close refuses while any is

	mu sync.Mutex
	// hostFree holds the pinned buffers of freed slots for the next
	// NewSlot. Pinning and unpinning cost about 1 s per GB on the H100
	// machine, so a Writer's teardown (or a new Writer on the same stage)
	// does not pay them again; Close releases them. Device memory is
	// never cached: Slot.Free returns it to the card at once.
	hostFree []*HostBuf
	// allocTime and pinTime add up NewSlot's device allocations and
	// host pinning (Startup).
	allocTime, pinTime time.Duration
}

var _ stage.Stage = (*Stage)(nil)

// NewStage builds the GPU stage for cfg.Spec on the first GPU.
func NewStage(cfg stage.Config) (*Stage, error) { return NewStageOptions(cfg, Options{}) }

// NewStageOptions builds the GPU stage with options.
func NewStageOptions(cfg stage.Config, o Options) (*Stage, error) {
	spec := cfg.Spec.Clone()
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("gpu stage: %w", err)
	}
	d, err := OpenDevice(o.Device)
	if err != nil {
		return nil, err
	}
	lay, err := stage.NewLayout(&spec)
	if err != nil {
		return nil, fmt.Errorf("gpu stage: %w", err)
	}
	s := &Stage{
		spec:       spec,
		opts:       o,
		d:          d,
		lay:        lay,
		frameBytes: spec.FrameBytes(),
		chunkBytes: spec.ChunkBytes(),
	}
	if cfg.Down != nil {
		s.downCfg = &stage.Downsample{Reduce: append([]bool(nil), cfg.Down.Reduce...), Method: cfg.Down.Method}
	}
	if err := s.load(); err != nil {
		s.unload()
		return nil, err
	}
	return s, nil
}

func (s *Stage) load() error {
	var err error
	if s.tileMod, err = s.d.LoadModule("tile"); err != nil {
		return err
	}
	if s.tileFn, err = s.tileMod.Function(fmt.Sprintf("tile_%d", s.spec.DType.Size())); err != nil {
		return err
	}
	if s.aggMod, err = s.d.LoadModule("aggregate"); err != nil {
		return err
	}
	if s.scanFn, err = s.aggMod.Function("scan_sizes"); err != nil {
		return err
	}
	if s.compactFn, err = s.aggMod.Function("compact"); err != nil {
		return err
	}
	if s.downCfg != nil {
		if s.downMod, err = s.d.LoadModule("downsample"); err != nil {
			return err
		}
		if s.down, err = newDownKernel(s.downMod, s.spec, s.downCfg); err != nil {
			return fmt.Errorf("gpu downsample: %w", err)
		}
	}
	switch {
	case s.spec.Codec == zarr.CodecNone && s.opts.GeneralPath:
		s.codec = identityCodec{}
	case s.spec.Codec == zarr.CodecNone:
	default:
		e, ok := lookupCodec(s.spec.Codec)
		if !ok {
			return fmt.Errorf("%w: codec %v has no GPU kernels yet (GPU codecs: %v)", ErrNoKernels, s.spec.Codec, GPUCodecs())
		}
		if s.codecMod, err = s.d.LoadModule(e.module); err != nil {
			return err
		}
		if s.codec, err = e.f(s.codecMod, s.spec); err != nil {
			return fmt.Errorf("gpu %v codec: %w", s.spec.Codec, err)
		}
	}
	return nil
}

func (s *Stage) unload() error {
	s.mu.Lock()
	free := s.hostFree
	s.hostFree = nil
	s.mu.Unlock()
	var errs []error
	for _, h := range free {
		errs = append(errs, h.Free())
	}
	errs = append(errs, s.codecMod.Unload(), s.aggMod.Unload(), s.tileMod.Unload(), s.downMod.Unload())
	return errors.Join(errs...)
}

// takeHost returns a pinned buffer of at least n bytes: the smallest
// cached one that fits, else a new one, whose pinning time it adds to
// *pinned (for Startup).
func (s *Stage) takeHost(n int64, pinned *time.Duration) (*HostBuf, error) {
	s.mu.Lock()
	best := -1
	for i, h := range s.hostFree {
		if l := int64(len(h.Bytes())); l >= n && (best < 0 || l < int64(len(s.hostFree[best].Bytes()))) {
			best = i
		}
	}
	if best >= 0 {
		h := s.hostFree[best]
		s.hostFree = append(s.hostFree[:best], s.hostFree[best+1:]...)
		s.mu.Unlock()
		return h, nil
	}
	s.mu.Unlock()
	t0 := time.Now()
	h, err := s.d.AllocHost(n)
	*pinned += time.Since(t0)
	return h, err
}

// putHost caches a freed slot's pinned buffer (nil is ignored).
func (s *Stage) putHost(h *HostBuf) {
	if h == nil {
		return
	}
	s.mu.Lock()
	s.hostFree = append(s.hostFree, h)
	s.mu.Unlock()
}

// Name implements stage.Stage.
func (s *Stage) Name() string { return "gpu" }

// CopyHelpers implements stage.CopyHinter: the GPU leaves the host cores
// idle, and the producer's copy into pinned staging is then the writer's
// limit. A sweep on the H100 machine (16 cores, orca2, codec none, whole
// writer, docs/bench/2026-11-25-h100-gpurt) went from 13.8 GB/s with 2
// helpers to 24.9 (6), 28.9 (10) and 31.6 (14): all cores but two (the
// producer's own and the delivery worker's) copy.
func (s *Stage) CopyHelpers() int { return max(0, runtime.GOMAXPROCS(0)-2) }

// Device is the stage's GPU.
func (s *Stage) Device() *Device { return s.d }

// CodecNote says how the GPU runs the store's codec and level, e.g. "zstd
// level 9 runs as GPU parse 'lazy' (levels >= 3)"; "" when there is
// nothing to say. For the CLI's --verbose.
func (s *Stage) CodecNote() string {
	if n, ok := s.codec.(Noter); ok {
		return n.Note()
	}
	return ""
}

// Close unloads the modules. Every slot must be freed first (see
// stage.Slots); a second Close does nothing.
func (s *Stage) Close() error {
	first, err := s.slots.Close()
	if err != nil {
		return fmt.Errorf("gpu stage: %w", err)
	}
	if !first {
		return nil
	}
	return s.unload()
}

// stride is the per-chunk capacity of the codec's scratch output, rounded
// up so every chunk's output starts 256-byte aligned.
func (s *Stage) stride() int64 {
	if s.codec == nil {
		return s.chunkBytes
	}
	return (s.codec.Bound(s.chunkBytes) + 255) &^ 255
}

// slot event indices, in stream order.
const (
	evStart = iota
	evH2D
	evTile
	evCodec
	evAgg
	evD2HStart
	evD2HEnd
	nEvents
)

// Slot is one GPU pipeline buffer set.
type Slot struct {
	s          *Stage
	maxFrames  int64
	maxChunks  int64
	stride     int64
	staging    *HostBuf // frames, filled by the producer
	tableHost  *HostBuf // chunk table for the tile kernel
	offHost    *HostBuf // chunk offsets back from the GPU (general path)
	outHost    *HostBuf // the batch's shard bytes
	table      []uint32
	plan       *stage.Plan
	offsets    []uint64
	dIn        DevPtr // frames; the compacted output on the general path
	dTiled     DevPtr
	dTable     DevPtr
	dOut       DevPtr // codec output, stride per chunk
	dSizes     DevPtr
	dOffsets   DevPtr
	dScratch   DevPtr
	dDown      DevPtr   // the next level's frames of the batch
	dDownP     DevPtr   // downParams for the batch
	downHost   *HostBuf // Output.Down
	downPHost  *HostBuf // downParams, uploaded with the batch
	group      int      // chunks encoded per codec launch (see Options.ScratchLimit)
	inBytes    int64
	outBytes   int64 // capacity of the shard bytes in outHost
	st         *Stream
	ev         [nEvents]*Event
	params     tileParams
	out        stage.Output
	kick       chan stage.Batch
	done       chan error
	quit       chan struct{}
	wg         sync.WaitGroup
	life       stage.Life
	tKick      time.Time
	generalRun bool
}

var _ stage.Slot = (*Slot)(nil)

// scratchGroup is the largest number of chunks, at most n, whose codec
// scratch fits in limit; at least one. Codecs whose scratch grows with the
// chunk count (zstd keeps ~0.5 MB per 128 KiB block whatever the chunk
// size) would otherwise need more device memory than the card has for a
// batch of many small chunks.
func scratchGroup(c CodecKernels, chunkBytes int64, n int, limit int64) int {
	if n <= 1 || c.Scratch(chunkBytes, n) <= limit {
		return max(n, 1)
	}
	lo, hi := 1, n // Scratch(lo) fits or lo == 1; Scratch(hi) does not
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if c.Scratch(chunkBytes, mid) <= limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// downBytes is the next level's frames of a batch of frames.
func (s *Stage) downBytes(frames int64) int64 {
	return s.downCfg.DownFrames(frames) * s.down.frameB
}

// deviceReserve is left free on the card for the context, module code and
// other users' small allocations.
const deviceReserve = 256 << 20

// NewSlot allocates a slot for batches of up to maxFrames frames.
func (s *Stage) NewSlot(maxFrames int64) (stage.Slot, error) {
	if maxFrames <= 0 {
		return nil, fmt.Errorf("gpu slot: maxFrames %d must be positive", maxFrames)
	}
	if err := s.slots.Add(); err != nil {
		return nil, fmt.Errorf("gpu stage: %w", err)
	}
	sl, err := s.newSlot(maxFrames)
	if err != nil {
		s.slots.Done()
		return nil, err
	}
	return sl, nil
}

func (s *Stage) newSlot(maxFrames int64) (*Slot, error) {
	sl := &Slot{s: s, maxFrames: maxFrames, stride: s.stride(), life: stage.NewLife(maxFrames)}
	sl.maxChunks = s.lay.Epochs(maxFrames) * s.lay.ChunksPerEpoch()
	if sl.maxChunks > 1<<31-1 {
		return nil, fmt.Errorf("gpu slot: a batch of %d frames holds %d chunks, more than the kernels index (2^31)", maxFrames, sl.maxChunks)
	}
	frameBytes := maxFrames * s.frameBytes
	tiled := sl.maxChunks * s.chunkBytes
	sl.inBytes = frameBytes
	need := frameBytes + tiled + sl.maxChunks*8
	free, total, err := s.d.MemInfo()
	if err != nil {
		return nil, err
	}
	if s.codec != nil {
		out := sl.maxChunks * sl.stride
		sl.inBytes = max(frameBytes, out) // dIn also receives the compacted output
		limit := s.opts.ScratchLimit
		if limit <= 0 {
			limit = free / 8
		}
		sl.group = scratchGroup(s.codec, s.chunkBytes, int(sl.maxChunks), limit)
		need = sl.inBytes + tiled + out + sl.maxChunks*8 + sl.maxChunks*4 + (sl.maxChunks+1)*8 + s.codec.Scratch(s.chunkBytes, sl.group)
	}
	if s.down != nil {
		need += s.downBytes(maxFrames) + downParamsSize
	}
	if need > free-deviceReserve {
		return nil, fmt.Errorf("gpu slot: batches of %d frames need %s of device memory per slot but %s of %s are free on %s; use a smaller batch or fewer slots (--depth)",
			maxFrames, gib(need), gib(free), gib(total), s.d.Name())
	}
	t0 := time.Now()
	var pinned time.Duration
	if err := sl.alloc(frameBytes, tiled, &pinned); err != nil {
		sl.release()
		return nil, fmt.Errorf("gpu slot: %w", err)
	}
	s.mu.Lock()
	s.pinTime += pinned
	s.allocTime += time.Since(t0) - pinned
	s.mu.Unlock()
	sl.initParams()
	sl.kick = make(chan stage.Batch)
	sl.done = make(chan error, 1)
	sl.quit = make(chan struct{})
	sl.wg.Add(1)
	go sl.worker()
	return sl, nil
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

func (sl *Slot) alloc(frameBytes, tiled int64, pinned *time.Duration) error {
	s, d := sl.s, sl.s.d
	var err error
	if sl.staging, err = s.takeHost(frameBytes, pinned); err != nil {
		return fmt.Errorf("pinned staging (%s): %w", gib(frameBytes), err)
	}
	if sl.tableHost, err = s.takeHost(sl.maxChunks*8, pinned); err != nil {
		return err
	}
	// The table is uint32 pairs in pinned memory, which cuMemHostAlloc
	// aligns to a page, so the reinterpretation is aligned and in bounds.
	sl.table = unsafe.Slice((*uint32)(unsafe.Pointer(&sl.tableHost.Bytes()[0])), sl.maxChunks*2)
	hostOut := tiled
	if s.codec != nil {
		hostOut = sl.maxChunks * sl.stride
		if sl.offHost, err = s.takeHost((sl.maxChunks+1)*8, pinned); err != nil {
			return err
		}
		sl.offsets = unsafe.Slice((*uint64)(unsafe.Pointer(&sl.offHost.Bytes()[0])), sl.maxChunks+1)
	}
	sl.outBytes = hostOut
	if sl.outHost, err = s.takeHost(hostOut, pinned); err != nil {
		return fmt.Errorf("pinned output (%s): %w", gib(hostOut), err)
	}
	if sl.dIn, err = d.Alloc(sl.inBytes); err != nil {
		return err
	}
	if sl.dTiled, err = d.Alloc(tiled); err != nil {
		return err
	}
	if sl.dTable, err = d.Alloc(sl.maxChunks * 8); err != nil {
		return err
	}
	if s.codec != nil {
		if sl.dOut, err = d.Alloc(sl.maxChunks * sl.stride); err != nil {
			return err
		}
		if sl.dSizes, err = d.Alloc(sl.maxChunks * 4); err != nil {
			return err
		}
		if sl.dOffsets, err = d.Alloc((sl.maxChunks + 1) * 8); err != nil {
			return err
		}
		if n := s.codec.Scratch(s.chunkBytes, sl.group); n > 0 {
			if sl.dScratch, err = d.Alloc(n); err != nil {
				return err
			}
		}
	}
	if s.down != nil {
		n := s.downBytes(sl.maxFrames)
		if sl.downHost, err = s.takeHost(max(n, 1), pinned); err != nil {
			return fmt.Errorf("pinned downsample output (%s): %w", gib(n), err)
		}
		if sl.downPHost, err = s.takeHost(downParamsSize, pinned); err != nil {
			return err
		}
		if sl.dDown, err = d.Alloc(max(n, 1)); err != nil {
			return err
		}
		if sl.dDownP, err = d.Alloc(downParamsSize); err != nil {
			return err
		}
	}
	if sl.st, err = d.NewStream(); err != nil {
		return err
	}
	for i := range sl.ev {
		if sl.ev[i], err = d.NewEvent(); err != nil {
			return err
		}
	}
	sl.plan = s.lay.NewPlan(sl.maxFrames)
	return nil
}

// release frees whatever alloc got; safe on a partly allocated slot.
func (sl *Slot) release() error {
	d := sl.s.d
	var errs []error
	for i := range sl.ev {
		errs = append(errs, sl.ev[i].Destroy())
	}
	errs = append(errs, sl.st.Destroy())
	for _, p := range []*DevPtr{&sl.dIn, &sl.dTiled, &sl.dTable, &sl.dOut, &sl.dSizes, &sl.dOffsets, &sl.dScratch, &sl.dDown, &sl.dDownP} {
		errs = append(errs, d.Free(*p))
		*p = 0
	}
	for _, h := range []*HostBuf{sl.staging, sl.tableHost, sl.offHost, sl.outHost, sl.downHost, sl.downPHost} {
		sl.s.putHost(h)
	}
	sl.staging, sl.tableHost, sl.offHost, sl.outHost, sl.downHost, sl.downPHost = nil, nil, nil, nil, nil, nil
	sl.table, sl.offsets = nil, nil
	return errors.Join(errs...)
}

func (sl *Slot) initParams() {
	s := &sl.s.spec
	p := &sl.params
	r := s.Rank()
	p.rank = int32(r)
	p.chunkElems = s.ChunkElems()
	st := int64(1)
	for d := r - 1; d >= 0; d-- {
		p.stride[d] = st
		st *= s.Shape[d]
		p.chunk[d] = s.Chunk[d]
		p.limit[d] = s.Shape[d]
	}
	for d := 1; d < r; d++ {
		p.grid[d] = (s.Shape[d] + s.Chunk[d] - 1) / s.Chunk[d]
	}
	p.nd = 0
	for d := r - 1; d >= 0; d-- {
		if s.Chunk[d] > 1 {
			p.ext[p.nd] = s.Chunk[d]
			p.estride[p.nd] = p.stride[d]
			p.edim[p.nd] = int64(d)
			p.emul[p.nd], p.eshr[p.nd] = fastDivisor(uint32(s.Chunk[d]))
			p.nd++
		}
	}
}

// fastDivisor returns mul, shr such that n/d == umulhi(n, mul) >> shr for
// every n < 2^31 (the tile kernel's in-chunk indices; chunks hold < 2^31
// elements), and mul = 0 for d = 1. This is the round-up method (as in
// CUTLASS's FastDivmod): with p = 31 + ceil(log2 d), mul = ceil(2^p / d),
// and the error of the rounded reciprocal stays below one for n < 2^31.
func fastDivisor(d uint32) (mul, shr uint32) {
	if d <= 1 {
		return 0, 0
	}
	l := uint32(bits.Len32(d - 1)) // ceil(log2 d)
	p := 31 + l
	m := (uint64(1)<<p + uint64(d) - 1) / uint64(d)
	return uint32(m), p - 32
}

// Staging implements stage.Slot: pinned memory the H2D copy reads.
func (sl *Slot) Staging() []byte { return sl.staging.Bytes()[:sl.maxFrames*sl.s.frameBytes] }

// Kick implements stage.Slot.
func (sl *Slot) Kick(b stage.Batch) error {
	return sl.life.Kick(b, func() error {
		sl.tKick = time.Now()
		sl.kick <- b
		return nil
	})
}

// Wait implements stage.Slot.
func (sl *Slot) Wait(ctx context.Context) (*stage.Output, error) {
	return sl.life.Wait(func() (*stage.Output, error) { return sl.wait(ctx) })
}

func (sl *Slot) wait(ctx context.Context) (*stage.Output, error) {
	var err error
	select {
	case err = <-sl.done:
	case <-ctx.Done():
		// The GPU finishes what was enqueued on its own, in bounded time;
		// the buffers are only safe to reuse or free after that.
		<-sl.done
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	sl.out.Times.Wall = time.Since(sl.tKick)
	return &sl.out, nil
}

// Free implements stage.Slot: it stops the worker, returns every device
// buffer, stream and event to the driver, and hands the pinned host
// buffers back to the stage, which reuses them for its next slots and
// frees them in Close. Again does nothing; during a batch it is refused
// (stage.Life), so Wait first.
func (sl *Slot) Free() error {
	return sl.life.Free(func() error {
		close(sl.quit)
		sl.wg.Wait()
		err := sl.release()
		sl.s.slots.Done()
		if err != nil {
			return fmt.Errorf("gpu slot free: %w", err)
		}
		return nil
	})
}

func (sl *Slot) worker() {
	defer sl.wg.Done()
	for {
		select {
		case <-sl.quit:
			return
		case b := <-sl.kick:
			sl.done <- sl.run(b)
		}
	}
}

// run enqueues one batch and waits for it on the worker's thread.
func (sl *Slot) run(b stage.Batch) error {
	s := sl.s
	defer s.d.enter()()
	// The plan fixes the chunk order (shard rows, shard columns, ascending
	// inner index); the tile kernel writes chunk k of it to tiled +
	// k*chunkBytes, reading table[k] = (epoch in batch, position over dims
	// 1..), so with codec none the tiled buffer is the shard bytes.
	p := sl.plan
	if err := s.lay.Plan(b, p); err != nil {
		return fmt.Errorf("gpu slot: %w", err)
	}
	n := len(p.Chunks)
	for k := 0; k < n; k++ {
		sl.table[2*k] = uint32(p.Epoch[k])
		sl.table[2*k+1] = uint32(p.Pos[k])
	}
	sl.out.Segs, sl.out.Chunks = p.Segs, p.Chunks
	st := sl.st
	var q seq
	rec := func(i int) { q.do(func() error { return sl.ev[i].Record(st) }) }
	sl.params.limit[0] = b.Frames
	nChunks := int32(n)
	rec(evStart)
	q.do(func() error { return st.CopyHtoD(sl.dIn, sl.staging.Bytes()[:b.Frames*s.frameBytes]) })
	q.do(func() error { return st.CopyHtoD(sl.dTable, sl.tableHost.Bytes()[:n*8]) })
	rec(evH2D)
	q.do(func() error {
		return st.Launch(s.tileFn, Dim3{X: uint32(n)}, Dim3{X: 256}, 0, sl.dIn, sl.dTiled, sl.dTable, nChunks, &sl.params)
	})
	var downFrames int64
	if k := s.down; k != nil {
		// Before the codec: the general path compacts its output into dIn.
		p, outFrames := k.params(b.Frames)
		downFrames = outFrames
		copy(sl.downPHost.Bytes(), p.bytes())
		q.do(func() error { return st.CopyHtoD(sl.dDownP, sl.downPHost.Bytes()[:downParamsSize]) })
		q.do(func() error { return k.launch(st, sl.dIn, sl.dDown, sl.dDownP, p.total) })
	}
	rec(evTile)
	// copyDown brings the next level's frames back with the batch's bytes.
	copyDown := func() error {
		if s.down == nil {
			return nil
		}
		return st.CopyDtoH(sl.downHost.Bytes()[:downFrames*s.down.frameB], sl.dDown)
	}
	var total int64
	if s.codec == nil {
		total = int64(n) * s.chunkBytes
		rec(evCodec)
		rec(evAgg)
		rec(evD2HStart)
		q.do(func() error { return st.CopyDtoH(sl.outHost.Bytes()[:total], sl.dTiled) })
		q.do(copyDown)
		rec(evD2HEnd)
		q.do(sl.ev[evD2HEnd].Synchronize)
		if q.err != nil {
			return sl.fail(q.err)
		}
		for i := range sl.out.Chunks {
			sl.out.Chunks[i].Off = int64(i) * s.chunkBytes
			sl.out.Chunks[i].Size = s.chunkBytes
		}
	} else {
		q.do(func() error {
			// Groups run one after the other on the slot's stream and
			// reuse the scratch; a chunk's bytes depend only on the chunk
			// (CodecKernels' determinism rule), so the grouping never
			// shows in the output.
			for g := 0; g < n; g += sl.group {
				k := min(sl.group, n-g)
				if err := s.codec.Encode(st, sl.dTiled.Add(int64(g)*s.chunkBytes), s.chunkBytes, k,
					sl.dOut.Add(int64(g)*sl.stride), sl.stride, sl.dSizes.Add(int64(g)*4), sl.dScratch); err != nil {
					return fmt.Errorf("gpu %v encode: %w", s.spec.Codec, err)
				}
			}
			return nil
		})
		rec(evCodec)
		q.do(func() error {
			return st.Launch(s.scanFn, Dim3{X: 1}, Dim3{X: 1024}, 0, sl.dSizes, nChunks, sl.dOffsets)
		})
		q.do(func() error {
			grid := uint32(min(n, 65535))
			return st.Launch(s.compactFn, Dim3{X: grid}, Dim3{X: 256}, 0, sl.dOut, sl.stride, sl.dSizes, sl.dOffsets, nChunks, sl.dIn)
		})
		q.do(func() error { return st.CopyDtoH(sl.offHost.Bytes()[:(n+1)*8], sl.dOffsets) })
		rec(evAgg)
		q.do(sl.ev[evAgg].Synchronize)
		if q.err != nil {
			return sl.fail(q.err)
		}
		total = int64(sl.offsets[n])
		if total > sl.outBytes {
			return fmt.Errorf("gpu %v encode: %d bytes of output exceed the codec's bound", s.spec.Codec, total)
		}
		rec(evD2HStart)
		q.do(func() error { return st.CopyDtoH(sl.outHost.Bytes()[:total], sl.dIn) })
		q.do(copyDown)
		rec(evD2HEnd)
		q.do(sl.ev[evD2HEnd].Synchronize)
		if q.err != nil {
			return sl.fail(q.err)
		}
		for i := range sl.out.Chunks {
			off := int64(sl.offsets[i])
			sl.out.Chunks[i].Off = off
			sl.out.Chunks[i].Size = int64(sl.offsets[i+1]) - off
		}
	}
	sl.out.Data = sl.outHost.Bytes()[:total]
	sl.out.Down, sl.out.DownFrames = nil, 0
	if s.down != nil {
		sl.out.Down, sl.out.DownFrames = sl.downHost.Bytes()[:downFrames*s.down.frameB], downFrames
	}
	for i := range sl.out.Segs {
		sg := &sl.out.Segs[i]
		if sg.N == 0 {
			continue
		}
		first, last := sl.out.Chunks[sg.First], sl.out.Chunks[sg.First+sg.N-1]
		sg.Off = first.Off
		sg.Len = last.Off + last.Size - first.Off
	}
	return sl.times()
}

// seq runs enqueue steps until the first error.
type seq struct{ err error }

func (q *seq) do(f func() error) {
	if q.err == nil {
		q.err = f()
	}
}

// fail waits for whatever was enqueued before an enqueue error, so the
// buffers are idle when the error reaches the caller.
func (sl *Slot) fail(err error) error {
	if serr := sl.st.Synchronize(); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

func (sl *Slot) times() error {
	var ms [nEvents]float32
	for i := 1; i < nEvents; i++ {
		v, err := Elapsed(sl.ev[i-1], sl.ev[i])
		if err != nil {
			return err
		}
		ms[i] = v
	}
	dur := func(v float32) time.Duration { return time.Duration(float64(v) * float64(time.Millisecond)) }
	sl.out.Times = stage.Times{
		H2D:  dur(ms[evH2D]),
		Tile: dur(ms[evTile]),
		D2H:  dur(ms[evD2HEnd]),
	}
	if sl.s.codec != nil {
		// Codec none has no compress or aggregate step (the tiled buffer
		// goes straight back); those stay zero as the contract asks.
		sl.out.Times.Compress = dur(ms[evCodec])
		sl.out.Times.Aggregate = dur(ms[evAgg])
	}
	return nil
}
