package stagetest

import (
	"math/rand/v2"
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Geometry is a geometry for the table tests; dtype and codec are set per
// case.
type Geometry struct {
	Name                string
	Shape, Chunk, Shard []int64
}

// Geometries covers ranks 1..5, ragged shapes in every dim, chunks equal to
// the shape in trailing dims (merged runs) and not, fixed and growing dim 0.
var Geometries = []Geometry{
	{"r1", []int64{0}, []int64{7}, []int64{14}},
	{"r1fixed", []int64{100}, []int64{8}, []int64{24}},
	{"r2", []int64{0, 13}, []int64{3, 5}, []int64{6, 10}},
	{"r2full", []int64{0, 13}, []int64{3, 13}, []int64{9, 13}},
	{"r3", []int64{0, 7, 9}, []int64{4, 3, 4}, []int64{8, 6, 8}},
	{"r3merge0", []int64{0, 5, 8}, []int64{2, 5, 8}, []int64{4, 5, 8}},
	{"r3merge1", []int64{0, 7, 8}, []int64{2, 3, 8}, []int64{2, 6, 8}},
	{"r3shard1", []int64{0, 7, 9}, []int64{1, 2, 2}, []int64{1, 2, 2}},
	{"r4", []int64{0, 3, 5, 7}, []int64{2, 2, 3, 4}, []int64{4, 2, 6, 8}},
	{"r5", []int64{0, 2, 3, 5, 6}, []int64{3, 1, 2, 2, 4}, []int64{6, 2, 2, 4, 4}},
	// Chunks one element wide in a short last dim (channels): the groups
	// of 2, 3 and 4 that deinterleaveRuns splits (for 2-byte types), with
	// step counts that leave tails and edge chunks in the step dim.
	{"r5c3", []int64{0, 3, 5, 9, 3}, []int64{2, 2, 2, 6, 1}, []int64{4, 2, 4, 6, 3}},
	{"r4c2", []int64{0, 4, 7, 2}, []int64{3, 2, 5, 1}, []int64{3, 4, 5, 2}},
	{"r3c4", []int64{0, 9, 4}, []int64{2, 8, 1}, []int64{2, 8, 4}},
	// Groups that are not dense (shard narrower than the last dim) or too
	// large for it.
	{"r3c6s3", []int64{0, 5, 6}, []int64{1, 5, 1}, []int64{1, 5, 3}},
	{"r3c5", []int64{0, 6, 5}, []int64{2, 6, 1}, []int64{2, 6, 5}},
}

// Spec is the geometry with a dtype and codec (at its default level).
func (ts Geometry) Spec(dt zarr.DType, codec zarr.Codec) zarr.Spec {
	return zarr.Spec{Shape: ts.Shape, Chunk: ts.Chunk, Shard: ts.Shard, DType: dt, Codec: codec, Level: codec.DefaultLevel()}
}

// Batches are (first epoch, frames) pairs relative to a spec: whole
// epochs, a partial last epoch, batches that span several shard rows or a
// fraction of one, starting mid-row.
func Batches(s *zarr.Spec) []stage.Batch {
	c0, eps := s.Chunk[0], s.EpochsPerShardRow()
	bs := []stage.Batch{
		{FirstEpoch: 0, Frames: c0},
		{FirstEpoch: 0, Frames: 1},
		{FirstEpoch: 1, Frames: 2*c0 - 1},
		{FirstEpoch: eps - 1, Frames: 3 * c0},
		{FirstEpoch: 2, Frames: 2*eps*c0 + 1},
		{FirstEpoch: 0, Frames: (2*eps + 1) * c0},
	}
	if s.Shape[0] > 0 { // fixed dim 0: keep inside it, end on its edge
		var out []stage.Batch
		for _, b := range bs {
			if b.FirstEpoch*c0+b.Frames <= s.Shape[0] {
				out = append(out, b)
			}
		}
		last := (s.Shape[0] - 1) / c0
		return append(out, stage.Batch{FirstEpoch: last, Frames: s.Shape[0] - last*c0})
	}
	return bs
}

// Fill writes frames of small, partly repetitive values so that
// every codec has something to find and to miss.
func Fill(buf []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range buf {
		if i%5 == 0 {
			buf[i] = byte(r.IntN(256))
		} else {
			buf[i] = byte(i / 3)
		}
	}
}

// NaiveTile is the reference: element by element, from global coordinates.
func NaiveTile(s *zarr.Spec, staging []byte, frames, e, pos int64) []byte {
	n := s.Rank()
	es := int64(s.DType.Size())
	grid := s.ChunkGrid()
	c := make([]int64, n)
	for d := n - 1; d >= 1; d-- {
		c[d] = pos % grid[d-1]
		pos /= grid[d-1]
	}
	c[0] = e
	out := make([]byte, s.ChunkBytes())
	idx := make([]int64, n)
	for k := int64(0); k < s.ChunkElems(); k++ {
		rem := k
		for d := n - 1; d >= 0; d-- {
			idx[d] = rem % s.Chunk[d]
			rem /= s.Chunk[d]
		}
		src, inside := int64(0), true
		for d := 0; d < n; d++ {
			g := c[d]*s.Chunk[d] + idx[d]
			lim := s.Shape[d]
			if d == 0 {
				lim = frames
			}
			if g >= lim {
				inside = false
				break
			}
			src = src*max(s.Shape[d], 1) + g // Shape[0] is never used as a stride
		}
		if inside {
			copy(out[k*es:(k+1)*es], staging[src*es:(src+1)*es])
		}
	}
	return out
}

// ChunkID is a chunk in global terms: epoch and position over dims 1..
type ChunkID struct{ Epoch, Pos int64 }

// locate computes, independently of Layout, where a chunk lives: shard
// row, shard column and inner index.
func locate(s *zarr.Spec, id ChunkID) (row, col, inner int64) {
	n := s.Rank()
	grid, sg, sc := s.ChunkGrid(), s.ShardGrid(), s.ShardChunks()
	c := make([]int64, n)
	p := id.Pos
	for d := n - 1; d >= 1; d-- {
		c[d] = p % grid[d-1]
		p /= grid[d-1]
	}
	c[0] = id.Epoch
	row = c[0] / sc[0]
	for d := 1; d < n; d++ {
		col = col*sg[d-1] + c[d]/sc[d]
	}
	for d := 0; d < n; d++ {
		inner = inner*sc[d] + c[d]%sc[d]
	}
	return row, col, inner
}

// unlocate is the inverse of locate.
func unlocate(s *zarr.Spec, row, col, inner int64) ChunkID {
	n := s.Rank()
	grid, sg, sc := s.ChunkGrid(), s.ShardGrid(), s.ShardChunks()
	local := make([]int64, n)
	for d := n - 1; d >= 0; d-- {
		local[d] = inner % sc[d]
		inner /= sc[d]
	}
	shard := make([]int64, n)
	shard[0] = row
	for d := n - 1; d >= 1; d-- {
		shard[d] = col % sg[d-1]
		col /= sg[d-1]
	}
	var pos int64
	for d := 1; d < n; d++ {
		pos = pos*grid[d-1] + shard[d]*sc[d] + local[d]
	}
	return ChunkID{Epoch: shard[0]*sc[0] + local[0], Pos: pos}
}

// CheckBookkeeping verifies segments and chunks of out (or of a plan)
// against the batch: every chunk of the batch inside the grid exactly once,
// segments by (row, col), Inner ascending, bytes back to back. It returns
// the chunk ids in output order.
func CheckBookkeeping(t *testing.T, s *zarr.Spec, b stage.Batch, segs []stage.Segment, chunks []stage.Chunk, dataLen int64, withBytes bool) []ChunkID {
	t.Helper()
	want := map[ChunkID]bool{}
	E := (b.Frames + s.Chunk[0] - 1) / s.Chunk[0]
	for e := b.FirstEpoch; e < b.FirstEpoch+E; e++ {
		for p := int64(0); p < s.ChunksPerEpoch(); p++ {
			want[ChunkID{Epoch: e, Pos: p}] = true
		}
	}
	ids := make([]ChunkID, len(chunks))
	next := 0
	var off int64
	for i, sg := range segs {
		if i > 0 {
			prev := segs[i-1]
			if sg.Row < prev.Row || sg.Row == prev.Row && sg.Col <= prev.Col {
				t.Fatalf("batch %+v: segment %d (%d,%d) not after (%d,%d)", b, i, sg.Row, sg.Col, prev.Row, prev.Col)
			}
		}
		if sg.First != next || sg.N <= 0 {
			t.Fatalf("batch %+v: segment %d covers chunks [%d,+%d), want to start at %d and be non-empty", b, i, sg.First, sg.N, next)
		}
		if withBytes && sg.Off != off {
			t.Fatalf("batch %+v: segment %d at byte %d, want %d", b, i, sg.Off, off)
		}
		for k := sg.First; k < sg.First+sg.N; k++ {
			c := chunks[k]
			if k > sg.First && c.Inner <= chunks[k-1].Inner {
				t.Fatalf("batch %+v: segment %d: inner %d after %d", b, i, c.Inner, chunks[k-1].Inner)
			}
			id := unlocate(s, sg.Row, sg.Col, c.Inner)
			if row, col, inner := locate(s, id); row != sg.Row || col != sg.Col || inner != c.Inner {
				t.Fatalf("batch %+v: chunk %d (%+v) belongs to (%d,%d) inner %d, found in (%d,%d) inner %d", b, k, id, row, col, inner, sg.Row, sg.Col, c.Inner)
			}
			if !want[id] {
				t.Fatalf("batch %+v: chunk %+v is not in the batch's grid or appears twice", b, id)
			}
			delete(want, id)
			ids[k] = id
			if withBytes {
				if c.Off != off {
					t.Fatalf("batch %+v: chunk %d at byte %d, want %d (back to back)", b, k, c.Off, off)
				}
				off += c.Size
			}
		}
		if withBytes && sg.Len != off-sg.Off {
			t.Fatalf("batch %+v: segment %d len %d, chunks hold %d", b, i, sg.Len, off-sg.Off)
		}
		next += sg.N
	}
	if next != len(chunks) {
		t.Fatalf("batch %+v: segments cover %d of %d chunks", b, next, len(chunks))
	}
	if len(want) > 0 {
		t.Fatalf("batch %+v: %d chunks missing, e.g. %+v", b, len(want), want)
	}
	if withBytes && off != dataLen {
		t.Fatalf("batch %+v: chunks hold %d bytes, data has %d", b, off, dataLen)
	}
	// Rows: exactly those the batch's epochs fall in, every column each.
	eps := s.EpochsPerShardRow()
	wantSegs := (((b.FirstEpoch + E - 1) / eps) - b.FirstEpoch/eps + 1) * s.ShardsPerRow()
	if int64(len(segs)) != wantSegs {
		t.Fatalf("batch %+v: %d segments, want %d", b, len(segs), wantSegs)
	}
	return ids
}

// Camera writes a smooth gradient with 4 bits of noise, like a camera
// looking at a dim, even scene (zstd ratio about 2 without shuffle).
func Camera(buf []byte) {
	x := uint32(1)
	for i := 0; i+1 < len(buf); i += 2 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v := uint16(1000+(i/2)%1100) + uint16(x&15)
		buf[i], buf[i+1] = byte(v), byte(v>>8)
	}
}
