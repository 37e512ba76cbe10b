package stage_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

func TestTile(t *testing.T) {
	for _, ts := range stagetest.Geometries {
		for _, dt := range zarr.DTypes {
			spec := ts.Spec(dt, zarr.CodecNone)
			t.Run(ts.Name+"/"+dt.String(), func(t *testing.T) {
				l, err := stage.NewLayout(&spec)
				if err != nil {
					t.Fatal(err)
				}
				for _, frames := range []int64{1, spec.Chunk[0], 2*spec.Chunk[0] + 1} {
					if spec.Shape[0] > 0 && frames > spec.Shape[0] {
						continue
					}
					staging := make([]byte, frames*spec.FrameBytes())
					stagetest.Fill(staging, uint64(frames))
					dst := make([]byte, l.ChunkBytes())
					for e := int64(0); e < l.Epochs(frames); e++ {
						for p := int64(0); p < l.ChunksPerEpoch(); p++ {
							for i := range dst {
								dst[i] = 0xAB // padding must be written, not left
							}
							l.Tile(dst, staging, frames, e, p)
							want := stagetest.NaiveTile(&spec, staging, frames, e, p)
							if !bytes.Equal(dst, want) {
								t.Fatalf("frames %d epoch %d pos %d:\n got %v\nwant %v", frames, e, p, dst, want)
							}
						}
					}
					// Grouped tiling, as the stage does it, in plan order.
					plan := l.NewPlan(frames)
					if err := l.Plan(stage.Batch{FirstEpoch: 0, Frames: frames}, plan); err != nil {
						t.Fatal(err)
					}
					grouped := checkGrouped(t, l, &spec, plan, staging, frames)
					if l.MaxGroup() > 1 && grouped == 0 && fullInLastDim(&spec) > 1 {
						t.Fatalf("max group %d but no group formed", l.MaxGroup())
					}
				}
			})
		}
	}
}

// checkGrouped tiles every chunk of plan as the stage does, in plan order
// and in groups of neighbours (GroupLen, TileGroup), into buffers full of
// junk (padding must be written, not left), and compares each chunk with
// stagetest.NaiveTile. It returns how many groups of more than one chunk formed.
func checkGrouped(t *testing.T, l *stage.Layout, spec *zarr.Spec, plan *stage.Plan, staging []byte, frames int64) (grouped int) {
	t.Helper()
	dsts := make([][]byte, l.MaxGroup())
	for i := range dsts {
		dsts[i] = make([]byte, l.ChunkBytes())
	}
	n := int64(len(plan.Chunks))
	for k := int64(0); k < n; {
		g := l.GroupLen(plan, k, n)
		for _, d := range dsts[:g] {
			for i := range d {
				d[i] = 0xAB
			}
		}
		l.TileGroup(dsts[:g], staging, frames, plan.Epoch[k], plan.Pos[k])
		for i := int64(0); i < g; i++ {
			want := stagetest.NaiveTile(spec, staging, frames, plan.Epoch[k+i], plan.Pos[k+i])
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

func TestPlan(t *testing.T) {
	for _, ts := range stagetest.Geometries {
		spec := ts.Spec(zarr.Uint8, zarr.CodecNone)
		l, err := stage.NewLayout(&spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range stagetest.Batches(&spec) {
			t.Run(fmt.Sprintf("%s/%d+%d", ts.Name, b.FirstEpoch, b.Frames), func(t *testing.T) {
				p := l.NewPlan(b.Frames)
				if err := l.Plan(b, p); err != nil {
					t.Fatal(err)
				}
				ids := stagetest.CheckBookkeeping(t, &spec, b, p.Segs, p.Chunks, 0, false)
				for k, id := range ids {
					if got := (stagetest.ChunkID{Epoch: b.FirstEpoch + p.Epoch[k], Pos: p.Pos[k]}); got != id {
						t.Fatalf("chunk %d: plan says %+v, inner index says %+v", k, got, id)
					}
				}
			})
		}
	}
}

func TestPlanErrors(t *testing.T) {
	spec := stagetest.Geometries[1].Spec(zarr.Uint8, zarr.CodecNone) // fixed shape 100, chunk 8
	l, err := stage.NewLayout(&spec)
	if err != nil {
		t.Fatal(err)
	}
	p := l.NewPlan(16)
	for _, tc := range []struct {
		name string
		b    stage.Batch
	}{
		{"zero frames", stage.Batch{FirstEpoch: 0, Frames: 0}},
		{"negative epoch", stage.Batch{FirstEpoch: -1, Frames: 8}},
		{"past shape", stage.Batch{FirstEpoch: 12, Frames: 8}},
		{"over capacity", stage.Batch{FirstEpoch: 0, Frames: 24}},
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
			l, err := stage.NewLayout(&tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("stage.NewLayout(%+v) = %v, %v; want an error containing %q", tc.spec, l, err, tc.want)
			}
		})
	}
}

// fullInLastDim is how many chunks along the last dim the shape's edge
// does not cut.
func fullInLastDim(s *zarr.Spec) int64 {
	L := s.Rank() - 1
	return s.Shape[L] / s.Chunk[L]
}
