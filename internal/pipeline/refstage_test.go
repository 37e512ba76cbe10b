package pipeline

import (
	"context"
	"errors"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// refStage is a deliberately naive compress stage with codec none, written
// from the Output contract alone: it tiles element by element. Tests use
// it as an independent reference against the real CPU stage, and to run
// the pipeline where a stage that can be told to fail is needed.
type refStage struct {
	spec zarr.Spec
}

func newRefStage(spec zarr.Spec) *refStage { return &refStage{spec: spec.Clone()} }

func (r *refStage) Name() string { return "ref" }
func (r *refStage) Close() error { return nil }

func (r *refStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	return &refSlot{r: r, staging: make([]byte, maxFrames*r.spec.FrameBytes())}, nil
}

type refSlot struct {
	r       *refStage
	staging []byte
	out     stage.Output
	done    chan struct{}
	freed   bool
}

func (s *refSlot) Staging() []byte { return s.staging }

func (s *refSlot) Kick(b stage.Batch) error {
	if s.freed {
		return errors.New("kick after free")
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.tile(b)
	}()
	return nil
}

func (s *refSlot) Wait(ctx context.Context) (*stage.Output, error) {
	// The work is not cancellable, so Wait always lets it finish before
	// returning: the slot's buffers are untouched afterwards.
	<-s.done
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return &s.out, nil
}

func (s *refSlot) Free() error {
	s.freed = true
	s.staging = nil
	return nil
}

func (s *refSlot) tile(b stage.Batch) {
	sp := &s.r.spec
	n := sp.Rank()
	isz := int64(sp.DType.Size())
	c0 := sp.EpochFrames()
	perRow := sp.EpochsPerShardRow()
	grid := sp.ChunkGrid()
	sgrid := sp.ShardGrid()
	scs := sp.ShardChunks()
	chunkBytes := sp.ChunkBytes()
	out := &s.out
	out.Data, out.Segs, out.Chunks = out.Data[:0], out.Segs[:0], out.Chunks[:0]
	nE := (b.Frames + c0 - 1) / c0
	batchStart := b.FirstEpoch * c0
	batchEnd := batchStart + b.Frames
	firstRow := b.FirstEpoch / perRow
	lastRow := (b.FirstEpoch + nE - 1) / perRow
	// strides of a frame in elements
	fstr := make([]int64, n)
	fstr[n-1] = 1
	for d := n - 2; d >= 1; d-- {
		fstr[d] = fstr[d+1] * sp.Shape[d+1]
	}
	frameElems := sp.FrameBytes() / isz
	k := make([]int64, n) // chunk coords, k[0] unused
	el := make([]int64, n)
	for row := firstRow; row <= lastRow; row++ {
		for col := int64(0); col < sp.ShardsPerRow(); col++ {
			// shard coords over dims 1..
			sc := make([]int64, n)
			c := col
			for d := n - 1; d >= 1; d-- {
				sc[d] = c % sgrid[d-1]
				c /= sgrid[d-1]
			}
			seg := stage.Segment{Row: row, Col: col, Off: int64(len(out.Data)), First: len(out.Chunks)}
			e0 := max(row*perRow, b.FirstEpoch)
			e1 := min((row+1)*perRow, b.FirstEpoch+nE)
			for e := e0; e < e1; e++ {
				// chunks of this shard in C order over dims 1..
				inner := make([]int64, n) // within-shard chunk coords
				for {
					ok := true
					for d := 1; d < n; d++ {
						k[d] = sc[d]*scs[d] + inner[d]
						if k[d] >= grid[d-1] {
							ok = false
						}
					}
					if ok {
						idx := (e - row*perRow)
						for d := 1; d < n; d++ {
							idx = idx*scs[d] + inner[d]
						}
						off := int64(len(out.Data))
						out.Data = append(out.Data, make([]byte, chunkBytes)...)
						dst := out.Data[off:]
						// every element of the chunk
						for i := range el {
							el[i] = 0
						}
						for j := int64(0); j < sp.ChunkElems(); j++ {
							f := e*c0 + el[0]
							in := f < batchEnd && (n > 0)
							src := (f - batchStart) * frameElems
							for d := 1; d < n && in; d++ {
								g := k[d]*sp.Chunk[d] + el[d]
								if g >= sp.Shape[d] {
									in = false
								}
								src += g * fstr[d]
							}
							if in {
								copy(dst[j*isz:(j+1)*isz], s.staging[src*isz:(src+1)*isz])
							}
							for d := n - 1; d >= 0; d-- {
								el[d]++
								if el[d] < sp.Chunk[d] {
									break
								}
								el[d] = 0
							}
						}
						out.Chunks = append(out.Chunks, stage.Chunk{Inner: idx, Off: off, Size: chunkBytes})
					}
					d := n - 1
					for ; d >= 1; d-- {
						inner[d]++
						if inner[d] < scs[d] {
							break
						}
						inner[d] = 0
					}
					if d < 1 {
						break
					}
				}
			}
			seg.Len = int64(len(out.Data)) - seg.Off
			seg.N = len(out.Chunks) - seg.First
			if seg.N > 0 {
				out.Segs = append(out.Segs, seg)
			}
		}
	}
}

// failStage wraps a stage so that the Wait of the batch starting at epoch
// failAt fails (after the real work finished, as a backend error would).
type failStage struct {
	stage.Stage
	failAt int64
}

func (f *failStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	s, err := f.Stage.NewSlot(maxFrames)
	if err != nil {
		return nil, err
	}
	return &failSlot{Slot: s, f: f}, nil
}

type failSlot struct {
	stage.Slot
	f *failStage
	b stage.Batch
}

func (s *failSlot) Kick(b stage.Batch) error {
	s.b = b
	return s.Slot.Kick(b)
}

func (s *failSlot) Wait(ctx context.Context) (*stage.Output, error) {
	out, err := s.Slot.Wait(ctx)
	if err == nil && s.b.FirstEpoch == s.f.failAt {
		return nil, errInjected
	}
	return out, err
}

var errInjected = errors.New("injected stage failure")
