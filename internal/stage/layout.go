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
	// pass (TileGroup) reads staging once instead of once per chunk.
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
	v, src, full := l.extent(frames, e, pos)
	if !full {
		// Edge chunks are a minority; clearing them whole is simpler and
		// barely slower than clearing only the padding.
		clear(dst)
	}
	if v[0] <= 0 {
		return
	}
	m := l.merge
	run := v[m] * l.dstStride[m]
	if l.nloop == 0 {
		copy(dst[:run], staging[src:src+run])
		return
	}
	inner := l.loop[l.nloop-1]
	ss, ds, cnt := l.srcStride[inner], l.dstStride[inner], v[inner]
	l.odometer(&v, src, func(dstOff, src int64) {
		copyRuns(dst, staging, dstOff, src, run, ss, ds, cnt)
	})
}

// extent locates the chunk at batch-relative epoch e and position pos:
// v[d] is how many of its elements exist along dim d (v[0] frames, <= 0
// when the batch has none of them), src the staging offset of its first
// element, full whether nothing of it is padding.
func (l *Layout) extent(frames, e, pos int64) (v [zarr.MaxRank]int64, src int64, full bool) {
	var c [zarr.MaxRank]int64
	l.coords(pos, &c)
	nf := min(l.chunk[0], frames-e*l.chunk[0])
	full = nf == l.chunk[0]
	v[0] = nf
	src = e * l.chunk[0] * l.frameBytes
	for d := 1; d < l.rank; d++ {
		s := c[d] * l.chunk[d]
		v[d] = min(l.chunk[d], l.shape[d]-s)
		full = full && v[d] == l.chunk[d]
		src += s * l.srcStride[d]
	}
	return v, src, full
}

