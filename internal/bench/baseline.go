package bench

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/gpu"
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
	CeilingGBps float64 `json:"codec_ceiling_gbps"`
	// The ceiling is measured just before and just after the run;
	// CeilingGBps is over both together.
	CeilingBeforeGBps float64 `json:"codec_ceiling_before_gbps"`
	CeilingAfterGBps  float64 `json:"codec_ceiling_after_gbps"`
	CeilingBytes      int64   `json:"codec_ceiling_bytes"`
	CeilingChunks     int     `json:"codec_ceiling_chunks"` // distinct chunks in the sample
	CeilingRatio      float64 `json:"codec_ceiling_ratio"`  // compression ratio of the sample
	// CeilingCPUS is the process CPU time of the timed ceiling passes
	// (before and after together).
	CeilingCPUS float64 `json:"codec_ceiling_cpu_s"`
	// Copy is the card's pinned H2D/D2H bandwidth, measured after the run
	// when the GPU backend ran (nil otherwise); OverH2D is end-to-end over
	// its H2D rate, the PCIe ceiling of a GPU pipeline.
	Copy    *gpu.CopyBandwidth `json:"gpu_copy,omitempty"`
	OverH2D float64            `json:"e2e_over_h2d,omitempty"`
	// Read and Write are the --input run's I/O ceilings: the input file
	// read with N threads of positioned reads, and (with an output
	// directory) the store's shard files written with N threads to the
	// output's file system; the best N counts. OverRead is the input rate
	// over Read's, OverWrite the output rate over Write's.
	Read      *IOCeiling `json:"read_ceiling,omitempty"`
	Write     *IOCeiling `json:"write_ceiling,omitempty"`
	OverRead  float64    `json:"e2e_over_read,omitempty"`
	OverWrite float64    `json:"e2e_over_write,omitempty"`
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

// ceiling is the codec-ceiling baseline: a tiled sample of the scenario's
// chunks and one encoder per core, made once so that the ceiling can be
// measured before and after the run (the mean of both is what the run is
// compared with: on a shared machine, load changes over a run).
type ceiling struct {
	sample   []byte
	cb, n    int64
	encs     []ChunkEncoder
	outs     [][]byte
	outBytes int64 // compressed size of the whole sample
	firstErr error
	errOnce  sync.Once
}

// newCeiling tiles up to ceilingSampleMax bytes of chunks of epoch 0
// (positions spread evenly over the epoch, so every part of the frame is
// represented) from the fill, makes the encoders and compresses the sample
// once, untimed (warms the encoders' tables; measures the ratio).
//
// With src set the chunks come from src (an --input run's file) instead of
// the fill.
func newCeiling(kind Fill, src io.ReaderAt, spec *zarr.Spec, newEnc func() (ChunkEncoder, error)) (*ceiling, error) {
	c := &ceiling{cb: spec.ChunkBytes()}
	perEpoch := spec.ChunksPerEpoch()
	c.n = min(perEpoch, max(ceilingSampleMax/c.cb, 1))
	c.sample = make([]byte, c.n*c.cb)
	workers := runtime.GOMAXPROCS(0)
	if src != nil {
		kind = fillFile
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		// Tile in parallel: the sample can be 256 MiB.
		wg.Go(func() {
			f := newFiller(kind, spec)
			if src != nil {
				f = newFileFiller(spec, src)
			}
			defer f.release()
			for i := int64(w); i < c.n; i += int64(workers) {
				pos := i * perEpoch / c.n
				fillChunk(f, kind, spec, 0, pos, c.sample[i*c.cb:(i+1)*c.cb])
			}
			errs[w] = f.srcErr
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("codec ceiling: read the input's first epoch: %w", err)
	}

	c.encs = make([]ChunkEncoder, workers)
	c.outs = make([][]byte, workers)
	for i := range c.encs {
		e, err := newEnc()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("codec ceiling: %w", err)
		}
		c.encs[i] = e
		room := int(c.cb + c.cb/8 + 1024)
		if b, ok := e.(interface{ Bound(int) int }); ok {
			room = max(room, b.Bound(int(c.cb)))
		}
		c.outs[i] = make([]byte, 0, room)
	}
	c.outBytes = c.pass(true)
	if c.firstErr != nil {
		c.close()
		return nil, fmt.Errorf("codec ceiling: encode: %w", c.firstErr)
	}
	return c, nil
}

// pass compresses the sample once on all cores; with count it returns the
// compressed size.
func (c *ceiling) pass(count bool) int64 {
	var next, out atomic.Int64
	var wg sync.WaitGroup
	for w := range c.encs {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= c.n {
					return
				}
				o, err := c.encs[w].Encode(c.outs[w][:0], c.sample[i*c.cb:(i+1)*c.cb])
				if err != nil {
					c.errOnce.Do(func() { c.firstErr = err })
					return
				}
				c.outs[w] = o
				if count {
					out.Add(int64(len(o)))
				}
			}
		})
	}
	wg.Wait()
	return out.Load()
}

