package cpu

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// chunkMajor is where a slot fed through stage.FrameWriter keeps its
// input: every inner chunk of the batch padded and contiguous, epoch by
// epoch (batch-relative), then by position (C order over dims 1..), so a
// worker compresses a chunk straight from it with no gather. The producer's
// bytes land there in one pass (scatter): a frame is a sequence of lines
// along dim m (dims above m are whole in a chunk, so they ride along in
// the line), and a line splits at chunk boundaries of dim m into segments
// that are contiguous in both the frame and their chunk.
//
// Bytes a batch never writes stay as they were: the padding of edge
// chunks is never written, so it keeps the zero of allocation; frames of
// a partial last epoch past the batch's end are cleared at Kick (clearTail).
type chunkMajor struct {
	rank                      int
	c0                        int64 // frames per epoch (chunk[0])
	frameBytes                int64
	chunkBytes                int64
	stride                    int64 // bytes from one chunk to the next (chunkBytes, padded)
	epochStride               int64 // perEpoch * stride
	perEpoch                  int64
	m                         int // dim the lines run along (>= 1)
	lineBytes, segBytes, last int64
	segs                      int64 // segments per line (grid[m])
	// nt: whole segments go through copyRunsNT (see write).
	nt bool
	// shufBS > 0: every chunk is held with each block of shufBS bytes
	// byte-shuffled for typesize 2 (blosc.ShuffledOffset), the layout
	// blosc would make of it before compressing, so the compressor reads
	// each chunk once (ChunkEncoder.EncodeShuffled) and the shuffle rides
	// on the copy the scatter makes anyway (see preShuffle).
	shufBS       int64
	shuffle      bool
	shape, chunk [zarr.MaxRank]int64
	dstStride    [zarr.MaxRank]int64 // byte stride inside a chunk; [0]: one frame
	gridStride   [zarr.MaxRank]int64 // position stride of a chunk coordinate
}

func newChunkMajor(spec *zarr.Spec) chunkMajor {
	n := spec.Rank()
	es := int64(spec.DType.Size())
	g := chunkMajor{
		rank:       n,
		c0:         spec.Chunk[0],
		frameBytes: spec.FrameBytes(),
		chunkBytes: spec.ChunkBytes(),
		perEpoch:   spec.ChunksPerEpoch(),
	}
	copy(g.shape[:], spec.Shape)
	copy(g.chunk[:], spec.Chunk)
	g.stride = g.chunkBytes
	if n >= 2 {
		// Chunks a multiple of 512 bytes apart put the write streams of
		// one line (one per chunk of the line) into the same few L1 and
		// L2 sets; a cache line more per chunk spreads them over all sets.
		// (Rank 1 keeps stride = chunkBytes: its chunk-major order is then
		// frame order and the scatter is one copy.)
		g.stride = (g.chunkBytes + 63) &^ 63
		if g.stride%512 == 0 {
			g.stride += 64
		}
	}
	g.epochStride = g.perEpoch * g.stride
	g.dstStride[0] = es     // rank 1: a frame is one element
	src := make([]int64, n) // byte stride of each dim in a frame
	if n >= 2 {
		src[n-1], g.dstStride[n-1] = es, es
		g.gridStride[n-1] = 1
		for d := n - 2; d >= 1; d-- {
			src[d] = src[d+1] * g.shape[d+1]
			g.dstStride[d] = g.dstStride[d+1] * g.chunk[d+1]
			g.gridStride[d] = g.gridStride[d+1] * ceilDiv(g.shape[d+1], g.chunk[d+1])
		}
		g.dstStride[0] = g.dstStride[1] * g.chunk[1]
		g.m = n - 1
		for g.m > 1 && g.chunk[g.m] == g.shape[g.m] {
			g.m--
		}
		g.lineBytes = g.shape[g.m] * src[g.m]
		g.segBytes = g.chunk[g.m] * src[g.m]
		g.segs = ceilDiv(g.shape[g.m], g.chunk[g.m])
		g.last = g.lineBytes - (g.segs-1)*g.segBytes
		g.nt = haveNT && g.segBytes%16 == 0 && g.segBytes >= 64
	}
	return g
}

