package gpu

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/zwrite/zwrite/internal/hostmem"
)

// DevPtr is a device address (CUdeviceptr).
type DevPtr uint64

// Add offsets p by n bytes.
func (p DevPtr) Add(n int64) DevPtr { return p + DevPtr(n) }

// Device is one CUDA device with its primary context retained. Devices are
// shared per process (OpenDevice caches them) and live until the process
// ends: the primary context is cheap to keep, and every buffer, stream,
// event and module made on it is freed by its owner.
//
// CUDA binds the current context to an OS thread while goroutines move
// between threads, so every method pins its goroutine to its thread and
// makes the context current for the duration of the call (see enter).
type Device struct {
	Ordinal int
	dev     int32
	ctx     uintptr
	name    string
	sms     int
	major   int
	minor   int
	smemOpt int // max dynamic shared memory per block after opt-in
	// openTime is what OpenDevice spent the first time: the primary
	// context (created here, the expensive part) and the attributes.
	openTime time.Duration
}

var (
	devMu   sync.Mutex
	devices = map[int]*Device{}
)

// OpenDevice returns device ordinal with its primary context retained.
func OpenDevice(ordinal int) (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[ordinal]; ok {
		return d, nil
	}
	n, err := DeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		if n == 0 {
			return nil, fmt.Errorf("%w: the CUDA driver sees no GPU", ErrNoGPU)
		}
		return nil, fmt.Errorf("gpu %d does not exist (this machine has %d)", ordinal, n)
	}
	t0 := time.Now()
	d := &Device{Ordinal: ordinal}
	defer func() { d.openTime = time.Since(t0) }()
	if err := check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	if err := check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	var buf [256]byte
	if err := check("cuDeviceGetName", drv.cuDeviceGetName(&buf[0], int32(len(buf)), d.dev)); err != nil {
		return nil, err
	}
	d.name = cString(&buf[0], len(buf))
	for _, a := range []struct {
		attr int32
		dst  *int
	}{
		{attrMultiprocessorCount, &d.sms},
		{attrComputeCapabilityMajor, &d.major},
		{attrComputeCapabilityMinor, &d.minor},
		{attrMaxSharedPerBlockOptin, &d.smemOpt},
	} {
		v, err := d.attribute(a.attr)
		if err != nil {
			return nil, err
		}
		*a.dst = v
	}
	devices[ordinal] = d
	return d, nil
}

// CUdevice_attribute values used here.
const (
	attrMultiprocessorCount    = 16
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
	attrMaxSharedPerBlockOptin = 97
)

