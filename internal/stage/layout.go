package stage

import (
	"encoding/binary"
	"fmt"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Layout is the geometry of one array as the compress stage sees it: how a
// batch of frames splits into inner chunks (tiling, "lifted strides") and in
// which order those chunks appear in an Output (Plan). It is read-only after
// NewLayout and safe for concurrent use. The GPU backend uses it too, so
// that both backends tile and order chunks identically.
type Layout struct {
	rank int
	es   int64 // element size in bytes

	shape, chunk [zarr.MaxRank]int64
	grid         [zarr.MaxRank]int64 // inner-chunk grid; grid[0] unused

	frameBytes int64
	chunkBytes int64
	perEpoch   int64 // inner chunks per epoch (positions over dims 1..)

	// srcStride is the byte stride of each dim in staging (dim 0 = one
	// frame); dstStride the byte stride inside a padded chunk.
	srcStride, dstStride [zarr.MaxRank]int64
	// merge is the outermost dim m such that every dim j > m (j >= 1) has
	// chunk[j] == shape[j]: dims m.. of a chunk are then one contiguous
	// run in both staging and chunk, and tiling copies whole runs.
	merge int
	// loop lists the dims < merge with chunk > 1, outermost first: the
	// odometer tiling steps through. Dims of chunk extent 1 only add a base
	// offset, so skipping them keeps the innermost loop long (a chunk of
	// 32768x1x1 loops 32768 times in one tight loop, not 32768 odometer
	// steps).
	loop  [zarr.MaxRank]int
	nloop int
	// maxGroup > 1 when runs are tiny (a few elements of the last dim,
	// which is not merged): then chunks adjacent in the last dim share
	// every cache line they read, and tiling up to maxGroup of them in one
	// pass (tileGroup) reads staging once instead of once per chunk.
	// lastFull is the last grid position in that dim whose chunk is not
	// cut by the shape's edge.
	maxGroup int64
	lastFull int64

	epochsPerRow  int64 // shard[0]/chunk[0]
	innerPerEpoch int64 // inner chunks of one shard in one epoch
	shardsPerRow  int64

	// Positions grouped by shard column: colPos[colStart[c]:colStart[c+1]]
	// are the chunk positions (C order over dims 1..) in shard column c,
	// in ascending local inner index colInner[...].
	colStart []int64
	colPos   []int64
	colInner []int64
}

// NewLayout derives the layout of spec. The spec must be valid.
func NewLayout(spec *zarr.Spec) (*Layout, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("stage layout: %w", err)
	}
	n := spec.Rank()
	l := &Layout{rank: n, es: int64(spec.DType.Size())}
	for d := 0; d < n; d++ {
		l.shape[d] = spec.Shape[d]
		l.chunk[d] = spec.Chunk[d]
	}
	for d := 1; d < n; d++ {
		l.grid[d] = ceilDiv(l.shape[d], l.chunk[d])
	}
	l.frameBytes = spec.FrameBytes()
	l.chunkBytes = spec.ChunkBytes()
	l.perEpoch = spec.ChunksPerEpoch()

	l.srcStride[n-1], l.dstStride[n-1] = l.es, l.es
	for d := n - 2; d >= 0; d-- {
		l.srcStride[d] = l.srcStride[d+1] * l.shape[d+1]
		l.dstStride[d] = l.dstStride[d+1] * l.chunk[d+1]
	}
	l.srcStride[0] = l.frameBytes // also right for rank 1 and growing dim 0
	l.merge = n - 1
	for l.merge > 0 && l.chunk[l.merge] == l.shape[l.merge] {
		l.merge--
	}
	for d := 0; d < l.merge; d++ {
		if l.chunk[d] > 1 {
			l.loop[l.nloop] = d
			l.nloop++
		}
	}
	l.maxGroup = 1
	if L := n - 1; L >= 1 && l.merge == L && l.chunk[L]*l.es <= groupRunMax {
		// Enough neighbours to cover a few cache lines per step, but
		// bounded so that the group's buffers stay small.
		l.maxGroup = max(1, min(l.grid[L], 256/(l.chunk[L]*l.es), (8<<20)/l.chunkBytes))
		l.lastFull = l.grid[L] - 1
		if l.shape[L]%l.chunk[L] != 0 {
			l.lastFull--
		}
	}

	sc := spec.ShardChunks()
	l.epochsPerRow = spec.EpochsPerShardRow()
	l.innerPerEpoch = 1
	for d := 1; d < n; d++ {
		l.innerPerEpoch *= sc[d]
	}
	l.shardsPerRow = spec.ShardsPerRow()
	sg := spec.ShardGrid()

	// Bucket every position by its shard column (counting sort). Positions
	// are visited in global C order, which restricted to one shard is the
	// shard-local C order, so each bucket comes out in ascending inner index.
	l.colStart = make([]int64, l.shardsPerRow+1)
	l.colPos = make([]int64, l.perEpoch)
	l.colInner = make([]int64, l.perEpoch)
	colOf := make([]int64, l.perEpoch)
	innerOf := make([]int64, l.perEpoch)
	var c [zarr.MaxRank]int64
	for p := int64(0); p < l.perEpoch; p++ {
		l.coords(p, &c)
		col, inner := int64(0), int64(0)
		for d := 1; d < n; d++ {
			col = col*sg[d-1] + c[d]/sc[d]
			inner = inner*sc[d] + c[d]%sc[d]
		}
		colOf[p], innerOf[p] = col, inner
		l.colStart[col+1]++
	}
	for i := int64(1); i <= l.shardsPerRow; i++ {
		l.colStart[i] += l.colStart[i-1]
	}
	fill := append([]int64(nil), l.colStart[:l.shardsPerRow]...)
	for p := int64(0); p < l.perEpoch; p++ {
		i := fill[colOf[p]]
		fill[colOf[p]]++
		l.colPos[i], l.colInner[i] = p, innerOf[p]
	}
	return l, nil
}

