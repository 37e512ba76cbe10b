package gpu

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// ptxFS holds, for each kernels/NAME.cu, the images scripts/ptx.sh (make
// ptx) builds from it:
//
//	ptx/NAME.ptx          nvcc -ptx -arch=compute_80: JIT-compiled by the
//	                      driver for any card from Ampere on (the fallback)
//	ptx/NAME.sm_XY.cubin  SASS for sm_80, sm_86, sm_89, sm_90 and the
//	                      newest arch of the nvcc that built them: loaded
//	                      as is, no JIT at start-up
//	ptx/cubins.txt        arch, module, source hash, cubin hash and size of
//	                      each cubin (TestCubinsMatchSource)
//
// Embedded size, CUDA 11.8 build of this tree: PTX 0.75 MB, cubins 2.3 MB
// for 4 modules x 4 archs (zstd's are the largest: 0.34-0.41 MB each); a
// CUDA 13 build adds its newest arch's cubins (about 0.6 MB more). The JIT
// of the PTX, which every start paid before, is what the cubins save.
//
//go:embed ptx
var ptxFS embed.FS

// PTXDirEnv names a directory whose images (NAME.ptx, and NAME.sm_XY.cubin
// when present) replace the embedded ones of a module whose NAME.ptx it
// holds. Kernel authors use it to try new kernels on the GPU machine
// without rebuilding the Go binary; it is not for production.
const PTXDirEnv = "ZWRITE_PTX_DIR"

// imageSet is where a module's images come from: the embedded files or
// $ZWRITE_PTX_DIR.
type imageSet struct {
	fsys   fs.FS
	dir    string // "ptx" inside the embedded FS, "." in a directory
	origin string // for ModuleLoad.Image: "" embedded, else the directory
}

func (s imageSet) read(file string) ([]byte, error) {
	return fs.ReadFile(s.fsys, path.Join(s.dir, file))
}

// cubinArchs lists the archs ("sm_86") with a cubin of module name.
func (s imageSet) cubinArchs(name string) []string {
	ents, _ := fs.ReadDir(s.fsys, s.dir)
	var archs []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), name+".")
		if !ok {
			continue
		}
		if arch, ok := strings.CutSuffix(rest, ".cubin"); ok {
			archs = append(archs, arch)
		}
	}
	return archs
}

// images returns where module name's images come from.
func images(name string) imageSet {
	if dir := os.Getenv(PTXDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, name+".ptx")); err == nil {
			return imageSet{fsys: os.DirFS(dir), dir: ".", origin: dir}
		}
	}
	return imageSet{fsys: ptxFS, dir: "ptx"}
}