func (d *Device) attribute(attr int32) (int, error) {
	var v int32
	if err := check(fmt.Sprintf("cuDeviceGetAttribute(%d)", attr), drv.cuDeviceGetAttribute(&v, attr, d.dev)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// Name is the marketing name ("NVIDIA H100 80GB HBM3").
func (d *Device) Name() string { return d.name }

// SMs is the number of streaming multiprocessors, for sizing grids.
func (d *Device) SMs() int { return d.sms }

// ComputeCapability returns major, minor (9, 0 for Hopper).
func (d *Device) ComputeCapability() (int, int) { return d.major, d.minor }

// MaxSharedPerBlock is the dynamic shared memory a block may use after
// Function.SetMaxDynamicShared raises the limit.
func (d *Device) MaxSharedPerBlock() int { return d.smemOpt }

// enter pins the calling goroutine to its OS thread and makes d's context
// current there; the returned func undoes the pinning. Nested use is fine
// (LockOSThread counts).
func (d *Device) enter() func() {
	runtime.LockOSThread()
	// cuCtxSetCurrent on a retained primary context cannot fail short of
	// a driver fault, which the next real call reports with its name.
	drv.cuCtxSetCurrent(d.ctx)
	return runtime.UnlockOSThread
}

// MemInfo returns the free and total device memory in bytes.
func (d *Device) MemInfo() (free, total int64, err error) {
	defer d.enter()()
	var f, t uint64
	if err := check("cuMemGetInfo", drv.cuMemGetInfo(&f, &t)); err != nil {
		return 0, 0, err
	}
	return int64(f), int64(t), nil
}

// Synchronize waits for all work on the device's context.
func (d *Device) Synchronize() error {
	defer d.enter()()
	return check("cuCtxSynchronize", drv.cuCtxSynchronize())
}

// Alloc allocates n bytes of device memory (n > 0).
func (d *Device) Alloc(n int64) (DevPtr, error) {
	defer d.enter()()
	var p uint64
	if err := check(fmt.Sprintf("cuMemAlloc(%d bytes)", n), drv.cuMemAlloc(&p, uint64(n))); err != nil {
		return 0, err
	}
	return DevPtr(p), nil
}

// Free releases device memory from Alloc; Free(0) does nothing.
func (d *Device) Free(p DevPtr) error {
	if p == 0 {
		return nil
	}
	defer d.enter()()
	return check("cuMemFree", drv.cuMemFree(uint64(p)))
}

// HostBuf is page-locked (pinned) host memory: the copy engines read and
// write it directly, so an async copy runs at full PCIe speed and overlaps
// with host work.
type HostBuf struct {
	d   *Device
	p   unsafe.Pointer
	buf []byte
	// mapped: the memory is ours (hostmem), pinned by cuMemHostRegister;
	// otherwise the driver's, from cuMemHostAlloc.
	mapped bool
}

// cuMemHostAlloc / cuMemHostRegister flag: the memory is pinned for every
// context, not just the one current at allocation.
const hostAllocPortable = 1

// AllocHost allocates n bytes of pinned host memory (n > 0).
//
// Where it can, it maps the memory itself, faults its pages in from
// several threads (transparent huge pages asked for) and then registers
// it with the driver: cuMemHostAlloc faults every page in on one thread,
// which on the H200 machine (a VM whose memory is backed as it is first
// touched) ran at about 1 GB/s, so a writer's slots took a second or more
// to pin. Registering pages already present only locks them. If mapping or
// registering fails, it falls back to cuMemHostAlloc.
func (d *Device) AllocHost(n int64) (*HostBuf, error) {
	if n <= 0 {
		return nil, fmt.Errorf("pinned allocation of %d bytes", n)
	}
	if hostmem.Mapped && int64(int(n)) == n {
		if buf, err := hostmem.Alloc(int(n)); err == nil {
			hostmem.Touch(buf)
			p := unsafe.Pointer(unsafe.SliceData(buf))
			leave := d.enter()
			rc := drv.cuMemHostRegister(p, uint64(n), hostAllocPortable)
			leave()
			if rc == 0 {
				// buf is an anonymous mapping outside the Go heap,
				// mapped until hostmem.Free in Free: the GC never moves
				// or frees it, so handing its address to the driver is
				// sound.
				return &HostBuf{d: d, p: p, buf: buf, mapped: true}, nil
			}
			hostmem.Free(buf)
		}
	}
	defer d.enter()()
	var p unsafe.Pointer
	if err := check(fmt.Sprintf("cuMemHostAlloc(%d bytes)", n), drv.cuMemHostAlloc(&p, uint64(n), hostAllocPortable)); err != nil {
		return nil, err
	}
	// p is n bytes of C memory that stays mapped until cuMemFreeHost; the
	// Go GC never scans or moves it, so a slice over it is sound while the
	// HostBuf lives.
	return &HostBuf{d: d, p: p, buf: unsafe.Slice((*byte)(p), n)}, nil
}

// Bytes is the buffer; it must not be used after Free.
func (h *HostBuf) Bytes() []byte { return h.buf }

// Free releases the pinned memory; calling it again does nothing.
func (h *HostBuf) Free() error {
	if h == nil || h.p == nil {
		return nil
	}
	var err error
	if h.mapped {
		leave := h.d.enter()
		err = check("cuMemHostUnregister", drv.cuMemHostUnregister(h.p))
		leave()
		if uerr := hostmem.Free(h.buf); err == nil {
			err = uerr
		}
	} else {
		defer h.d.enter()()
		err = check("cuMemFreeHost", drv.cuMemFreeHost(h.p))
	}
	h.p, h.buf = nil, nil
	return err
}

// Stream is a CUDA stream: work enqueued on it runs in order, and work on
// different streams may overlap.
type Stream struct {
	d *Device
	h uintptr
	// args is reused by Launch for the kernel parameter block.
	args launchArgs
}

// cuStreamCreate flag: no implicit synchronisation with the legacy
// default stream.
const streamNonBlocking = 1

// NewStream creates a stream.
func (d *Device) NewStream() (*Stream, error) {
	defer d.enter()()
	s := &Stream{d: d}
	if err := check("cuStreamCreate", drv.cuStreamCreate(&s.h, streamNonBlocking)); err != nil {
		return nil, err
	}
	return s, nil
}

// Device is the stream's device.
func (s *Stream) Device() *Device { return s.d }

// Destroy destroys the stream after its work completes; again does nothing.
func (s *Stream) Destroy() error {
	if s == nil || s.h == 0 {
		return nil
	}
	defer s.d.enter()()
	err := check("cuStreamDestroy", drv.cuStreamDestroy(s.h))
	s.h = 0
	return err
}

// Synchronize waits for all work enqueued on s.
func (s *Stream) Synchronize() error {
	defer s.d.enter()()
	return check("cuStreamSynchronize", drv.cuStreamSynchronize(s.h))
}

// CopyHtoD enqueues a copy of src (pinned for full speed) to dst.
func (s *Stream) CopyHtoD(dst DevPtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	defer s.d.enter()()
	// src stays valid until the copy ends: callers pass pinned buffers
	// they own until the stream is synchronised.
	return check("cuMemcpyHtoDAsync", drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uint64(len(src)), s.h))
}

// CopyDtoH enqueues a copy of len(dst) bytes from src into dst (pinned).
func (s *Stream) CopyDtoH(dst []byte, src DevPtr) error {
	if len(dst) == 0 {
		return nil
	}
	defer s.d.enter()()
	return check("cuMemcpyDtoHAsync", drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(src), uint64(len(dst)), s.h))
}