// groupRunMax is the longest run (bytes) for which tiling groups chunks.
const groupRunMax = 32

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// coords turns a chunk position (C order over dims 1..) into chunk-grid
// coordinates c[1..rank-1].
func (l *Layout) coords(p int64, c *[zarr.MaxRank]int64) {
	for d := l.rank - 1; d >= 1; d-- {
		c[d] = p % l.grid[d]
		p /= l.grid[d]
	}
}

// ChunkBytes is the size of one padded inner chunk.
func (l *Layout) ChunkBytes() int64 { return l.chunkBytes }

// FrameBytes is the size of one frame.
func (l *Layout) FrameBytes() int64 { return l.frameBytes }

// ChunksPerEpoch is the number of inner-chunk positions over dims 1..
func (l *Layout) ChunksPerEpoch() int64 { return l.perEpoch }

// Epochs is the number of epochs a batch of frames touches.
func (l *Layout) Epochs(frames int64) int64 { return ceilDiv(frames, l.chunk[0]) }

// Tile gathers the inner chunk at batch-relative epoch e and position pos
// (C order over dims 1..) from staging, which holds frames whole frames,
// into dst (at least ChunkBytes long) as a padded chunk in C order: zero
// for frames past frames and for elements past the shape's edge.
func (l *Layout) Tile(dst, staging []byte, frames, e, pos int64) {
	dst = dst[:l.chunkBytes]
	var c, v [zarr.MaxRank]int64
	l.coords(pos, &c)
	nf := min(l.chunk[0], frames-e*l.chunk[0])
	full := nf == l.chunk[0]
	v[0] = nf
	src := e * l.chunk[0] * l.frameBytes
	for d := 1; d < l.rank; d++ {
		s := c[d] * l.chunk[d]
		v[d] = min(l.chunk[d], l.shape[d]-s)
		full = full && v[d] == l.chunk[d]
		src += s * l.srcStride[d]
	}
	if !full {
		// Edge chunks are a minority; clearing them whole is simpler and
		// barely slower than clearing only the padding.
		clear(dst)
	}
	if nf <= 0 {
		return
	}
	m := l.merge
	run := v[m] * l.dstStride[m]
	if l.nloop == 0 {
		copy(dst[:run], staging[src:src+run])
		return
	}
	// Odometer over the outer loop dims; the innermost loop dim is walked
	// by copyRuns, one run of dims m.. per step.
	inner := l.loop[l.nloop-1]
	ss, ds, cnt := l.srcStride[inner], l.dstStride[inner], v[inner]
	var idx [zarr.MaxRank]int64
	dstOff := int64(0)
	for {
		copyRuns(dst, staging, dstOff, src, run, ss, ds, cnt)
		j := l.nloop - 2
		for ; j >= 0; j-- {
			d := l.loop[j]
			idx[j]++
			src += l.srcStride[d]
			dstOff += l.dstStride[d]
			if idx[j] < v[d] {
				break
			}
			src -= v[d] * l.srcStride[d]
			dstOff -= v[d] * l.dstStride[d]
			idx[j] = 0
		}
		if j < 0 {
			return
		}
	}
}