// preShuffle switches g to the byte-shuffled layout of blosc blocks of bs
// bytes for typesize ts, where the scatter's kernel does it: typesize 2,
// whole segments that the non-temporal kernel takes, a multiple of 32
// bytes (16 elements, one 16-byte store per plane) that tile the blocks
// (so a segment never straddles two, and each plane's part starts
// 16-byte aligned). Elsewhere it leaves the plain layout (the encoder
// shuffles), and reports false.
//
// Measured on the 2-core dev VM, orca2 lz4: the encoder's own shuffle read
// each chunk from memory at 14 GB/s per core (42 GB/s from cache), 12% of
// the run's CPU time.
func (g *chunkMajor) preShuffle(ts, bs int64) bool {
	if ts != 2 || !g.nt || g.segBytes%32 != 0 || bs <= 0 || bs%g.segBytes != 0 || g.chunkBytes%ts != 0 {
		return false
	}
	g.shuffle, g.shufBS = true, bs
	return true
}

// block is the block of the shuffled layout that holds in-chunk offset x:
// its start and its plane length (elements; the last block may be short).
func (g *chunkMajor) block(x int64) (start, n int64) {
	start = x / g.shufBS * g.shufBS
	return start, min(g.shufBS, g.chunkBytes-start) / 2
}

// putShuffled writes q at in-chunk offset x of the chunk at cs, in the
// shuffled layout: the pieces the kernel does not take (writes cut inside
// a segment, a ragged last segment, tests without the kernel). Whole
// elements of a block go two planes at a time, odd bytes alone.
func (g *chunkMajor) putShuffled(buf []byte, cs, x int64, q []byte) {
	for len(q) > 0 {
		b, n := g.block(x)
		r := x - b
		k := min(int64(len(q)), 2*n-r)
		blk := buf[cs+b : cs+b+2*n]
		i := int64(0)
		if r%2 == 1 { // the high byte of an element begun before
			blk[n+r/2] = q[0]
			i = 1
		}
		lo, hi := blk[(r+i)/2:n], blk[n+(r+i)/2:]
		e := (k - i) / 2
		for j := int64(0); j < e; j++ {
			lo[j], hi[j] = q[i+2*j], q[i+2*j+1]
		}
		if i+2*e < k { // the low byte of an element the next write ends
			lo[e] = q[k-1]
		}
		x += k
		q = q[k:]
	}
}

// spans calls f with every stretch [off, off+n) of a chunk's buffer that
// holds in-chunk bytes [lo, hi) (whole elements): one in the plain layout,
// one per plane of each block in the shuffled one.
func (g *chunkMajor) spans(lo, hi int64, f func(off, n int64)) {
	if !g.shuffle {
		f(lo, hi-lo)
		return
	}
	for lo < hi {
		b, n := g.block(lo)
		end := min(hi, b+2*n)
		e0, e1 := (lo-b)/2, (end-b)/2
		f(b+e0, e1-e0)
		f(b+n+e0, e1-e0)
		lo = end
	}
}

// size is the buffer a batch of up to maxFrames frames needs.
func (g *chunkMajor) size(maxFrames int64) int64 {
	return ceilDiv(maxFrames, g.c0) * g.epochStride
}

// at is where the chunk of batch-relative epoch e and position pos starts.
func (g *chunkMajor) at(e, pos int64) int64 { return e*g.epochStride + pos*g.stride }

