package pipeline

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/zwrite/zwrite/internal/zarr"
)

// settle applies Config's defaults and the constraints between them.
func settle(spec *zarr.Spec, cfg Config) Settings {
	s := Settings{Depth: cfg.Depth, CopyHelpers: cfg.CopyHelpers, CopyThreshold: cfg.CopyThreshold}
	if s.Depth <= 0 {
		s.Depth = DefaultDepth
	}
	epochBytes := spec.EpochFrames() * spec.FrameBytes()
	want := cfg.BatchBytes
	if want <= 0 {
		want = DefaultBatchBytes
	}
	// A whole number of epochs, the one nearest to the request, at least
	// one: the stage compresses whole epochs.
	epochs := max(1, (want+epochBytes/2)/epochBytes)
	if !spec.Growing() {
		// No slot larger than the whole declared array.
		epochs = min(epochs, (spec.Shape[0]+spec.EpochFrames()-1)/spec.EpochFrames())
	}
	budget := memoryBudget()
	if cfg.BatchBytes <= 0 {
		// Each slot holds about twice its batch (staging and compressed
		// output; incompressible data does not shrink). Keep the slots
		// within the memory budget.
		if fit := budget / (2 * int64(s.Depth) * epochBytes); epochs > fit {
			epochs = max(1, fit)
		}
	}
	s.MaxPending = cfg.MaxPending
	if s.MaxPending <= 0 {
		// Sized from memory. With today's synchronous sinks pending bytes
		// are bounded by Depth batches anyway; the limit matters when set
		// lower than that, or for a sink that queues writes.
		s.MaxPending = budget
	}
	if epochs*epochBytes > s.MaxPending {
		// A batch above the limit could never be kicked: shrink it.
		epochs = max(1, s.MaxPending/epochBytes)
	}
	s.BatchFrames = epochs * spec.EpochFrames()
	s.BatchBytes = s.BatchFrames * spec.FrameBytes()
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
	}
	if s.CopyThreshold <= 0 {
		s.CopyThreshold = DefaultCopyThreshold
	}
	return s
}

// memoryBudget is a quarter of the memory available now (1 GiB when
// unknown): the writer's buffers share the machine with the page cache
// that a directory sink fills, and with whatever produces the frames.
func memoryBudget() int64 {
	if avail := memAvailable(); avail > 0 {
		return avail / 4
	}
	return 1 << 30
}

func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			fs := strings.Fields(rest)
			if len(fs) >= 1 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// DefaultCopyThreshold and defaultCopyHelpers: see BenchmarkWrite.
const DefaultCopyThreshold = 1 << 20

func defaultCopyHelpers() int {
	return min(3, runtime.GOMAXPROCS(0)-1)
}
