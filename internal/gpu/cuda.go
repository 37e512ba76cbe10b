package gpu

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrNoGPU is wrapped by every error that means "this machine cannot run
// the GPU backend": no libcuda, no device, a driver that fails to start.
var ErrNoGPU = errors.New("no GPU")

// Error is a failed CUDA driver call: the call's name and CUDA's name for
// the result code (CUDA_ERROR_OUT_OF_MEMORY, ...).
type Error struct {
	Call string
	Code uint32
	Name string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%d)", e.Call, e.Name, e.Code)
}

// CUDA result codes we act on.
const (
	cuSuccess     = 0
	cuErrNoDevice = 100
	cuErrNotReady = 600
)

// driver holds the bound entry points of libcuda. Return types are uint32:
// CUresult is a C enum (int), so only the low 32 bits of the return
// register are defined.
type driver struct {
	cuInit                    func(flags uint32) uint32
	cuDriverGetVersion        func(v *int32) uint32
	cuDeviceGetCount          func(n *int32) uint32
	cuDeviceGet               func(dev *int32, ordinal int32) uint32
	cuDeviceGetName           func(name *byte, n int32, dev int32) uint32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) uint32
	cuDeviceGetPCIBusId       func(id *byte, n int32, dev int32) uint32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) uint32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) uint32
	cuDevicePrimaryCtxRelease func(dev int32) uint32
	cuCtxSetCurrent           func(ctx uintptr) uint32
	cuCtxSynchronize          func() uint32
	cuMemAlloc                func(p *uint64, n uint64) uint32
	cuMemFree                 func(p uint64) uint32
	cuMemGetInfo              func(free, total *uint64) uint32
	cuMemHostAlloc            func(p *unsafe.Pointer, n uint64, flags uint32) uint32
	cuMemFreeHost             func(p unsafe.Pointer) uint32
	cuMemHostRegister         func(p unsafe.Pointer, n uint64, flags uint32) uint32
	cuMemHostUnregister       func(p unsafe.Pointer) uint32
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, n uint64, st uintptr) uint32
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, n uint64, st uintptr) uint32
	cuMemcpyDtoDAsync         func(dst, src uint64, n uint64, st uintptr) uint32
	cuMemsetD8Async           func(dst uint64, v uint8, n uint64, st uintptr) uint32
	cuMemsetD32Async          func(dst uint64, v uint32, n uint64, st uintptr) uint32
	cuStreamCreate            func(st *uintptr, flags uint32) uint32
	cuStreamDestroy           func(st uintptr) uint32
	cuStreamSynchronize       func(st uintptr) uint32
	cuStreamWaitEvent         func(st, ev uintptr, flags uint32) uint32
	cuEventCreate             func(ev *uintptr, flags uint32) uint32
	cuEventDestroy            func(ev uintptr) uint32
	cuEventRecord             func(ev, st uintptr) uint32
	cuEventSynchronize        func(ev uintptr) uint32
	cuEventQuery              func(ev uintptr) uint32
	cuEventElapsedTime        func(ms *float32, start, end uintptr) uint32
	cuModuleLoadDataEx        func(m *uintptr, image unsafe.Pointer, nopt uint32, opts *int32, vals *uintptr) uint32
	cuModuleUnload            func(m uintptr) uint32
	cuModuleGetFunction       func(f *uintptr, m uintptr, name string) uint32
	cuModuleGetGlobal         func(p *uint64, n *uint64, m uintptr, name string) uint32
	cuOccupancyMaxActive      func(n *int32, f uintptr, threads int32, smem uint64) uint32
	cuFuncSetAttribute        func(f uintptr, attr int32, v int32) uint32
	cuFuncGetAttribute        func(v *int32, attr int32, f uintptr) uint32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, st uintptr, params unsafe.Pointer, extra unsafe.Pointer) uint32
	cuGetErrorName            func(res uint32, s **byte) uint32
}

var (
	loadOnce sync.Once
	loadErr  error
	loadTime time.Duration // dlopen, binding and cuInit (StartupTimes)
	drv      driver
)

// libcudaNames are tried in order: the versioned soname the driver
// installs, then the development symlink.
var libcudaNames = []string{"libcuda.so.1", "libcuda.so"}

// load dlopens libcuda, binds every entry point and runs cuInit once per
// process. Its error wraps ErrNoGPU.
func load() error {
	loadOnce.Do(func() {
		t0 := time.Now()
		loadErr = loadDriver()
		loadTime = time.Since(t0)
	})
	return loadErr
}

