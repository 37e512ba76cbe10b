package gpu

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestDownsampleEmulator runs the downsample kernels (unchanged, on the CPU
// emulator) through the Go launch code and checks them against the CPU
// stage's fast path byte for byte (the same arithmetic in the same order)
// and, for integers, against the exact reference: every dtype, method and
// reduce pattern, ragged shapes, odd frame counts.
func TestDownsampleEmulator(t *testing.T) {
	e := newEmuDevice(t, "downsample")
	m := e.module("downsample")
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range zarr.DTypes {
		for _, meth := range downsample.Methods {
			for _, red := range [][]bool{{false, true, true}, {true, true, true}, {true, false, true}, {false, false, true}} {
				t.Run(fmt.Sprintf("%v/%v/%v", dt, meth, red), func(t *testing.T) {
					spec := zarr.Spec{Shape: []int64{0, 13, 17}, DType: dt, Chunk: []int64{2, 8, 8}, Shard: []int64{4, 8, 8}, Codec: zarr.CodecNone}
					k, err := newDownKernel(m, spec, &stage.Downsample{Reduce: red, Method: meth})
					if err != nil {
						t.Fatal(err)
					}
					for _, frames := range []int64{1, 6, 7} {
						src := make([]byte, frames*spec.FrameBytes())
						for i := range src {
							src[i] = byte(r.Uint32())
						}
						if dt == zarr.Float32 || dt == zarr.Float64 {
							for i := dt.Size() - 1; i < len(src); i += dt.Size() {
								src[i] &= 0xbf // finite, some negative
							}
						}
						p, outFrames := k.params(frames)
						out := outFrames * k.frameB
						dSrc, _ := e.Alloc(int64(len(src)))
						dDst, _ := e.Alloc(max(out, 1))
						dP, _ := e.Alloc(downParamsSize)
						e.CopyHtoD(dSrc, src)
						e.CopyHtoD(dP, p.bytes())
						if err := k.launch(e, dSrc, dDst, dP, p.total); err != nil {
							t.Fatal(err)
						}
						got := make([]byte, out)
						if err := e.CopyDtoH(got, dDst); err != nil {
							t.Fatal(err)
						}
						plan, _ := downsample.NewPlan(append([]int64{frames}, spec.Shape[1:]...), red, dt, meth)
						want := make([]byte, out)
						plan.Frames(want, src, 0, outFrames)
						if !bytes.Equal(got, want) {
							t.Fatalf("%d frames: the kernel differs from the CPU stage's reduction", frames)
						}
						if dt != zarr.Float32 && dt != zarr.Float64 {
							downsample.Reference(plan, want, src, 0, outFrames)
							if !bytes.Equal(got, want) {
								t.Fatalf("%d frames: the kernel differs from the reference", frames)
							}
						}
						e.Free(dSrc)
						e.Free(dDst)
						e.Free(dP)
					}
				})
			}
		}
	}
}

// TestStageDownsampleGPU: the GPU stage built with Config.Down gives, for
// every batch, the CPU stage's Output.Down byte for byte (and the same
// compressed chunks where the codec is shared), for several dtypes,
// methods and reduce patterns.
func TestStageDownsampleGPU(t *testing.T) {
	needGPU(t)
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Uint8, zarr.Int32, zarr.Float32, zarr.Uint64} {
		for _, meth := range downsample.Methods {
			for _, red := range [][]bool{{false, true, true}, {true, true, true}} {
				t.Run(fmt.Sprintf("%v/%v/%v", dt, meth, red), func(t *testing.T) {
					spec := zarr.Spec{Shape: []int64{0, 300, 257}, DType: dt, Chunk: []int64{4, 64, 64}, Shard: []int64{8, 128, 128}, Codec: zarr.CodecLZ4, Level: 1}
					cfg := stage.Config{Spec: spec, Down: &stage.Downsample{Reduce: red, Method: meth}}
					g, err := NewStage(cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer g.Close()
					c, err := cpu.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					r := rand.New(rand.NewPCG(7, uint64(dt)))
					for _, b := range []stage.Batch{{FirstEpoch: 0, Frames: 16}, {FirstEpoch: 4, Frames: 7}} {
						src := make([]byte, b.Frames*spec.FrameBytes())
						for i := range src {
							src[i] = byte(r.Uint32())
						}
						if dt == zarr.Float32 {
							for i := 3; i < len(src); i += 4 {
								src[i] &= 0xbf
							}
						}
						outs := make([]*stage.Output, 2)
						for i, st := range []stage.Stage{g, c} {
							sl, err := st.NewSlot(16)
							if err != nil {
								t.Fatal(err)
							}
							copy(sl.Staging(), src)
							if err := sl.Kick(b); err != nil {
								t.Fatal(err)
							}
							out, err := sl.Wait(context.Background())
							if err != nil {
								t.Fatal(err)
							}
							outs[i] = &stage.Output{Data: append([]byte(nil), out.Data...), Down: append([]byte(nil), out.Down...), DownFrames: out.DownFrames}
							sl.Free()
						}
						if outs[0].DownFrames != outs[1].DownFrames || !bytes.Equal(outs[0].Down, outs[1].Down) {
							t.Fatalf("batch %+v: GPU Down (%d frames) differs from the CPU stage's (%d)", b, outs[0].DownFrames, outs[1].DownFrames)
						}
						if !bytes.Equal(outs[0].Data, outs[1].Data) {
							t.Fatalf("batch %+v: blosc-lz4 chunks differ between GPU and CPU", b)
						}
					}
				})
			}
		}
	}
}