// MaxGroup is how many chunks tileGroup handles at once (1: no grouping).
func (l *Layout) MaxGroup() int64 { return l.maxGroup }

// groupLen is how many chunks of p starting at k (and before hi) tileGroup
// can take together: same epoch, consecutive positions along the last dim,
// none cut by the shape's edge in that dim, at most maxGroup.
func (l *Layout) groupLen(p *Plan, k, hi int64) int64 {
	if l.maxGroup <= 1 {
		return 1
	}
	L := l.rank - 1
	room := l.lastFull - p.Pos[k]%l.grid[L] + 1 // full positions left in this row
	g := int64(1)
	for lim := min(l.maxGroup, hi-k, room); g < lim; g++ {
		if p.Epoch[k+g] != p.Epoch[k] || p.Pos[k+g] != p.Pos[k]+g {
			break
		}
	}
	return g
}

// tileGroup tiles len(dsts) chunks at epoch e and positions pos,
// pos+1, ... (adjacent in the last dim, none cut by the edge there; see
// groupLen) into dsts, reading each source span once: for every step of
// the odometer the chunks' runs lie side by side in staging.
func (l *Layout) tileGroup(dsts [][]byte, staging []byte, frames, e, pos int64) {
	if len(dsts) == 1 { // also the edge chunk, which groupLen never groups
		l.Tile(dsts[0], staging, frames, e, pos)
		return
	}
	var c, v [zarr.MaxRank]int64
	l.coords(pos, &c)
	nf := min(l.chunk[0], frames-e*l.chunk[0])
	full := nf == l.chunk[0]
	v[0] = nf
	src := e * l.chunk[0] * l.frameBytes
	for d := 1; d < l.rank; d++ {
		s := c[d] * l.chunk[d]
		v[d] = min(l.chunk[d], l.shape[d]-s)
		full = full && v[d] == l.chunk[d]
		src += s * l.srcStride[d]
	}
	for i := range dsts {
		dsts[i] = dsts[i][:l.chunkBytes]
		if !full {
			clear(dsts[i])
		}
	}
	if nf <= 0 {
		return
	}
	run := l.chunk[l.rank-1] * l.es
	if l.nloop == 0 {
		for i, d := range dsts {
			copy(d[:run], staging[src+int64(i)*run:])
		}
		return
	}
	inner := l.loop[l.nloop-1]
	ss, ds, cnt := l.srcStride[inner], l.dstStride[inner], v[inner]
	var idx [zarr.MaxRank]int64
	dstOff := int64(0)
	for {
		scatterRuns(dsts, staging, dstOff, src, run, ss, ds, cnt)
		j := l.nloop - 2
		for ; j >= 0; j-- {
			d := l.loop[j]
			idx[j]++
			src += l.srcStride[d]
			dstOff += l.dstStride[d]
			if idx[j] < v[d] {
				break
			}
			src -= v[d] * l.srcStride[d]
			dstOff -= v[d] * l.dstStride[d]
			idx[j] = 0
		}
		if j < 0 {
			return
		}
	}
}

// scatterRuns is copyRuns for a group: at each of cnt steps the group's
// runs lie back to back at s and go to offset d of each chunk. It works in
// blocks of steps, one chunk at a time within a block: the block's source
// lines stay in L1 while each chunk gets a sequential burst. (Writing all
// chunks at every step is much slower: the chunk buffers are usually a
// multiple of 4 KiB apart, so their write streams fight over one L1 set.)
func scatterRuns(dsts [][]byte, src []byte, d, s, run, ss, ds, cnt int64) {
	const block = 512
	for t := int64(0); t < cnt; t += block {
		n := min(block, cnt-t)
		for i, dst := range dsts {
			copyRuns(dst, src, d, s+int64(i)*run, run, ss, ds, n)
		}
		s, d = s+n*ss, d+n*ds
	}
}

