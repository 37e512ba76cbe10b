package pipeline

import (
	"runtime"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/sysinfo"
	"github.com/zwrite/zwrite/internal/zarr"
)

// DefaultIOWorkers is the number of shard files written at once. (To be
// settled by measurement on the GPU machine; see docs/bench.)
const DefaultIOWorkers = 8

// MaxIOWorkers bounds Config.IOWorkers: each lane is a goroutine with a
// queue, and no file system gains from hundreds of writers.
const MaxIOWorkers = 256

// MaxDepth bounds Config.Depth. Three slots already overlap the three
// stages fully (see DefaultDepth); more only cost memory and start-up, and
// every slot is a fixed set of buffers (pinned and device memory on the
// GPU), so a depth in the thousands is a mistake, not a tuning.
const MaxDepth = 64

// MaxBatchChunks bounds the inner chunks of one batch. Each chunk costs
// the stage bookkeeping beyond its bytes (chunkOverhead), which for tiny
// chunks outweighs the data: 32 MiB of 1-byte chunks once took 7.5 GB.
// 64 Ki chunks is a 32 MiB batch of 512-byte chunks; real chunks (tens of
// KiB and more) never reach it.
const MaxBatchChunks = 1 << 16

// chunkOverhead is what a slot holds per inner chunk beyond the staging
// and output bytes: the CPU stage's plan entry (chunk, epoch, position:
// ~40 bytes), its finished flag, and the encoder bound's per-chunk slack
// (zstd: frame header and block slack, ~80 bytes), rounded up.
const chunkOverhead = 192

// settle applies Config's defaults and the constraints between them. The
// depth must already be in 1..MaxDepth (or 0 for the default).
func settle(spec *zarr.Spec, cfg Config) Settings {
	s := Settings{Depth: cfg.Depth, CopyHelpers: cfg.CopyHelpers, CopyThreshold: cfg.CopyThreshold, FlushInterval: cfg.FlushInterval}
	if s.Depth <= 0 {
		s.Depth = DefaultDepth
	}
	if s.FlushInterval == 0 {
		s.FlushInterval = DefaultFlushInterval
	}
	switch {
	case s.Depth == 1 || cfg.IOWorkers < 0:
		s.IOWorkers = 0 // inline (rule 4 for depth 1)
	case cfg.IOWorkers == 0:
		s.IOWorkers = DefaultIOWorkers
	default:
		s.IOWorkers = cfg.IOWorkers
	}
	// Kicks move whole epochs, and with KickAlign a multiple of it: the
	// smallest unit is the least common multiple of both, in epochs.
	align := int64(1)
	if a := cfg.KickAlign; a > 1 {
		align = a / gcd(spec.EpochFrames(), a)
	}
	s.AlignFrames = align * spec.EpochFrames()
	epochBytes := spec.EpochFrames() * spec.FrameBytes()
	want := cfg.BatchBytes
	if want <= 0 {
		want = DefaultBatchBytes
	}
	// A whole number of epochs, the one nearest to the request, at least
	// one: the stage compresses whole epochs.
	epochs := max(1, (want+epochBytes/2)/epochBytes)
	// Not more chunks than MaxBatchChunks, unless one epoch has more.
	epochs = min(epochs, max(1, MaxBatchChunks/spec.ChunksPerEpoch()))
	if !spec.Growing() {
		// No slot larger than the whole declared array.
		epochs = min(epochs, (spec.Shape[0]+spec.EpochFrames()-1)/spec.EpochFrames())
	}
	budget := cfg.MemoryBudget
	if budget <= 0 {
		budget = memoryBudget()
	}
	// A sink's own buffers (object storage's parts: one per shard of the
	// open row, and those uploading) are memory the output takes as much
	// as the slots: they come out of the budget and out of the pending
	// bound, so that the bound the caller gives holds for both.
	s.SinkBytes = sink.BufferBytes(cfg.Sink, OpenRows*int(spec.ShardsPerRow()))
	budget = max(budget-s.SinkBytes, 1)
	if cfg.BatchBytes <= 0 {
		// Each slot holds about twice its batch (staging and compressed
		// output; incompressible data does not shrink). Keep the slots
		// within the memory budget.
		if fit := budget / (2 * int64(s.Depth) * epochBytes); epochs > fit {
			epochs = max(1, fit)
		}
	}
	s.MaxPending = cfg.MaxPending - s.SinkBytes
	if cfg.MaxPending <= 0 {
		// Sized from memory. With today's synchronous sinks pending bytes
		// are bounded by Depth batches anyway; the limit matters when set
		// lower than that, or for a sink that queues writes.
		s.MaxPending = budget
	}
	if epochs*epochBytes > s.MaxPending {
		// A batch above the limit could never be kicked: shrink it.
		epochs = max(1, s.MaxPending/epochBytes)
	}
	// A multiple of the alignment (which may exceed the budget's wish:
	// the alignment is a correctness rule).
	epochs = max(align, epochs/align*align)
	s.BatchFrames = epochs * spec.EpochFrames()
	s.BatchBytes = s.BatchFrames * spec.FrameBytes()
	s.BatchChunks = epochs * spec.ChunksPerEpoch()
	// The open shard row's indexes: one entry per inner chunk of every
	// shard in the row, plus one encoded index (see delivery).
	s.IndexBytes = (spec.ShardsPerRow() + 1) * spec.ChunksPerShard() * 16
	if s.MaxPending < s.BatchBytes {
		// One epoch is larger than the limit: allow exactly one batch in
		// flight, or nothing would ever move.
		s.MaxPending = s.BatchBytes
	}
	switch {
	case s.CopyHelpers < 0:
		s.CopyHelpers = 0
	case s.CopyHelpers == 0:
		s.CopyHelpers = defaultCopyHelpers()
		if h, ok := cfg.Stage.(stage.CopyHinter); ok {
			s.CopyHelpers = max(0, h.CopyHelpers())
		}
	}
	if s.CopyThreshold <= 0 {
		s.CopyThreshold = DefaultCopyThreshold
	}
	return s
}

