package gpu

import (
	"fmt"
	"unsafe"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// downParams mirrors struct DownParams in kernels/downsample.cu (int64
// arrays, then int32s: no padding differences).
type downParams struct {
	in, out, istride [zarr.MaxRank]int64
	total            int64
	rank, reduce     int32
	method, pad      int32
}

// downParamsSize is the bytes the kernel reads.
const downParamsSize = int64(unsafe.Sizeof(downParams{}))

// downKernel reduces a batch on the device for the next pyramid level
// (stage.Config.Down): one launch of the dtype's kernel over the batch
// already uploaded for tiling.
type downKernel struct {
	fn     *Function
	spec   zarr.Spec
	d      stage.Downsample
	frameB int64 // bytes of one output frame
}

func newDownKernel(m *Module, spec zarr.Spec, d *stage.Downsample) (*downKernel, error) {
	if err := d.Validate(&spec); err != nil {
		return nil, err
	}
	fn, err := m.Function("down_" + spec.DType.String())
	if err != nil {
		return nil, err
	}
	return &downKernel{fn: fn, spec: spec, d: *d, frameB: d.DownFrameBytes(&spec)}, nil
}

// params are the kernel's parameters for a batch of frames.
func (k *downKernel) params(frames int64) (downParams, int64) {
	var p downParams
	shape := append([]int64{frames}, k.spec.Shape[1:]...)
	out := downsample.OutShape(shape, k.d.Reduce)
	n := len(shape)
	p.rank = int32(n)
	p.method = int32(k.d.Method)
	stride := int64(1)
	p.total = 1
	for d := n - 1; d >= 0; d-- {
		p.in[d], p.out[d], p.istride[d] = shape[d], out[d], stride
		stride *= shape[d]
		p.total *= out[d]
		if k.d.Reduce[d] {
			p.reduce |= 1 << d
		}
	}
	return p, out[0]
}

// launch runs the reduction of src (frames of the batch) into dst, with
// params already on the device at pp.
func (k *downKernel) launch(q Queue, src, dst, pp DevPtr, total int64) error {
	if total == 0 {
		return nil
	}
	// Grid-stride: enough blocks to fill a big card, no more.
	grid := uint32(min((total+255)/256, 1<<16))
	if err := q.Launch(k.fn, Dim3{X: grid}, Dim3{X: 256}, 0, src, dst, pp); err != nil {
		return fmt.Errorf("downsample: %w", err)
	}
	return nil
}

// bytes is the params as the kernel reads them.
func (p *downParams) bytes() []byte {
	// Sound: downParams is plain integers, no pointers, and the kernel's
	// struct has the same layout (8-byte fields, then 4-byte ones).
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), downParamsSize)
}
