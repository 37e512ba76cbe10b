// Package gpu is zwrite's GPU compress backend. It owns the CUDA driver
// binding (reached with purego, so no cgo toolchain is needed for CUDA),
// GPU discovery (NVML where the binary was built with cgo, the driver and
// sysfs otherwise), the kernels embedded from ptx/ (cubins per arch and
// PTX, built from kernels/*.cu by make ptx; the loader takes the card's
// cubin and JIT-compiles the PTX only when none fits; $ZWRITE_PTX_DIR
// overrides them for kernel work on the GPU machine), pinned host memory,
// streams and events, and the GPU Stage implementing internal/stage's
// contract with the chunk order of stage.Layout. Codec kernels plug in
// through codec.go: blosc-lz4 (the CPU encoder's bytes), zstd and
// blosc-zstd, with every blosc shuffle. kernels/emu runs the same kernel
// sources on a CPU, which is how the tests check them without a GPU.
//
// It must not touch sinks, files or the pipeline's scheduling, and never
// prints: errors and measurements are returned as data. Without libcuda or
// a GPU every entry point returns an error wrapping ErrNoGPU.
package gpu
