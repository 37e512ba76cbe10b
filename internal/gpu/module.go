package gpu

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"unsafe"
)

// ptxFS holds ptx/NAME.ptx, built from kernels/NAME.cu by scripts/ptx.sh
// (nvcc -ptx -arch=compute_80); the driver JIT-compiles it for the card at
// load time. Each file's first line records the sha256 of its source.
//
//go:embed ptx
var ptxFS embed.FS

// PTXDirEnv names a directory whose NAME.ptx files replace the embedded
// ones at load time. Kernel authors use it to try new PTX on the GPU
// machine without rebuilding the Go binary; it is not for production.
const PTXDirEnv = "ZWRITE_PTX_DIR"

// PTX returns the PTX of kernels/name.cu: from $ZWRITE_PTX_DIR when set
// and it holds name.ptx, else the embedded copy.
func PTX(name string) ([]byte, error) {
	if dir := os.Getenv(PTXDirEnv); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, name+".ptx")); err == nil {
			return b, nil
		}
	}
	return embeddedPTX(name)
}

func embeddedPTX(name string) ([]byte, error) {
	b, err := ptxFS.ReadFile("ptx/" + name + ".ptx")
	if err != nil {
		return nil, fmt.Errorf("no embedded PTX for kernels/%s.cu (run make ptx where nvcc exists): %w", name, err)
	}
	return b, nil
}

// PTXNames lists the embedded modules.
func PTXNames() []string {
	ents, _ := fs.ReadDir(ptxFS, "ptx")
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".ptx"); ok {
			names = append(names, n)
		}
	}
	return names
}

// Module is a loaded PTX module.
type Module struct {
	d    *Device
	h    uintptr
	name string
}

// CUjit_option values for the JIT error log.
const (
	jitErrorLogBuffer     = 5
	jitErrorLogBufferSize = 6
)

// LoadModule JIT-compiles the embedded PTX of kernels/name.cu on d.
func (d *Device) LoadModule(name string) (*Module, error) {
	src, err := PTX(name)
	if err != nil {
		return nil, err
	}
	return d.LoadPTX(name, src)
}

// LoadPTX JIT-compiles PTX source; name is used in errors.
func (d *Device) LoadPTX(name string, src []byte) (*Module, error) {
	image := make([]byte, len(src)+1) // the driver wants a NUL-terminated string
	copy(image, src)
	logBuf := make([]byte, 8192)
	opts := [2]int32{jitErrorLogBuffer, jitErrorLogBufferSize}
	// The driver reads the buffer address and its size from these slots
	// and writes into logBuf during the call only; logBuf is heap memory
	// (it escapes), which Go never moves, and KeepAlive holds it.
	vals := [2]uintptr{uintptr(unsafe.Pointer(&logBuf[0])), uintptr(len(logBuf))}
	defer d.enter()()
	m := &Module{d: d, name: name}
	r := drv.cuModuleLoadDataEx(&m.h, unsafe.Pointer(&image[0]), 2, &opts[0], &vals[0])
	runtime.KeepAlive(logBuf)
	runtime.KeepAlive(image)
	if err := check("cuModuleLoadDataEx("+name+")", r); err != nil {
		if log := strings.TrimSpace(cString(&logBuf[0], len(logBuf))); log != "" {
			return nil, fmt.Errorf("%w: %s", err, log)
		}
		return nil, err
	}
	return m, nil
}

// Device is the module's device.
func (m *Module) Device() *Device { return m.d }

// Unload releases the module; again does nothing.
func (m *Module) Unload() error {
	if m == nil || m.h == 0 {
		return nil
	}
	defer m.d.enter()()
	err := check("cuModuleUnload("+m.name+")", drv.cuModuleUnload(m.h))
	m.h = 0
	return err
}

// Function is a kernel entry point of a module.
type Function struct {
	m    *Module
	h    uintptr
	Name string
}

// Function looks up an extern "C" kernel by name.
func (m *Module) Function(name string) (*Function, error) {
	defer m.d.enter()()
	f := &Function{m: m, Name: name}
	if err := check("cuModuleGetFunction("+m.name+"."+name+")", drv.cuModuleGetFunction(&f.h, m.h, name)); err != nil {
		return nil, err
	}
	return f, nil
}