// PTX returns the PTX of kernels/name.cu: from $ZWRITE_PTX_DIR when set
// and it holds name.ptx, else the embedded copy.
func PTX(name string) ([]byte, error) {
	b, err := images(name).read(name + ".ptx")
	if err != nil {
		return nil, fmt.Errorf("no PTX for kernels/%s.cu (run make ptx where nvcc exists): %w", name, err)
	}
	return b, nil
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

// parseArch reads "sm_XY" (or sm_XYZ: sm_100 is 10.0, sm_121 12.1) as a
// compute capability; arch-specific variants (sm_90a) are not taken.
func parseArch(arch string) (major, minor int, ok bool) {
	d, ok := strings.CutPrefix(arch, "sm_")
	if !ok || len(d) < 2 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(d)
	if err != nil || n < 10 || strconv.Itoa(n) != d {
		return 0, 0, false
	}
	return n / 10, n % 10, true
}

// pickCubin chooses the cubin to load on a card of compute capability
// major.minor among archs: SASS for sm_XY runs on a card X.Z with Z >= Y
// (same major, never across majors), so the highest such Y wins. "" means
// none fits and the PTX is JIT-compiled.
func pickCubin(archs []string, major, minor int) string {
	best, bestMinor := "", -1
	for _, a := range archs {
		ma, mi, ok := parseArch(a)
		if ok && ma == major && mi <= minor && mi > bestMinor {
			best, bestMinor = a, mi
		}
	}
	return best
}

// ModuleLoad is what loading one module took, for start-up reports.
type ModuleLoad struct {
	Module string // kernels/Module.cu
	// Image says what was loaded: "sm_90 cubin" or "PTX (JIT)", with
	// "from DIR" when $ZWRITE_PTX_DIR supplied it.
	Image string
	// Load is the time of the cuModuleLoadDataEx call(s), JIT included.
	Load time.Duration
	// Fallback says why a cubin for the card was not used ("" when it
	// was, or when no cubin matches the card and the PTX is the plan).
	Fallback string
}

// Module is a loaded module.
type Module struct {
	d    *Device
	h    uintptr
	name string
	// emulated marks a module whose kernels the tests' CPU emulator runs
	// (emu_test.go): Function hands out names without a driver handle, and
	// function attributes are not set. Never set outside tests.
	emulated bool
	load     ModuleLoad
}

// Loaded reports which image was loaded and how long it took.
func (m *Module) Loaded() ModuleLoad { return m.load }

// CUjit_option values for the JIT error log.
const (
	jitErrorLogBuffer     = 5
	jitErrorLogBufferSize = 6
)

// LoadModule loads kernels/name.cu on d: the cubin matching the card's
// compute capability when there is one (no JIT), else the PTX, which the
// driver JIT-compiles. A cubin the driver refuses (one built by a CUDA
// newer than the driver, say) falls back to the PTX too; Loaded says so.
func (d *Device) LoadModule(name string) (*Module, error) {
	set := images(name)
	from := ""
	if set.origin != "" {
		from = " from " + set.origin
	}
	var fallback string
	if arch := pickCubin(set.cubinArchs(name), d.major, d.minor); arch != "" {
		img, err := set.read(name + "." + arch + ".cubin")
		if err == nil && len(img) > 0 {
			t0 := time.Now()
			m, err := d.loadImage(name, img)
			if err == nil {
				m.load = ModuleLoad{Module: name, Image: arch + " cubin" + from, Load: time.Since(t0)}
				return m, nil
			}
			fallback = fmt.Sprintf("%s cubin refused: %v", arch, err)
		} else {
			fallback = fmt.Sprintf("%s cubin unreadable: %v", arch, err)
		}
	}
	src, err := set.read(name + ".ptx")
	if err != nil {
		return nil, fmt.Errorf("no PTX for kernels/%s.cu (run make ptx where nvcc exists): %w", name, err)
	}
	t0 := time.Now()
	m, err := d.LoadPTX(name, src)
	if err != nil {
		if fallback != "" {
			return nil, fmt.Errorf("%w (after the %s)", err, fallback)
		}
		return nil, err
	}
	m.load = ModuleLoad{Module: name, Image: "PTX (JIT)" + from, Load: time.Since(t0), Fallback: fallback}
	return m, nil
}

// LoadPTX JIT-compiles PTX source; name is used in errors.
func (d *Device) LoadPTX(name string, src []byte) (*Module, error) {
	image := make([]byte, len(src)+1) // the driver wants a NUL-terminated string
	copy(image, src)
	return d.loadImage(name, image)
}

// loadImage loads a cubin, or NUL-terminated PTX, with the JIT error log.
func (d *Device) loadImage(name string, image []byte) (*Module, error) {
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
	f := &Function{m: m, Name: name}
	if m.emulated {
		return f, nil
	}
	defer m.d.enter()()
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
	if f.m.emulated {
		return nil
	}
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

// Global returns the address and size of the module's __device__ variable
// name. An emulated module has none (an error).
func (m *Module) Global(name string) (DevPtr, int64, error) {
	if m.emulated {
		return 0, 0, fmt.Errorf("module %s: globals are not emulated", m.name)
	}
	defer m.d.enter()()
	var p, n uint64
	if err := check("cuModuleGetGlobal("+m.name+"."+name+")", drv.cuModuleGetGlobal(&p, &n, m.h, name)); err != nil {
		return 0, 0, err
	}
	return DevPtr(p), int64(n), nil
}

// ReadGlobal copies the module's __device__ variable name (exactly
// len(dst) bytes) into dst, on the legacy stream and waiting for it: for
// the few constants a module reports about itself at load time.
func (m *Module) ReadGlobal(name string, dst []byte) error {
	p, n, err := m.Global(name)
	if err != nil {
		return err
	}
	if n != int64(len(dst)) {
		return fmt.Errorf("module %s: global %s holds %d bytes, want %d", m.name, name, n, len(dst))
	}
	defer m.d.enter()()
	if err := check("cuMemcpyDtoHAsync("+name+")", drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(p), uint64(n), 0)); err != nil {
		return err
	}
	return check("cuStreamSynchronize", drv.cuStreamSynchronize(0))
}

// Occupancy is how many CTAs of threads threads and smem bytes of dynamic
// shared memory one multiprocessor holds at once for f (what bounds how
// much latency the parse loops can hide).
func (f *Function) Occupancy(threads, smem int) (int, error) {
	if f.m.emulated {
		return 0, fmt.Errorf("kernel %s: occupancy is not emulated", f.Name)
	}
	defer f.m.d.enter()()
	var n int32
	if err := check("cuOccupancyMaxActiveBlocksPerMultiprocessor("+f.Name+")", drv.cuOccupancyMaxActive(&n, f.h, int32(threads), uint64(smem))); err != nil {
		return 0, err
	}
	return int(n), nil
}
