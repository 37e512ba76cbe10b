package bench

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Baselines are measured in the same run as the result they sit beside,
// so a number from a noisy or shared machine still means something.
type Baselines struct {
	// MemmoveGBps: all cores copying the run's input buffer into another
	// of the same size: the ceiling of any writer that touches each byte.
	MemmoveGBps  float64 `json:"memmove_gbps"`
	MemmoveBytes int64   `json:"memmove_bytes"`
	// CeilingGBps: the CPU codec alone (stage's per-chunk encoder, the
	// same the CPU backend runs) compressing tiled chunks of the same
	// scenario and fill on all cores, input bytes per second.
	CeilingGBps   float64 `json:"codec_ceiling_gbps"`
	CeilingBytes  int64   `json:"codec_ceiling_bytes"`
	CeilingChunks int     `json:"codec_ceiling_chunks"` // distinct chunks in the sample
	CeilingRatio  float64 `json:"codec_ceiling_ratio"`  // compression ratio of the sample
	// CeilingCPUS is the process CPU time of the timed ceiling passes.
	CeilingCPUS float64 `json:"codec_ceiling_cpu_s"`
	// End-to-end input rate over each baseline.
	OverMemmove float64 `json:"e2e_over_memmove"`
	OverCeiling float64 `json:"e2e_over_ceiling"`
	// OverCeilingCPU compares bytes per CPU second instead of per wall
	// second: the ceiling's CPU cost per byte over the run's. On a quiet
	// machine it tracks OverCeiling; on a shared one it is the steadier
	// number (other processes change wall time, not our CPU time).
	OverCeilingCPU float64 `json:"e2e_over_ceiling_cpu"`
}

// baselineMin is how long each baseline runs at least, so its number is
// not one cold pass.
var baselineMin = time.Second

// memmoveGBps copies src into dst with one goroutine per core, in passes
// until at least want bytes moved and baselineMin passed (or limit bytes
// moved, whichever comes first after one pass).
func memmoveGBps(src, dst []byte, want int64) (float64, int64) {
	if len(src) == 0 {
		return 0, 0
	}
	workers := runtime.GOMAXPROCS(0)
	per := (len(src) + workers - 1) / workers
	pass := func() {
		var wg sync.WaitGroup
		for off := 0; off < len(src); off += per {
			end := min(off+per, len(src))
			wg.Go(func() { copy(dst[off:end], src[off:end]) })
		}
		wg.Wait()
	}
	pass() // untimed: fault in dst's pages, as the pipeline's staging is
	var moved int64
	start := time.Now()
	for {
		pass()
		moved += int64(len(src))
		if moved >= want && time.Since(start) >= baselineMin {
			break
		}
		if time.Since(start) >= 4*baselineMin {
			break // enough for a stable number on any machine
		}
	}
	return float64(moved) / time.Since(start).Seconds() / 1e9, moved
}

// ChunkEncoder compresses one inner chunk into dst[:0] and returns the
// result; the stage package's CPU encoder satisfies it.
type ChunkEncoder interface {
	Encode(dst, src []byte) ([]byte, error)
}

// ceilingSampleMax bounds the tiled sample the codec ceiling compresses:
// enough distinct chunks that caches do not flatter the codec, small
// enough for a 24 GiB machine beside the pipeline's slots.
const ceilingSampleMax = 256 << 20