// write scatters p, bytes [off, off+len(p)) of the batch's frame-order
// input, into buf.
func (g *chunkMajor) write(buf, p []byte, off int64) {
	if g.rank < 2 {
		copy(buf[off:], p)
		return
	}
	f, q := off/g.frameBytes, off%g.frameBytes
	e, fi := f/g.c0, f%g.c0
	li, t := q/g.lineBytes, q%g.lineBytes
	// The line's coordinates over dims 1..m-1: x, split into chunk
	// coordinate and offset inside the chunk; pos and in are what they add
	// to the chunk's position and to the byte offset inside it.
	var x, r, c [zarr.MaxRank]int64
	var pos, in int64
	for d := g.m - 1; d >= 1; d-- {
		x[d] = li % g.shape[d]
		li /= g.shape[d]
		c[d], r[d] = x[d]/g.chunk[d], x[d]%g.chunk[d]
		pos += c[d] * g.gridStride[d]
		in += r[d] * g.dstStride[d]
	}
	nt := false
	for len(p) > 0 {
		j, u := t/g.segBytes, t%g.segBytes
		o := fi*g.dstStride[0] + in              // the line's offset inside its chunks
		cs := e*g.epochStride + (pos+j)*g.stride // segment j's chunk
		base := cs + o
		if u == 0 && g.nt && !noNT && g.shuffle {
			// As below, each segment split into its two planes.
			full := g.segs - j
			if g.last != g.segBytes {
				full--
			}
			full = min(full, int64(len(p))/g.segBytes)
			if full > 0 && aligned16(buf[cs:]) {
				b, n := g.block(o)
				d := cs + b + (o-b)/2
				end := d + (full-1)*g.stride + n + g.segBytes/2
				_ = buf[d:end] // the kernel writes inside [d, end)
				copyShuffle2NT(&buf[d], int(g.stride), int(n), &p[0], int(g.segBytes), int(full))
				nt = true
				p = p[full*g.segBytes:]
				j += full
				cs += full * g.stride
			}
		} else if u == 0 && g.nt && !noNT {
			// The line's whole segments in one call (the last one only if
			// the shape does not cut it), with non-temporal stores: a
			// chunk is read back only once its epoch is complete, an
			// epoch of frames later (never from cache), so plain stores
			// would fetch every destination line first and evict the
			// source. Measured per core on the 2-core VM (thread CPU
			// time, 64 MiB writes): orca2 5.3 -> 17-19 GB/s, medfmt
			// 5.3 -> 10-15 GB/s, where memmove does 13-19.
			full := g.segs - j
			if g.last != g.segBytes {
				full--
			}
			full = min(full, int64(len(p))/g.segBytes)
			if full > 0 && aligned16(buf[base:]) {
				end := base + (full-1)*g.stride + g.segBytes
				_ = buf[base:end] // the kernel writes [base, end)
				copyRunsNT(&buf[base], int(g.stride), &p[0], int(g.segBytes), int(full))
				nt = true
				p = p[full*g.segBytes:]
				j += full
				base += full * g.stride
			}
		}
		for ; j < g.segs && len(p) > 0; j++ {
			n := g.segBytes
			if j == g.segs-1 {
				n = g.last
			}
			k := min(n-u, int64(len(p)))
			if g.shuffle {
				g.putShuffled(buf, cs, o+u, p[:k])
			} else {
				d := base + u
				copy(buf[d:d+k], p[:k])
			}
			p = p[k:]
			u = 0
			base += g.stride
			cs += g.stride
		}
		t = 0
		// Next line: step the odometer over dims m-1..1, then the frame.
		d := g.m - 1
		for ; d >= 1; d-- {
			x[d]++
			r[d]++
			in += g.dstStride[d]
			if r[d] == g.chunk[d] {
				r[d] = 0
				c[d]++
				pos += g.gridStride[d]
				in -= g.chunk[d] * g.dstStride[d]
			}
			if x[d] < g.shape[d] {
				break
			}
			pos -= c[d] * g.gridStride[d]
			in -= r[d] * g.dstStride[d]
			x[d], r[d], c[d] = 0, 0, 0
		}
		if d < 1 {
			if fi++; fi == g.c0 {
				fi, e = 0, e+1
			}
		}
	}
	if nt {
		storeFence()
	}
}

// clearTail zeroes frames nf.. of every chunk of epoch e, the frames a
// partial last epoch does not have (they hold an older batch's bytes).
func (g *chunkMajor) clearTail(buf []byte, e, nf int64) {
	if nf >= g.c0 {
		return
	}
	for pos := int64(0); pos < g.perEpoch; pos++ {
		o := g.at(e, pos)
		g.spans(nf*g.dstStride[0], g.chunkBytes, func(off, n int64) { clear(buf[o+off : o+off+n]) })
	}
}