// CopyDtoD enqueues a device-to-device copy of n bytes.
func (s *Stream) CopyDtoD(dst, src DevPtr, n int64) error {
	if n == 0 {
		return nil
	}
	defer s.d.enter()()
	return check("cuMemcpyDtoDAsync", drv.cuMemcpyDtoDAsync(uint64(dst), uint64(src), uint64(n), s.h))
}

// Memset enqueues setting n bytes at p to v.
func (s *Stream) Memset(p DevPtr, v byte, n int64) error {
	if n == 0 {
		return nil
	}
	defer s.d.enter()()
	return check("cuMemsetD8Async", drv.cuMemsetD8Async(uint64(p), v, uint64(n), s.h))
}

// Memset32 enqueues setting n 32-bit words at p (4-byte aligned) to v.
func (s *Stream) Memset32(p DevPtr, v uint32, n int64) error {
	if n == 0 {
		return nil
	}
	defer s.d.enter()()
	return check("cuMemsetD32Async", drv.cuMemsetD32Async(uint64(p), v, uint64(n), s.h))
}

// WaitEvent makes later work on s wait until e has completed.
func (s *Stream) WaitEvent(e *Event) error {
	defer s.d.enter()()
	return check("cuStreamWaitEvent", drv.cuStreamWaitEvent(s.h, e.h, 0))
}

// Event marks a point in a stream, for ordering and timing.
type Event struct {
	d *Device
	h uintptr
}

// cuEventCreate flag: a thread in cuEventSynchronize sleeps instead of
// spinning. The default spin-wait burns a core per waiting slot worker,
// and those are the cores the producer's staging copy needs.
const eventBlockingSync = 1

// NewEvent creates a timing event whose Synchronize blocks without
// spinning.
func (d *Device) NewEvent() (*Event, error) {
	defer d.enter()()
	e := &Event{d: d}
	if err := check("cuEventCreate", drv.cuEventCreate(&e.h, eventBlockingSync)); err != nil {
		return nil, err
	}
	return e, nil
}

// Destroy releases the event; again does nothing.
func (e *Event) Destroy() error {
	if e == nil || e.h == 0 {
		return nil
	}
	defer e.d.enter()()
	err := check("cuEventDestroy", drv.cuEventDestroy(e.h))
	e.h = 0
	return err
}

// Record enqueues e on s.
func (e *Event) Record(s *Stream) error {
	defer e.d.enter()()
	return check("cuEventRecord", drv.cuEventRecord(e.h, s.h))
}

// Synchronize blocks until the work before e's last Record is done.
func (e *Event) Synchronize() error {
	defer e.d.enter()()
	return check("cuEventSynchronize", drv.cuEventSynchronize(e.h))
}

// Done reports whether the work before e's last Record is done.
func (e *Event) Done() (bool, error) {
	defer e.d.enter()()
	r := drv.cuEventQuery(e.h)
	if r == cuErrNotReady {
		return false, nil
	}
	if err := check("cuEventQuery", r); err != nil {
		return false, err
	}
	return true, nil
}

// Elapsed is the time between two completed events, in milliseconds.
func Elapsed(start, end *Event) (float32, error) {
	defer start.d.enter()()
	var ms float32
	if err := check("cuEventElapsedTime", drv.cuEventElapsedTime(&ms, start.h, end.h)); err != nil {
		return 0, err
	}
	return ms, nil
}