// measure runs passes for at least baselineMin and returns the bytes
// compressed, the wall time and the process CPU time they took.
func (c *ceiling) measure() (bytes int64, wall, cpu time.Duration, err error) {
	start, cpu0 := time.Now(), cpuTime()
	for time.Since(start) < baselineMin {
		c.pass(false)
		bytes += int64(len(c.sample))
	}
	if c.firstErr != nil {
		return 0, 0, 0, fmt.Errorf("codec ceiling: encode: %w", c.firstErr)
	}
	return bytes, time.Since(start), cpuTime() - cpu0, nil
}

// ratio is the sample's compression ratio.
func (c *ceiling) ratio() float64 { return float64(len(c.sample)) / float64(max(c.outBytes, 1)) }

func (c *ceiling) close() {
	for _, e := range c.encs {
		if cl, ok := e.(io.Closer); ok && e != nil {
			_ = cl.Close()
		}
	}
	c.encs = nil
}

// gatherMax bounds the elements fillChunk fills per chunk element when the
// chunk takes one element of each trailing axis (256cube's x·c rows with
// chunk c = 1: 3): filling the whole span and picking every stride-th
// element beats one fill call per element up to a few dozen.
const gatherMax = 16

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
	// Rows run along axis rd: the last one the chunk spans more than one
	// element of. The axes after it contribute one element each, so a
	// chunk row is every stride-th element of a span of the frame, from
	// element off of it.
	rd := rank - 1
	for rd > 1 && spec.Chunk[rd] == 1 {
		rd--
	}
	stride, off := int64(1), int64(0)
	for d := rank - 1; d > rd; d-- {
		off += origin[d] * stride
		stride *= spec.Shape[d]
	}
	if stride > gatherMax {
		rd, stride, off = rank-1, 1, 0
	}
	rowLen := spec.Chunk[rd]
	valid := min(rowLen, spec.Shape[rd]-origin[rd])
	if stride > 1 {
		if need := int(valid * stride * es); cap(f.span) < need {
			f.span = make([]byte, need)
		}
	}
	o := int64(0)
	for {
		// Global element index of the row start (the axes after rd at
		// 0), or outside the shape.
		idx := int64(0)
		inside := true
		for d := 0; d <= rd; d++ {
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
		row := dst[o*es : (o+rowLen)*es]
		switch {
		case !inside:
			clear(row)
		case stride == 1:
			f.fill(idx, row[:valid*es])
			clear(row[valid*es:])
		default:
			span := f.span[:valid*stride*es]
			f.fill(idx*stride, span)
			for i := int64(0); i < valid; i++ {
				at := (i*stride + off) * es
				copy(row[i*es:(i+1)*es], span[at:at+es])
			}
			clear(row[valid*es:])
		}
		o += rowLen
		d := rd - 1
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
