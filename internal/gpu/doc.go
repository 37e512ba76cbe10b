// Package gpu is zwrite's GPU compress backend. It owns the CUDA driver
// binding (reached with purego, so no cgo toolchain is needed for CUDA),
// GPU discovery (NVML where the binary was built with cgo, the driver and
// sysfs otherwise), the PTX kernels embedded from ptx/ (built from
// kernels/*.cu by make ptx; $ZWRITE_PTX_DIR overrides them for kernel
// work on the GPU machine), pinned host memory, streams and events, and
// the GPU Stage implementing internal/stage's contract with the chunk
// order of stage.Layout. Codec kernels plug in through codec.go.
//
// It must not touch sinks, files or the pipeline's scheduling, and never
// prints: errors and measurements are returned as data. Without libcuda or
// a GPU every entry point returns an error wrapping ErrNoGPU.
package gpu
