package gpu

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// layout turns a batch into the order its chunks take in the shard files,
// the one internal/stage's Output contract fixes: segments by (shard row,
// shard column), inside a segment ascending Inner (epoch-major C order).
// The tile kernel writes chunk c of that order to tiled + c*chunkBytes, so
// with codec none the tiled buffer is the batch's shard bytes.
type layout struct {
	rank        int
	chunk0      int64
	eps         int64   // epochs per shard row
	grid        []int64 // chunk grid, dims 1..
	gridStride  []int64 // C-order strides of grid
	shardChunks []int64 // inner chunks per shard, every dim
	shardGrid   []int64 // shards per row, dims 1..
	perEpoch    int64   // chunks per epoch
	perShard1   int64   // inner chunks of one shard in one epoch (dims 1..)
	shardsRow   int64
}

func newLayout(s *zarr.Spec) layout {
	l := layout{
		rank:        s.Rank(),
		chunk0:      s.Chunk[0],
		eps:         s.EpochsPerShardRow(),
		grid:        s.ChunkGrid(),
		shardChunks: s.ShardChunks(),
		shardGrid:   s.ShardGrid(),
		perEpoch:    s.ChunksPerEpoch(),
		shardsRow:   s.ShardsPerRow(),
	}
	l.gridStride = make([]int64, len(l.grid))
	st := int64(1)
	for d := len(l.grid) - 1; d >= 0; d-- {
		l.gridStride[d] = st
		st *= l.grid[d]
	}
	l.perShard1 = 1
	for _, v := range l.shardChunks[1:] {
		l.perShard1 *= v
	}
	return l
}

// epochs is the number of epochs with frames in a batch of frames frames.
func (l *layout) epochs(frames int64) int64 { return (frames + l.chunk0 - 1) / l.chunk0 }

// maxSegments bounds the segments of a batch of up to maxEpochs epochs: it
// can touch one more shard row than it fills.
func (l *layout) maxSegments(maxEpochs int64) int64 {
	return ((maxEpochs+l.eps-1)/l.eps + 1) * l.shardsRow
}

// build fills table (two uint32 per chunk: epoch in batch, C-order index in
// the epoch's chunk grid), segs and chunks (Inner set; Off and Size are the
// caller's) for batch b, reusing their capacity. It returns the chunk count.
func (l *layout) build(b stage.Batch, table []uint32, segs []stage.Segment, chunks []stage.Chunk) (int, []stage.Segment, []stage.Chunk, error) {
	segs, chunks = segs[:0], chunks[:0]
	nE := l.epochs(b.Frames)
	if nE*l.perEpoch*2 > int64(len(table)) {
		return 0, segs, chunks, fmt.Errorf("batch of %d frames holds %d chunks, more than the slot's %d", b.Frames, nE*l.perEpoch, len(table)/2)
	}
	var sc, loc, g [zarr.MaxRank]int64
	nd := l.rank - 1
	n := 0
	for e := b.FirstEpoch; e < b.FirstEpoch+nE; {
		row := e / l.eps
		end := min((row+1)*l.eps, b.FirstEpoch+nE)
		for col := int64(0); col < l.shardsRow; col++ {
			// shard coordinates over dims 1..
			c := col
			for d := nd - 1; d >= 0; d-- {
				sc[d] = c % l.shardGrid[d]
				c /= l.shardGrid[d]
			}
			first := n
			for ep := e; ep < end; ep++ {
				innerBase := (ep % l.eps) * l.perShard1
				for d := 0; d < nd; d++ {
					loc[d] = 0
				}
				for li := int64(0); li < l.perShard1; li++ {
					if li > 0 { // odometer over the shard's chunks, C order
						for d := nd - 1; d >= 0; d-- {
							loc[d]++
							if loc[d] < l.shardChunks[d+1] {
								break
							}
							loc[d] = 0
						}
					}
					lin, in := int64(0), true
					for d := 0; d < nd; d++ {
						g[d] = sc[d]*l.shardChunks[d+1] + loc[d]
						if g[d] >= l.grid[d] {
							in = false
							break
						}
						lin += g[d] * l.gridStride[d]
					}
					if !in {
						continue // beyond the array in dims 1..: never written
					}
					table[2*n] = uint32(ep - b.FirstEpoch)
					table[2*n+1] = uint32(lin)
					chunks = append(chunks, stage.Chunk{Inner: innerBase + li})
					n++
				}
			}
			segs = append(segs, stage.Segment{Row: row, Col: col, First: first, N: n - first})
		}
		e = end
	}
	return n, segs, chunks, nil
}