// carry copies the first n bytes of input starting at epoch e of src to
// the start of dst (both laid out by g): whole epochs as one block each,
// then the frames of the last, partial one (a partial frame whole; its
// missing bytes come later, or are dropped with it) chunk by chunk.
func (g *chunkMajor) carry(dst, src []byte, e, n int64) {
	if g.rank < 2 {
		o := e * g.c0 * g.frameBytes
		copy(dst[:n], src[o:o+n])
		return
	}
	frames := ceilDiv(n, g.frameBytes)
	whole := frames / g.c0
	copy(dst[:whole*g.epochStride], src[e*g.epochStride:(e+whole)*g.epochStride])
	nf := frames - whole*g.c0
	if nf == 0 {
		return
	}
	for pos := int64(0); pos < g.perEpoch; pos++ {
		o, s := g.at(whole, pos), g.at(e+whole, pos)
		g.spans(0, nf*g.dstStride[0], func(off, n int64) { copy(dst[o+off:o+off+n], src[s+off:s+off+n]) })
	}
}

// noNT turns the non-temporal scatter off (tests compare both paths).
var noNT bool

// ntMin is the shortest copy copyNT streams: below a few cache lines the
// head and tail copies and the fence cost more than the stores save.
const ntMin = 1024

// copyNT copies src to dst (same length; dst below src where they
// overlap, as a commit's moves are) and reports whether it used
// non-temporal stores, after which the caller calls storeFence before the
// bytes are published. A compressed chunk reaching its final offset in the
// slot's output is read next by the sink, after the whole batch: from
// memory, not cache, on a batch of hundreds of MB. So plain stores would
// read every destination line first (read for ownership) and evict what
// the workers have in cache; the 16-core run spent 0.6 cores there.
//
// Race-detector builds copy in Go: the detector does not see assembly
// stores, and the commit's parallel moves are what it should check.
func copyNT(dst, src []byte) bool {
	if raceEnabled {
		copy(dst, src)
		return false
	}
	return streamCopy(dst, src)
}

// streamCopy is copyNT without the race-build exception (its tests call
// it directly).
func streamCopy(dst, src []byte) bool {
	n := len(src)
	if n < ntMin || !haveNT || noNT {
		copy(dst, src)
		return false
	}
	_ = dst[n-1]
	d, s := uintptr(unsafe.Pointer(&dst[0])), uintptr(unsafe.Pointer(&src[0]))
	if d > s && d < s+uintptr(n) {
		// The kernel copies forward: a destination above an overlapping
		// source would overwrite bytes before they are read.
		panic("cpu: copyNT with dst above an overlapping src")
	}
	h := int((64 - d&63) & 63)
	m := (n - h) &^ 63
	copy(dst[:h], src[:h])
	// One run of m bytes (a multiple of 64) to a 64-byte aligned dst: the
	// kernel loads each step before it stores it, so with dst below src it
	// never overwrites a byte it has yet to read.
	copyRunsNT(&dst[h], m, &src[h], m, 1)
	copy(dst[h+m:n], src[h+m:n])
	return true
}

// aligned16 reports whether b starts on a 16-byte boundary.
func aligned16(b []byte) bool { return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&15 == 0 }

var _ stage.FrameWriter = (*cpuSlot)(nil)

// WriteFrames implements stage.FrameWriter. With a next pyramid level the
// bytes also go to staging in frame order, which the reduction reads.
// A large write is split over the stage's workers (see scatter.go).
func (sl *cpuSlot) WriteFrames(p []byte, off int64) {
	sl.fed.Store(true)
	sl.writeFrames(p, off)
}

// CarryFrames implements stage.FrameWriter.
func (sl *cpuSlot) CarryFrames(to stage.Slot, off, n int64) error {
	dst, ok := to.(*cpuSlot)
	if !ok || dst.stage != sl.stage {
		return fmt.Errorf("carry frames: the destination is not a slot of this stage")
	}
	eb := sl.cm.c0 * sl.cm.frameBytes
	if off%eb != 0 || off < 0 || n < 0 || off+n > sl.maxFrames*sl.cm.frameBytes || n > dst.maxFrames*sl.cm.frameBytes {
		return fmt.Errorf("carry frames: bytes %d..%d; want a start at an epoch (%d bytes) inside both slots", off, off+n, eb)
	}
	t0 := time.Now()
	dst.fed.Store(true)
	sl.cm.carry(dst.chunks, sl.chunks, off/eb, n)
	if sl.stage.down != nil {
		copy(dst.staging[:n], sl.staging[off:off+n])
	}
	dst.scatterNs.Add(int64(time.Since(t0)))
	return nil
}
