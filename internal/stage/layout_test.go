package stage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// testSpec is a geometry for the table tests; dtype and codec are set per
// case.
type testSpec struct {
	name                string
	shape, chunk, shard []int64
}

// testSpecs covers ranks 1..5, ragged shapes in every dim, chunks equal to
// the shape in trailing dims (merged runs) and not, fixed and growing dim 0.
var testSpecs = []testSpec{
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

func (ts testSpec) spec(dt zarr.DType, codec zarr.Codec) zarr.Spec {
	return zarr.Spec{Shape: ts.shape, Chunk: ts.chunk, Shard: ts.shard, DType: dt, Codec: codec, Level: codec.DefaultLevel()}
}

// testBatches are (first epoch, frames) pairs relative to a spec: whole
// epochs, a partial last epoch, batches that span several shard rows or a
// fraction of one, starting mid-row.
func testBatches(s *zarr.Spec) []Batch {
	c0, eps := s.Chunk[0], s.EpochsPerShardRow()
	bs := []Batch{
		{0, c0},
		{0, 1},
		{1, 2*c0 - 1},
		{eps - 1, 3 * c0},
		{2, 2*eps*c0 + 1},
		{0, (2*eps + 1) * c0},
	}
	if s.Shape[0] > 0 { // fixed dim 0: keep inside it, end on its edge
		var out []Batch
		for _, b := range bs {
			if b.FirstEpoch*c0+b.Frames <= s.Shape[0] {
				out = append(out, b)
			}
		}
		last := (s.Shape[0] - 1) / c0
		return append(out, Batch{last, s.Shape[0] - last*c0})
	}
	return bs
}

// fillStaging writes frames of small, partly repetitive values so that
// every codec has something to find and to miss.
func fillStaging(buf []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range buf {
		if i%5 == 0 {
			buf[i] = byte(r.IntN(256))
		} else {
			buf[i] = byte(i / 3)
		}
	}
}

// naiveTile is the reference: element by element, from global coordinates.
func naiveTile(s *zarr.Spec, staging []byte, frames, e, pos int64) []byte {
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

func TestTile(t *testing.T) {
	for _, ts := range testSpecs {
		for _, dt := range zarr.DTypes {
			spec := ts.spec(dt, zarr.CodecNone)
			t.Run(ts.name+"/"+dt.String(), func(t *testing.T) {
				l, err := NewLayout(&spec)
				if err != nil {
					t.Fatal(err)
				}
				for _, frames := range []int64{1, spec.Chunk[0], 2*spec.Chunk[0] + 1} {
					if spec.Shape[0] > 0 && frames > spec.Shape[0] {
						continue
					}
					staging := make([]byte, frames*spec.FrameBytes())
					fillStaging(staging, uint64(frames))
					dst := make([]byte, l.ChunkBytes())
					for e := int64(0); e < l.Epochs(frames); e++ {
						for p := int64(0); p < l.ChunksPerEpoch(); p++ {
							for i := range dst {
								dst[i] = 0xAB // padding must be written, not left
							}
							l.Tile(dst, staging, frames, e, p)
							want := naiveTile(&spec, staging, frames, e, p)
							if !bytes.Equal(dst, want) {
								t.Fatalf("frames %d epoch %d pos %d:\n got %v\nwant %v", frames, e, p, dst, want)
							}
						}
					}
					// Grouped tiling, as the stage does it, in plan order.
					plan := l.NewPlan(frames)
					if err := l.Plan(Batch{0, frames}, plan); err != nil {
						t.Fatal(err)
					}
					grouped := checkGrouped(t, l, &spec, plan, staging, frames)
					if l.MaxGroup() > 1 && grouped == 0 && l.lastFull > 0 {
						t.Fatalf("max group %d but no group formed", l.MaxGroup())
					}
				}
			})
		}
	}
}

// checkGrouped tiles every chunk of plan as the stage does, in plan order
// and in groups of neighbours (groupLen, tileGroup), into buffers full of
// junk (padding must be written, not left), and compares each chunk with
// naiveTile. It returns how many groups of more than one chunk formed.
func checkGrouped(t *testing.T, l *Layout, spec *zarr.Spec, plan *Plan, staging []byte, frames int64) (grouped int) {
	t.Helper()
	dsts := make([][]byte, l.MaxGroup())
	for i := range dsts {
		dsts[i] = make([]byte, l.ChunkBytes())
	}
	n := int64(len(plan.Chunks))
	for k := int64(0); k < n; {
		g := l.groupLen(plan, k, n)
		for _, d := range dsts[:g] {
			for i := range d {
				d[i] = 0xAB
			}
		}
		l.tileGroup(dsts[:g], staging, frames, plan.Epoch[k], plan.Pos[k])
		for i := int64(0); i < g; i++ {
			want := naiveTile(spec, staging, frames, plan.Epoch[k+i], plan.Pos[k+i])
			if !bytes.Equal(dsts[i], want) {
				t.Fatalf("spec %+v frames %d: group at %d (+%d of %d):\n got %v\nwant %v", *spec, frames, k, i, g, dsts[i], want)
			}
		}
		if g > 1 {
			grouped++
		}
		k += g
	}
	return grouped
}

// chunkID is a chunk in global terms: epoch and position over dims 1..
type chunkID struct{ epoch, pos int64 }

// locate computes, independently of Layout, where a chunk lives: shard
// row, shard column and inner index.
func locate(s *zarr.Spec, id chunkID) (row, col, inner int64) {
	n := s.Rank()
	grid, sg, sc := s.ChunkGrid(), s.ShardGrid(), s.ShardChunks()
	c := make([]int64, n)
	p := id.pos
	for d := n - 1; d >= 1; d-- {
		c[d] = p % grid[d-1]
		p /= grid[d-1]
	}
	c[0] = id.epoch
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
func unlocate(s *zarr.Spec, row, col, inner int64) chunkID {
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
	return chunkID{shard[0]*sc[0] + local[0], pos}
}

// checkBookkeeping verifies segments and chunks of out (or of a plan)
// against the batch: every chunk of the batch inside the grid exactly once,
// segments by (row, col), Inner ascending, bytes back to back. It returns
// the chunk ids in output order.
func checkBookkeeping(t *testing.T, s *zarr.Spec, b Batch, segs []Segment, chunks []Chunk, dataLen int64, withBytes bool) []chunkID {
	t.Helper()
	want := map[chunkID]bool{}
	E := (b.Frames + s.Chunk[0] - 1) / s.Chunk[0]
	for e := b.FirstEpoch; e < b.FirstEpoch+E; e++ {
		for p := int64(0); p < s.ChunksPerEpoch(); p++ {
			want[chunkID{e, p}] = true
		}
	}
	ids := make([]chunkID, len(chunks))
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

func TestPlan(t *testing.T) {
	for _, ts := range testSpecs {
		spec := ts.spec(zarr.Uint8, zarr.CodecNone)
		l, err := NewLayout(&spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range testBatches(&spec) {
			t.Run(fmt.Sprintf("%s/%d+%d", ts.name, b.FirstEpoch, b.Frames), func(t *testing.T) {
				p := l.NewPlan(b.Frames)
				if err := l.Plan(b, p); err != nil {
					t.Fatal(err)
				}
				ids := checkBookkeeping(t, &spec, b, p.Segs, p.Chunks, 0, false)
				for k, id := range ids {
					if got := (chunkID{b.FirstEpoch + p.Epoch[k], p.Pos[k]}); got != id {
						t.Fatalf("chunk %d: plan says %+v, inner index says %+v", k, got, id)
					}
				}
			})
		}
	}
}

func TestPlanErrors(t *testing.T) {
	spec := testSpecs[1].spec(zarr.Uint8, zarr.CodecNone) // fixed shape 100, chunk 8
	l, err := NewLayout(&spec)
	if err != nil {
		t.Fatal(err)
	}
	p := l.NewPlan(16)
	for _, tc := range []struct {
		name string
		b    Batch
	}{
		{"zero frames", Batch{0, 0}},
		{"negative epoch", Batch{-1, 8}},
		{"past shape", Batch{12, 8}},
		{"over capacity", Batch{0, 24}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Plan(tc.b, p); err == nil {
				t.Fatalf("batch %+v: no error", tc.b)
			}
		})
	}
}

// TestNewLayoutInvalid: a spec that fails Validate is an error, never a
// panic, including sizes whose products wrap around (the frame size of the
// first case wrapped to 0, and the writer divided by it).
func TestNewLayoutInvalid(t *testing.T) {
	tests := []struct {
		name string
		spec zarr.Spec
		want string
	}{
		{"frame overflow", zarr.Spec{Shape: []int64{10, 1 << 32, 1 << 32}, Chunk: []int64{1, 1, 1}, Shard: []int64{1, 1, 1}, DType: zarr.Uint16, Codec: zarr.CodecNone}, "one frame"},
		{"grid too large", zarr.Spec{Shape: []int64{0, 1 << 20, 1 << 20}, Chunk: []int64{1, 1, 1}, Shard: []int64{1, 1, 1}, DType: zarr.Uint8, Codec: zarr.CodecNone}, "inner chunks per epoch"},
		{"no dtype", zarr.Spec{Shape: []int64{0, 4}, Chunk: []int64{1, 4}, Shard: []int64{1, 4}, Codec: zarr.CodecNone}, "dtype is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(&tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewLayout(%+v) = %v, %v; want an error containing %q", tc.spec, l, err, tc.want)
			}
		})
	}
}