// codecCeiling tiles up to ceilingSampleMax bytes of chunks of epoch 0
// (positions spread evenly over the epoch, so every part of the frame is
// represented) from the fill, then compresses them on all cores in
// passes for at least baselineMin.
func codecCeiling(kind Fill, spec *zarr.Spec, newEnc func() (ChunkEncoder, error)) (gbps float64, bytes int64, nchunks int, ratio, cpuS float64, err error) {
	cb := spec.ChunkBytes()
	perEpoch := spec.ChunksPerEpoch()
	n := min(perEpoch, max(ceilingSampleMax/cb, 1))
	sample := make([]byte, n*cb)
	{
		// Tile in parallel: the sample can be 256 MiB.
		workers := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Go(func() {
				f := newFiller(kind, spec)
				defer f.release()
				for i := int64(w); i < n; i += int64(workers) {
					pos := i * perEpoch / n
					fillChunk(f, kind, spec, 0, pos, sample[i*cb:(i+1)*cb])
				}
			})
		}
		wg.Wait()
	}

	workers := runtime.GOMAXPROCS(0)
	encs := make([]ChunkEncoder, workers)
	outs := make([][]byte, workers)
	defer func() {
		for _, e := range encs {
			if c, ok := e.(io.Closer); ok {
				_ = c.Close()
			}
		}
	}()
	for i := range encs {
		if encs[i], err = newEnc(); err != nil {
			return 0, 0, 0, 0, 0, fmt.Errorf("codec ceiling: %w", err)
		}
		room := int(cb + cb/8 + 1024)
		if b, ok := encs[i].(interface{ Bound(int) int }); ok {
			room = max(room, b.Bound(int(cb)))
		}
		outs[i] = make([]byte, 0, room)
	}
	var outBytes atomic.Int64
	var firstErr error
	var errOnce sync.Once
	pass := func(count bool) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= n {
						return
					}
					out, err := encs[w].Encode(outs[w][:0], sample[i*cb:(i+1)*cb])
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					outs[w] = out
					if count {
						outBytes.Add(int64(len(out)))
					}
				}
			})
		}
		wg.Wait()
	}
	pass(true) // warm the encoders' tables; also measures the ratio
	if firstErr != nil {
		return 0, 0, 0, 0, 0, fmt.Errorf("codec ceiling: encode: %w", firstErr)
	}
	start, cpu0 := time.Now(), cpuTime()
	for time.Since(start) < baselineMin {
		pass(false)
		bytes += int64(len(sample))
	}
	cpuS = (cpuTime() - cpu0).Seconds()
	if firstErr != nil {
		return 0, 0, 0, 0, 0, fmt.Errorf("codec ceiling: encode: %w", firstErr)
	}
	gbps = float64(bytes) / time.Since(start).Seconds() / 1e9
	ratio = float64(len(sample)) / float64(max(outBytes.Load(), 1))
	return gbps, bytes, int(n), ratio, cpuS, nil
}

// fillChunk writes inner chunk pos (C order over dims 1..) of epoch into
// dst (ChunkBytes long) as the tiler would produce it from frames of kind:
// C order inside the chunk, padded with 0 beyond the shape.
func fillChunk(f *filler, kind Fill, spec *zarr.Spec, epoch, pos int64, dst []byte) {
	rank := spec.Rank()
	es := int64(spec.DType.Size())
	if kind == FillZeros {
		clear(dst)
		return
	}
	if rank == 1 {
		f.fill(epoch*spec.Chunk[0], dst)
		return
	}
	// Chunk origin in global coordinates.
	var origin, local [zarr.MaxRank]int64
	grid := spec.ChunkGrid()
	origin[0] = epoch * spec.Chunk[0]
	p := pos
	for d := rank - 1; d >= 1; d-- {
		origin[d] = p % grid[d-1] * spec.Chunk[d]
		p /= grid[d-1]
	}
	rowLen := spec.Chunk[rank-1]
	valid := min(rowLen, spec.Shape[rank-1]-origin[rank-1])
	off := int64(0)
	for {
		// Global element index of the row start, or -1 past the shape.
		idx := int64(0)
		inside := true
		for d := 0; d < rank; d++ {
			c := origin[d] + local[d]
			if d > 0 && c >= spec.Shape[d] {
				inside = false
				break
			}
			if d > 0 {
				idx *= spec.Shape[d]
			}
			idx += c
		}
		row := dst[off*es : (off+rowLen)*es]
		if inside {
			f.fill(idx, row[:valid*es])
			clear(row[valid*es:])
		} else {
			clear(row)
		}
		off += rowLen
		d := rank - 2
		for ; d >= 0; d-- {
			local[d]++
			if local[d] < spec.Chunk[d] {
				break
			}
			local[d] = 0
		}
		if d < 0 {
			return
		}
	}
}