// CUfunction_attribute values.
const (
	funcAttrMaxThreadsPerBlock   = 0
	funcAttrMaxDynamicSharedSize = 8
)

// SetMaxDynamicShared lets launches of f use up to n bytes of dynamic
// shared memory (needed above 48 KiB).
func (f *Function) SetMaxDynamicShared(n int) error {
	defer f.m.d.enter()()
	return check("cuFuncSetAttribute("+f.Name+", max dynamic shared)", drv.cuFuncSetAttribute(f.h, funcAttrMaxDynamicSharedSize, int32(n)))
}

// MaxThreadsPerBlock is the largest block f can be launched with (limited
// by its register use).
func (f *Function) MaxThreadsPerBlock() (int, error) {
	defer f.m.d.enter()()
	var v int32
	if err := check("cuFuncGetAttribute("+f.Name+")", drv.cuFuncGetAttribute(&v, funcAttrMaxThreadsPerBlock, f.h)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// Dim3 is a grid or block size; zero fields count as 1.
type Dim3 struct{ X, Y, Z uint32 }

func one(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}

const maxKernelArgs = 32

// launchArgs is a stream's reusable kernel parameter block: scalar values
// live in vals, and ptrs[i] points at argument i (a vals slot, or the
// caller's struct for by-value struct parameters).
type launchArgs struct {
	vals [maxKernelArgs]uint64
	ptrs [maxKernelArgs]unsafe.Pointer
	pin  runtime.Pinner
}

// Launch enqueues kernel f on s. Arguments map to kernel parameters:
// DevPtr, int32, uint32, int64, uint64 and float32 by value (Go int is
// refused: say which C width you mean), and a pointer to a struct for a
// by-value struct parameter with the same C layout. A Stream is used by one
// goroutine at a time, which makes the reuse of its parameter block safe.
func (s *Stream) Launch(f *Function, grid, block Dim3, shmem int, args ...any) error {
	if len(args) > maxKernelArgs {
		return fmt.Errorf("launch %s: %d arguments, at most %d", f.Name, len(args), maxKernelArgs)
	}
	a := &s.args
	for i, v := range args {
		a.vals[i] = 0
		switch x := v.(type) {
		case DevPtr:
			a.vals[i] = uint64(x)
		case int32:
			a.vals[i] = uint64(uint32(x))
		case uint32:
			a.vals[i] = uint64(x)
		case int64:
			a.vals[i] = uint64(x)
		case uint64:
			a.vals[i] = x
		case float32:
			// A 4-byte parameter is read from the low 4 bytes of its
			// slot (little endian).
			a.vals[i] = uint64(*(*uint32)(unsafe.Pointer(&x)))
		default:
			p, ok := structPointer(v)
			if !ok {
				return fmt.Errorf("launch %s: argument %d has unsupported type %T", f.Name, i, v)
			}
			a.pin.Pin(p)
			a.ptrs[i] = p
			continue
		}
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
	// The driver reads ptrs and what they point at during cuLaunchKernel
	// only; pinning keeps that Go memory in place and makes handing Go
	// pointers that hold Go pointers to C legal.
	a.pin.Pin(&a.vals[0])
	a.pin.Pin(&a.ptrs[0])
	defer a.pin.Unpin()
	defer s.d.enter()()
	var params unsafe.Pointer
	if len(args) > 0 {
		params = unsafe.Pointer(&a.ptrs[0])
	}
	r := drv.cuLaunchKernel(f.h, one(grid.X), one(grid.Y), one(grid.Z), one(block.X), one(block.Y), one(block.Z),
		uint32(shmem), s.h, params, nil)
	for i := range args {
		a.ptrs[i] = nil
	}
	return check("cuLaunchKernel("+f.Name+")", r)
}

// structPointer accepts a non-nil pointer to a struct.
func structPointer(v any) (unsafe.Pointer, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	return rv.UnsafePointer(), true
}
