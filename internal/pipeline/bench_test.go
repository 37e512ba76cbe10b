package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// nullStage takes batches and returns empty output at once: with it,
// BenchmarkWrite measures only the producer's side (copy into staging,
// kick, join), the part the copy helpers are meant to speed up.
type nullStage struct{ frameBytes int64 }

func (n *nullStage) Name() string { return "null" }
func (n *nullStage) Close() error { return nil }
func (n *nullStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	return &nullSlot{staging: make([]byte, maxFrames*n.frameBytes)}, nil
}

type nullSlot struct {
	staging []byte
	out     stage.Output
}

func (s *nullSlot) Staging() []byte                             { return s.staging }
func (s *nullSlot) Kick(stage.Batch) error                      { return nil }
func (s *nullSlot) Wait(context.Context) (*stage.Output, error) { return &s.out, nil }
func (s *nullSlot) Free() error                                 { return nil }

// benchTotal is the bytes per benchmark op: a source far larger than the
// caches, read once per op as a camera's frames would be.
const benchTotal = 128 << 20

func benchSource() []byte {
	src := make([]byte, benchTotal)
	for i := range src {
		src[i] = byte(i * 7)
	}
	return src
}

// BenchmarkWrite measures Write into a Writer whose stage does nothing
// (nullStage) and whose sink discards, for several copy-helper counts (0 =
// serial) and write sizes, with every write split (threshold 1) when
// helpers run. Each op also times a plain memmove of the same bytes into a
// staging-sized ring, interleaved with the Writer's pass so that both see
// the same machine load, and reports it (memmove-MB/s) and the ratio
// (x-memmove, 1.0 = as fast as memmove).
func BenchmarkWrite(b *testing.B) {
	spec := mkSpec(zarr.Uint16, zarr.CodecNone, []int64{0, 512, 1024}, []int64{4, 256, 256}, []int64{16, 512, 1024})
	for _, ws := range []int{64 << 10, 1 << 20, 4 << 20, 16 << 20} {
		for _, helpers := range []int{-1, 1, 3} {
			name := fmt.Sprintf("write=%dK/helpers=%d", ws>>10, max(helpers, 0))
			b.Run(name, func(b *testing.B) {
				src := benchSource()
				w, err := New(context.Background(), Config{Spec: spec, Stage: &nullStage{spec.FrameBytes()}, Sink: sink.NewDiscard(),
					Depth: 2, BatchBytes: 16 << 20, CopyHelpers: helpers, CopyThreshold: 1})
				if err != nil {
					b.Fatal(err)
				}
				ring := make([]byte, 32<<20) // the Writer's staging: 2 slots of 16 MiB
				memmove := func() {
					for off := 0; off < benchTotal; off += ws {
						d := off % len(ring)
						copy(ring[d:d+ws], src[off:off+ws])
					}
				}
				write := func() {
					for off := 0; off < benchTotal; off += ws {
						if n, err := w.Write(src[off : off+ws]); n != ws || err != nil {
							b.Fatal(n, err)
						}
					}
				}
				memmove() // fault the pages in
				write()
				var mm time.Duration
				b.SetBytes(benchTotal)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					t0 := time.Now()
					memmove()
					mm += time.Since(t0)
					b.StartTimer()
					write()
				}
				b.StopTimer()
				if s := w.Stats(); s.BytesIn < benchTotal*2 || ring[len(ring)-1] != src[benchTotal-1] {
					b.Fatalf("only %d bytes went in", s.BytesIn)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				mmRate := float64(b.N) * benchTotal / mm.Seconds()
				b.ReportMetric(mmRate/1e6, "memmove-MB/s")
				b.ReportMetric(float64(b.N)*benchTotal/b.Elapsed().Seconds()/mmRate, "x-memmove")
			})
		}
	}
}

// BenchmarkDepth chooses DefaultDepth. It balances the three things
// that the slots let overlap: a producer paced like a camera (sleeping,
// 200 MB/s), the CPU stage compressing zstd (about as fast here), and a
// sink of fixed bandwidth (200 MB/s, sleeping). At depth 1 they run one after the
// other; it takes a slot filling, one compressing and one being delivered
// (depth 3) for all three to overlap; more only absorbs jitter.
func BenchmarkDepth(b *testing.B) {
	spec := mkSpec(zarr.Uint16, zarr.CodecZstd, []int64{0, 512, 1024}, []int64{4, 128, 128}, []int64{16, 512, 1024})
	input := genInput(32<<20, 1)
	const ws = 1 << 20
	const rate = 200e6 // bytes/s, producer and sink
	for _, depth := range []int{1, 2, 3, 4, 6} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			st := newCPU(b, stage.Config{Spec: spec})
			defer st.Close()
			b.SetBytes(int64(len(input)))
			for b.Loop() {
				w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: sinktest.NewSlow(sink.NewDiscard(), rate), Depth: depth, BatchBytes: 4 << 20})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for off := 0; off < len(input); off += ws {
					// pace the producer: the frame arrives at off/rate
					time.Sleep(time.Until(start.Add(time.Duration(float64(off+ws) / rate * float64(time.Second)))))
					if _, err := w.Write(input[off : off+ws]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOverhead compares the whole Writer (copy in, kick, deliver to a
// discard sink) with the CPU stage driven bare (two slots kicked and
// waited in turn on staging filled once): the difference is what the
// pipeline itself costs on top of compression.
func BenchmarkOverhead(b *testing.B) {
	spec := mkSpec(zarr.Uint16, zarr.CodecZstd, []int64{0, 512, 1024}, []int64{4, 128, 128}, []int64{16, 512, 1024})
	input := genInput(64<<20, 1)
	const batch = 4 << 20
	frames := int64(batch) / spec.FrameBytes()
	b.Run("stage-alone", func(b *testing.B) {
		st := newCPU(b, stage.Config{Spec: spec})
		defer st.Close()
		var slots [2]stage.Slot
		for i := range slots {
			var err error
			if slots[i], err = st.NewSlot(frames); err != nil {
				b.Fatal(err)
			}
			copy(slots[i].Staging(), input)
		}
		b.SetBytes(int64(len(input)))
		for b.Loop() {
			n := len(input) / batch
			for i := 0; i <= n; i++ {
				if i < n {
					if err := slots[i%2].Kick(stage.Batch{FirstEpoch: int64(i) * frames / 4, Frames: frames}); err != nil {
						b.Fatal(err)
					}
				}
				if i > 0 {
					if _, err := slots[(i-1)%2].Wait(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		for _, s := range slots {
			s.Free()
		}
	})
	b.Run("writer", func(b *testing.B) {
		st := newCPU(b, stage.Config{Spec: spec})
		defer st.Close()
		b.SetBytes(int64(len(input)))
		for b.Loop() {
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: sink.NewDiscard(), BatchBytes: batch})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(input); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