func loadDriver() error {
	var lib uintptr
	var openErr error
	for _, name := range libcudaNames {
		h, err := dlopen(name)
		if err == nil {
			lib = h
			break
		}
		if openErr == nil {
			openErr = err
		}
	}
	if lib == 0 {
		return fmt.Errorf("%w: cannot load libcuda.so.1, the NVIDIA driver's CUDA library (%v)", ErrNoGPU, openErr)
	}
	binds := []struct {
		fn   any
		name string
	}{
		{&drv.cuInit, "cuInit"},
		{&drv.cuDriverGetVersion, "cuDriverGetVersion"},
		{&drv.cuDeviceGetCount, "cuDeviceGetCount"},
		{&drv.cuDeviceGet, "cuDeviceGet"},
		{&drv.cuDeviceGetName, "cuDeviceGetName"},
		{&drv.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&drv.cuDeviceGetPCIBusId, "cuDeviceGetPCIBusId"},
		{&drv.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&drv.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&drv.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&drv.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&drv.cuCtxSynchronize, "cuCtxSynchronize"},
		{&drv.cuMemAlloc, "cuMemAlloc_v2"},
		{&drv.cuMemFree, "cuMemFree_v2"},
		{&drv.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&drv.cuMemHostAlloc, "cuMemHostAlloc"},
		{&drv.cuMemFreeHost, "cuMemFreeHost"},
		{&drv.cuMemHostRegister, "cuMemHostRegister_v2"},
		{&drv.cuMemHostUnregister, "cuMemHostUnregister"},
		{&drv.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&drv.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&drv.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{&drv.cuMemsetD8Async, "cuMemsetD8Async"},
		{&drv.cuMemsetD32Async, "cuMemsetD32Async"},
		{&drv.cuStreamCreate, "cuStreamCreate"},
		{&drv.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&drv.cuStreamSynchronize, "cuStreamSynchronize"},
		{&drv.cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&drv.cuEventCreate, "cuEventCreate"},
		{&drv.cuEventDestroy, "cuEventDestroy_v2"},
		{&drv.cuEventRecord, "cuEventRecord"},
		{&drv.cuEventSynchronize, "cuEventSynchronize"},
		{&drv.cuEventQuery, "cuEventQuery"},
		{&drv.cuEventElapsedTime, "cuEventElapsedTime"},
		{&drv.cuModuleLoadDataEx, "cuModuleLoadDataEx"},
		{&drv.cuModuleUnload, "cuModuleUnload"},
		{&drv.cuModuleGetFunction, "cuModuleGetFunction"},
		{&drv.cuModuleGetGlobal, "cuModuleGetGlobal_v2"},
		{&drv.cuOccupancyMaxActive, "cuOccupancyMaxActiveBlocksPerMultiprocessor"},
		{&drv.cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&drv.cuFuncGetAttribute, "cuFuncGetAttribute"},
		{&drv.cuLaunchKernel, "cuLaunchKernel"},
		{&drv.cuGetErrorName, "cuGetErrorName"},
	}
	for _, b := range binds {
		sym, err := dlsym(lib, b.name)
		if err != nil || sym == 0 {
			return fmt.Errorf("%w: the CUDA driver library lacks %s (driver too old?)", ErrNoGPU, b.name)
		}
		purego.RegisterFunc(b.fn, sym)
	}
	if err := check("cuInit", drv.cuInit(0)); err != nil {
		return fmt.Errorf("%w: the CUDA driver did not start: %v", ErrNoGPU, err)
	}
	return nil
}

// check turns a CUresult into nil or an *Error naming the call.
func check(call string, r uint32) error {
	if r == cuSuccess {
		return nil
	}
	return &Error{Call: call, Code: r, Name: errorName(r)}
}

// errorName asks the driver for the symbolic name of r.
func errorName(r uint32) string {
	var p *byte
	if drv.cuGetErrorName == nil || drv.cuGetErrorName(r, &p) != cuSuccess || p == nil {
		return fmt.Sprintf("CUDA_ERROR_%d", r)
	}
	return cString(p, 128)
}

// cString copies a NUL-terminated C string of at most max bytes.
func cString(p *byte, max int) string {
	// p points into the driver's static string table (or a buffer we own);
	// reading byte by byte up to the first NUL never leaves it.
	for n := 0; n < max; n++ {
		if *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) == 0 {
			return string(unsafe.Slice(p, n))
		}
	}
	return string(unsafe.Slice(p, max))
}

// DriverVersion is the CUDA version the driver supports, e.g. 13000 for
// CUDA 13.0.
func DriverVersion() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	var v int32
	if err := check("cuDriverGetVersion", drv.cuDriverGetVersion(&v)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// DeviceCount is the number of CUDA devices the driver sees.
func DeviceCount() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	var n int32
	r := drv.cuDeviceGetCount(&n)
	if r == cuErrNoDevice {
		return 0, nil
	}
	if err := check("cuDeviceGetCount", r); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Available reports nil when the GPU backend can run here, else an error
// wrapping ErrNoGPU that says why in words a user understands.
func Available() error {
	n, err := DeviceCount()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: the CUDA driver is installed but sees no GPU", ErrNoGPU)
	}
	return nil
}
