package gpu

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// BenchmarkStage runs the GPU stage alone on bench-scenario geometries,
// with depth slots in flight and the staging filled once, so it shows what
// the stage can sustain and which step (H2D, tile, D2H) limits it.
func BenchmarkStage(b *testing.B) {
	needGPU(b)
	for _, tc := range []struct {
		name        string
		spec        zarr.Spec
		batchEpochs int64
		general     bool
	}{
		{"orca2", zarr.Spec{Shape: []int64{0, 2, 2048, 2304}, DType: zarr.Uint16, Chunk: []int64{32, 1, 64, 64}, Shard: []int64{640, 2, 512, 576}, Codec: zarr.CodecNone}, 1, false},
		{"orca2/general", zarr.Spec{Shape: []int64{0, 2, 2048, 2304}, DType: zarr.Uint16, Chunk: []int64{32, 1, 64, 64}, Shard: []int64{640, 2, 512, 576}, Codec: zarr.CodecNone}, 1, true},
		{"256cube", zarr.Spec{Shape: []int64{0, 256, 256, 256, 3}, DType: zarr.Uint16, Chunk: []int64{4, 32, 32, 32, 1}, Shard: []int64{64, 128, 128, 128, 3}, Codec: zarr.CodecNone}, 4, false},
	} {
		for _, depth := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/depth=%d", tc.name, depth), func(b *testing.B) {
				st, err := NewStageOptions(stage.Config{Spec: tc.spec}, Options{GeneralPath: tc.general})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				frames := tc.batchEpochs * tc.spec.Chunk[0]
				var slots []stage.Slot
				t0 := time.Now()
				for i := 0; i < depth; i++ {
					sl, err := st.NewSlot(frames)
					if err != nil {
						b.Fatal(err)
					}
					defer sl.Free()
					stg := sl.Staging()
					for j := range stg {
						stg[j] = byte(j * 7 >> 3)
					}
					slots = append(slots, sl)
				}
				newSlot := float64(time.Since(t0).Milliseconds()) / float64(depth)
				busy := make([]bool, depth)
				var sum stage.Times
				wait := func(i int) {
					out, err := slots[i].Wait(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if int64(len(out.Data)) < frames*tc.spec.FrameBytes() {
						b.Fatalf("output of %d bytes is short", len(out.Data))
					}
					sum.Add(out.Times)
					busy[i] = false
				}
				b.SetBytes(frames * tc.spec.FrameBytes())
				b.ResetTimer()
				for n := 0; n < b.N; n++ {
					i := n % depth
					if busy[i] {
						wait(i)
					}
					if err := slots[i].Kick(stage.Batch{FirstEpoch: int64(n) * tc.batchEpochs, Frames: frames}); err != nil {
						b.Fatal(err)
					}
					busy[i] = true
				}
				for i := range slots {
					if busy[i] {
						wait(i)
					}
				}
				b.StopTimer()
				bytes := float64(b.N) * float64(frames*tc.spec.FrameBytes())
				gbs := func(d float64) float64 {
					if d == 0 {
						return 0
					}
					return bytes / d / 1e9
				}
				b.ReportMetric(newSlot, "newslot-ms")
				b.ReportMetric(gbs(sum.H2D.Seconds()), "h2d-GB/s")
				b.ReportMetric(gbs(sum.Tile.Seconds()), "tile-GB/s")
				b.ReportMetric(gbs(sum.Aggregate.Seconds()), "agg-GB/s")
				b.ReportMetric(gbs(sum.D2H.Seconds()), "d2h-GB/s")
			})
		}
	}
}

// BenchmarkPipeline writes a prefilled orca2 epoch through the whole
// writer with the GPU stage and a discard sink, for several copy-helper
// counts: with the GPU doing the compress work the producer's staging copy
// is what is left on the CPU, so this shows how far more copiers move it.
func BenchmarkPipeline(b *testing.B) {
	needGPU(b)
	spec := zarr.Spec{Shape: []int64{0, 2, 2048, 2304}, DType: zarr.Uint16, Chunk: []int64{32, 1, 64, 64}, Shard: []int64{640, 2, 512, 576}, Codec: zarr.CodecNone}
	epoch := make([]byte, spec.Chunk[0]*spec.FrameBytes())
	for i := range epoch {
		epoch[i] = byte(i * 13 >> 4)
	}
	const writeBytes = 64 << 20
	for _, helpers := range []int{2, 6, 10, 14} {
		b.Run(fmt.Sprintf("helpers=%d", helpers), func(b *testing.B) {
			st, err := NewStage(stage.Config{Spec: spec})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			w, err := pipeline.New(context.Background(), pipeline.Config{Spec: spec, Stage: st, Sink: sink.NewDiscard(), Depth: 3, CopyHelpers: helpers})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(epoch)))
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for off := 0; off < len(epoch); off += writeBytes {
					if _, err := w.Write(epoch[off:min(off+writeBytes, len(epoch))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			// Close delivers the last batches and then frees the slots;
			// unpinning gigabytes of staging takes a while (about 0.1 s
			// per GB on the H100 machine), a teardown cost this benchmark
			// leaves out of the stream rate.
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			s := w.Stats()
			b.ReportMetric(float64(s.BytesIn)/s.Copy.Seconds()/1e9, "copy-GB/s")
			b.ReportMetric(s.StallJoin.Seconds()*1e3, "stall-join-ms")
			b.ReportMetric(s.StageWait.Seconds()*1e3, "stage-wait-ms")
			b.ReportMetric(s.Copy.Seconds()*1e3, "copy-ms")
		})
	}
}