// odometer calls step(dstOff, src) for every combination of the outer
// loop dims (all but the innermost, which step itself walks), src and
// dstOff being where that combination starts in staging and in the chunk.
// l.nloop must be >= 1.
func (l *Layout) odometer(v *[zarr.MaxRank]int64, src int64, step func(dstOff, src int64)) {
	var idx [zarr.MaxRank]int64
	dstOff := int64(0)
	for {
		step(dstOff, src)
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

// MaxGroup is how many chunks TileGroup handles at once (1: no grouping).
func (l *Layout) MaxGroup() int64 { return l.maxGroup }

// GroupLen is how many chunks of p starting at k (and before hi) TileGroup
// can take together: same epoch, consecutive positions along the last dim,
// none cut by the shape's edge in that dim, at most maxGroup.
func (l *Layout) GroupLen(p *Plan, k, hi int64) int64 {
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

// TileGroup tiles len(dsts) chunks at epoch e and positions pos,
// pos+1, ... (adjacent in the last dim, none cut by the edge there; see
// GroupLen) into dsts, reading each source span once: for every step of
// the odometer the chunks' runs lie side by side in staging.
func (l *Layout) TileGroup(dsts [][]byte, staging []byte, frames, e, pos int64) {
	if len(dsts) == 1 { // also the edge chunk, which GroupLen never groups
		l.Tile(dsts[0], staging, frames, e, pos)
		return
	}
	v, src, full := l.extent(frames, e, pos)
	for i := range dsts {
		dsts[i] = dsts[i][:l.chunkBytes]
		if !full {
			clear(dsts[i])
		}
	}
	if v[0] <= 0 {
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
	scatter := scatterRuns
	if deinterleave16(int64(len(dsts)), run, ss, ds) {
		scatter = deinterleaveRuns
	}
	l.odometer(&v, src, func(dstOff, src int64) {
		scatter(dsts, staging, dstOff, src, run, ss, ds, cnt)
	})
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

// deinterleave16 reports whether TileGroup can use deinterleaveRuns: a
// group of 2 to 4 chunks one uint16 wide in the last dim (colour or other
// channels, e.g. tzyxc data) whose steps are dense in both source and
// chunk.
func deinterleave16(g, run, ss, ds int64) bool {
	return g >= 2 && g <= 4 && run == 2 && ss == g*run && ds == run
}

// deinterleaveRuns is scatterRuns for the groups deinterleave16 accepts.
// Their runs are single elements, so copyRuns would cost a loop step and
// bounds checks per 2 bytes; instead the cnt steps, which lie back to back
// in src (pixels of g channels), are split into the g chunks in one pass,
// four pixels at a time with 64-bit loads, lane moves and 64-bit stores.
// At most four write streams and one read stream still fit one L1 set's
// ways when the chunk buffers alias (see scatterRuns).
func deinterleaveRuns(dsts [][]byte, src []byte, d, s, run, ss, ds, cnt int64) {
	n := 2 * cnt // bytes per chunk
	sp := src[s : s+int64(len(dsts))*n]
	switch len(dsts) {
	case 2:
		deinterleave2x16(dsts[0][d:d+n], dsts[1][d:d+n], sp)
	case 3:
		deinterleave3x16(dsts[0][d:d+n], dsts[1][d:d+n], dsts[2][d:d+n], sp)
	case 4:
		deinterleave4x16(dsts[0][d:d+n], dsts[1][d:d+n], dsts[2][d:d+n], dsts[3][d:d+n], sp)
	}
}

// lane is 16-bit lane i of w (lane 0 = the lowest bits, the first element
// in memory).
func lane(w uint64, i uint) uint64 { return w >> (16 * i) & 0xffff }

// deinterleave2x16 splits src, pixels of two uint16 channels (c0 c1 c0 c1
// ...), into a and b. Tails shorter than four pixels go element by element.
// The loops index rather than reslice: fewer live slice headers keep the
// words in registers.
func deinterleave2x16(a, b, src []byte) {
	n := min(len(a), len(b), len(src)/2) / 8 // blocks of 4 pixels
	for i := 0; i < n; i++ {
		// w0 = p0c0 p0c1 p1c0 p1c1, w1 = p2c0 p2c1 p3c0 p3c1
		s := src[16*i : 16*i+16]
		w0 := binary.LittleEndian.Uint64(s[0:8])
		w1 := binary.LittleEndian.Uint64(s[8:16])
		binary.LittleEndian.PutUint64(a[8*i:8*i+8], lane(w0, 0)|lane(w0, 2)<<16|lane(w1, 0)<<32|lane(w1, 2)<<48)
		binary.LittleEndian.PutUint64(b[8*i:8*i+8], lane(w0, 1)|lane(w0, 3)<<16|lane(w1, 1)<<32|lane(w1, 3)<<48)
	}
	src, a, b = src[16*n:], a[8*n:], b[8*n:]
	for len(src) >= 4 && len(a) >= 2 && len(b) >= 2 {
		a[0], a[1], b[0], b[1] = src[0], src[1], src[2], src[3]
		src, a, b = src[4:], a[2:], b[2:]
	}
}

// deinterleave3x16 is deinterleave2x16 for three channels (c0 c1 c2 ...).
func deinterleave3x16(a, b, c, src []byte) {
	// Lane masks: m[k] selects 16-bit lane k.
	const m0, m1, m2, m3 = 0xffff, 0xffff << 16, 0xffff << 32, 0xffff << 48
	n := min(len(a), len(b), len(c), len(src)/3) / 8 // blocks of 4 pixels
	for i := 0; i < n; i++ {
		// Element e(k) is pixel k/3, channel k%3:
		// w0 = e0 e1 e2 e3, w1 = e4 e5 e6 e7, w2 = e8 e9 e10 e11
		// (lane 0 first); each channel's word takes one lane from each
		// place, moved by a shift where its lane differs.
		s := src[24*i : 24*i+24]
		w0 := binary.LittleEndian.Uint64(s[0:8])
		w1 := binary.LittleEndian.Uint64(s[8:16])
		w2 := binary.LittleEndian.Uint64(s[16:24])
		binary.LittleEndian.PutUint64(a[8*i:8*i+8], w0&m0|w0>>32&m1|w1&m2|w2<<32&m3)         // e0 e3 e6 e9
		binary.LittleEndian.PutUint64(b[8*i:8*i+8], w0>>16&m0|w1<<16&m1|w1>>16&m2|w2<<16&m3) // e1 e4 e7 e10
		binary.LittleEndian.PutUint64(c[8*i:8*i+8], w0>>32&m0|w1&m1|w2<<32&m2|w2&m3)         // e2 e5 e8 e11
	}
	src, a, b, c = src[24*n:], a[8*n:], b[8*n:], c[8*n:]
	for len(src) >= 6 && len(a) >= 2 && len(b) >= 2 && len(c) >= 2 {
		a[0], a[1], b[0], b[1], c[0], c[1] = src[0], src[1], src[2], src[3], src[4], src[5]
		src, a, b, c = src[6:], a[2:], b[2:], c[2:]
	}
}

// deinterleave4x16 is deinterleave2x16 for four channels: a 4x4 transpose
// of 16-bit lanes (word p holds pixel p's four channels).
func deinterleave4x16(a, b, c, d, src []byte) {
	n := min(len(a), len(b), len(c), len(d), len(src)/4) / 8 // blocks of 4 pixels
	for i := 0; i < n; i++ {
		s := src[32*i : 32*i+32]
		w0 := binary.LittleEndian.Uint64(s[0:8])
		w1 := binary.LittleEndian.Uint64(s[8:16])
		w2 := binary.LittleEndian.Uint64(s[16:24])
		w3 := binary.LittleEndian.Uint64(s[24:32])
		binary.LittleEndian.PutUint64(a[8*i:8*i+8], lane(w0, 0)|lane(w1, 0)<<16|lane(w2, 0)<<32|lane(w3, 0)<<48)
		binary.LittleEndian.PutUint64(b[8*i:8*i+8], lane(w0, 1)|lane(w1, 1)<<16|lane(w2, 1)<<32|lane(w3, 1)<<48)
		binary.LittleEndian.PutUint64(c[8*i:8*i+8], lane(w0, 2)|lane(w1, 2)<<16|lane(w2, 2)<<32|lane(w3, 2)<<48)
		binary.LittleEndian.PutUint64(d[8*i:8*i+8], lane(w0, 3)|lane(w1, 3)<<16|lane(w2, 3)<<32|lane(w3, 3)<<48)
	}
	src, a, b, c, d = src[32*n:], a[8*n:], b[8*n:], c[8*n:], d[8*n:]
	for len(src) >= 8 && len(a) >= 2 && len(b) >= 2 && len(c) >= 2 && len(d) >= 2 {
		a[0], a[1], b[0], b[1] = src[0], src[1], src[2], src[3]
		c[0], c[1], d[0], d[1] = src[4], src[5], src[6], src[7]
		src, a, b, c, d = src[8:], a[2:], b[2:], c[2:], d[2:]
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