// checkMemory refuses settings whose memory cannot fit in avail bytes (the
// memory available now; 0 = unknown, nothing refused), before anything is
// allocated: otherwise the allocation takes the machine into swap or the
// OOM killer. settle already shrinks the batches to the budget, so this
// fires only when even one epoch per slot is too much for the depth asked
// for, or when the shard indexes of one row are. A slot is counted as
// twice its batch (staging plus compressed output, which incompressible
// data does not shrink) plus chunkOverhead per chunk.
func checkMemory(s Settings, avail int64) error {
	if avail <= 0 || settingsMemory(s)+float64(s.SinkBytes) <= float64(avail) {
		return nil
	}
	return &MemoryError{Depth: s.Depth, BatchBytes: s.BatchBytes, SlotBytes: slotBytes(s), IndexBytes: s.IndexBytes, SinkBytes: s.SinkBytes, Available: avail}
}

// slotBytes is one slot's memory, in float64 because the product may
// overflow int64 for hostile settings.
func slotBytes(s Settings) float64 {
	return 2*float64(s.BatchBytes) + float64(s.BatchChunks)*chunkOverhead
}

// settingsMemory is what the slots and the indexes hold together.
func settingsMemory(s Settings) float64 {
	return float64(s.Depth)*slotBytes(s) + float64(s.IndexBytes)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// DefaultMemoryBudget is the slots' budget a Writer takes when its Config
// sets none (see memoryBudget).
func DefaultMemoryBudget() int64 { return memoryBudget() }

// memoryBudget is a quarter of the memory available now (1 GiB when
// unknown): the writer's buffers share the machine with the page cache
// that a directory sink fills, and with whatever produces the frames.
func memoryBudget() int64 {
	if avail := sysinfo.MemAvailable(); avail > 0 {
		return avail / 4
	}
	return 1 << 30
}

// Copy-helper defaults, from BenchmarkWrite (Write into a Writer with a
// do-nothing stage vs a plain memmove of the same bytes, interleaved in
// the same op; 2-core AMD EPYC dev machine, load ~4.5; ratio of Write to
// memmove over 3 runs, every write split when helpers run):
//
//	write size      64 KiB     1 MiB      4 MiB      16 MiB
//	serial          0.92-0.96  0.92-0.98  0.98-1.02  0.95-1.02
//	1 helper        0.63-0.69  0.43-0.49  0.88-0.92  0.71-0.98
//	3 helpers       0.53-0.57  0.57-0.86  0.88-0.89  0.86-0.95
//	(memmove: 10 GB/s at 64 KiB, 15-17 GB/s from 1 MiB up)
//
// A serial copy already runs at memmove speed (~17 GB/s per core here, far
// above one stream's 2-5 GB/s), and a split costs a hand-off and a wake-up
// per part and takes a core from the compress stage: on this machine it
// never paid. So the pool is off on small machines, and on large ones it
// gets a few helpers (a server core copies from DRAM at well under the
// socket's bandwidth, and there are cores to spare), used only for writes
// of 4 MiB and more, in parts of at least 2 MiB, where the hand-off is
// noise.
const DefaultCopyThreshold = 4 << 20

// defaultCopyHelpers: none up to 15 cores, then one per 8 cores, at most 3
// (four copiers come close to a socket's copy bandwidth).
func defaultCopyHelpers() int {
	return min(3, runtime.GOMAXPROCS(0)/8)
}