// copyRuns copies cnt runs of run bytes, stepping ss in src and ds in dst.
// Runs of one element are common (chunk 1 in the last dim) and far too
// short for copy's call overhead, so they get fixed-size loads and stores.
func copyRuns(dst, src []byte, d, s, run, ss, ds, cnt int64) {
	switch run {
	case 1:
		for i := int64(0); i < cnt; i++ {
			dst[d] = src[s]
			s, d = s+ss, d+ds
		}
	case 2:
		for i := int64(0); i < cnt; i++ {
			binary.LittleEndian.PutUint16(dst[d:], binary.LittleEndian.Uint16(src[s:]))
			s, d = s+ss, d+ds
		}
	case 4:
		for i := int64(0); i < cnt; i++ {
			binary.LittleEndian.PutUint32(dst[d:], binary.LittleEndian.Uint32(src[s:]))
			s, d = s+ss, d+ds
		}
	case 8:
		for i := int64(0); i < cnt; i++ {
			binary.LittleEndian.PutUint64(dst[d:], binary.LittleEndian.Uint64(src[s:]))
			s, d = s+ss, d+ds
		}
	default:
		if ss == run && ds == run { // contiguous in both: one copy
			copy(dst[d:d+run*cnt], src[s:s+run*cnt])
			return
		}
		for i := int64(0); i < cnt; i++ {
			copy(dst[d:d+run], src[s:s+run])
			s, d = s+ss, d+ds
		}
	}
}

// Plan is the chunk order of one batch: Chunks[k] (Inner set; Off and Size
// are the backend's) is the chunk of batch-relative epoch Epoch[k] at
// position Pos[k], and Segs (Row, Col, First, N set) group them exactly as
// Output documents. Its slices are allocated once by NewPlan and reused.
type Plan struct {
	Segs   []Segment
	Chunks []Chunk
	Epoch  []int64
	Pos    []int64
}

// NewPlan allocates a plan for batches of up to maxFrames frames.
func (l *Layout) NewPlan(maxFrames int64) *Plan {
	n := l.Epochs(maxFrames) * l.perEpoch
	// A batch of E epochs touches at most E/epochsPerRow+2 shard rows.
	rows := l.Epochs(maxFrames)/l.epochsPerRow + 2
	return &Plan{
		Segs:   make([]Segment, 0, rows*l.shardsPerRow),
		Chunks: make([]Chunk, 0, n),
		Epoch:  make([]int64, 0, n),
		Pos:    make([]int64, 0, n),
	}
}

// Plan fills p for batch b: segments by (shard row, shard column), chunks
// inside a segment in ascending Inner (epoch-major). p must come from
// NewPlan with maxFrames >= b.Frames.
func (l *Layout) Plan(b Batch, p *Plan) error {
	if b.Frames <= 0 || b.FirstEpoch < 0 {
		return fmt.Errorf("plan batch: %d frames from epoch %d; want frames > 0 and epoch >= 0", b.Frames, b.FirstEpoch)
	}
	if l.shape[0] > 0 && b.FirstEpoch*l.chunk[0]+b.Frames > l.shape[0] {
		return fmt.Errorf("plan batch: frames %d..%d exceed shape[0] = %d", b.FirstEpoch*l.chunk[0], b.FirstEpoch*l.chunk[0]+b.Frames, l.shape[0])
	}
	E := l.Epochs(b.Frames)
	if n := E * l.perEpoch; n > int64(cap(p.Chunks)) {
		return fmt.Errorf("plan batch: %d frames need %d chunks but the plan holds %d", b.Frames, n, cap(p.Chunks))
	}
	p.Segs, p.Chunks, p.Epoch, p.Pos = p.Segs[:0], p.Chunks[:0], p.Epoch[:0], p.Pos[:0]
	first, last := b.FirstEpoch, b.FirstEpoch+E // global epochs [first, last)
	for r := first / l.epochsPerRow; r*l.epochsPerRow < last; r++ {
		lo := max(first, r*l.epochsPerRow)
		hi := min(last, (r+1)*l.epochsPerRow)
		for col := int64(0); col < l.shardsPerRow; col++ {
			seg := Segment{Row: r, Col: col, First: len(p.Chunks)}
			for ge := lo; ge < hi; ge++ {
				base := (ge % l.epochsPerRow) * l.innerPerEpoch
				for i := l.colStart[col]; i < l.colStart[col+1]; i++ {
					p.Chunks = append(p.Chunks, Chunk{Inner: base + l.colInner[i]})
					p.Epoch = append(p.Epoch, ge-first)
					p.Pos = append(p.Pos, l.colPos[i])
				}
			}
			seg.N = len(p.Chunks) - seg.First
			p.Segs = append(p.Segs, seg)
		}
	}
	return nil
}
