package gpu

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// rigDevice is where a codec test runs the kernels: the GPU (a stream on
// the first card) or the CPU kernel emulator.
type rigDevice interface {
	Queue
	Alloc(n int64) (DevPtr, error)
	Free(p DevPtr) error
	CopyHtoD(dst DevPtr, src []byte) error
	CopyDtoH(dst []byte, src DevPtr) error
	Sync() error
}

// gpuRigDevice is a stream of a real card.
type gpuRigDevice struct {
	*Stream
	d *Device
}

func (g gpuRigDevice) Alloc(n int64) (DevPtr, error) { return g.d.Alloc(n) }
func (g gpuRigDevice) Free(p DevPtr) error           { return g.d.Free(p) }
func (g gpuRigDevice) Sync() error                   { return g.Stream.Synchronize() }

// Sync is nothing to do: every emulator request returns when it is done.
func (e *emuDevice) Sync() error { return nil }

// codecRig holds one codec's kernels, loaded on a rigDevice: the codec
// tests drive their codecs through it directly, without a stage.
type codecRig struct {
	dev rigDevice
	c   CodecKernels
	// d and st are the card and stream of a GPU rig (nil on the
	// emulator), for the tests that time kernels.
	d  *Device
	st *Stream
}

// codecBuilder makes a codec from its loaded module.
type codecBuilder func(*Module) (CodecKernels, error)

// newCodecRig skips the test without a GPU, loads kernels/module.cu's
// module and builds the codec from it. With ZWRITE_PTX_DIR set (the device
// run that builds fresh PTX also tests it) the directory must hold
// module.ptx: a test that silently fell back to the embedded kernels would
// test the wrong ones.
func newCodecRig(t testing.TB, module string, build codecBuilder) *codecRig {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs a GPU: %v", err)
	}
	if dir := os.Getenv(PTXDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, module+".ptx")); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.LoadModule(module) // honours ZWRITE_PTX_DIR
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unload() })
	c, err := build(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Destroy() })
	return &codecRig{dev: gpuRigDevice{Stream: st, d: d}, c: c, d: d, st: st}
}

// newEmuRig is newCodecRig on the CPU kernel emulator (skips without g++).
func newEmuRig(t testing.TB, module string, build codecBuilder) *codecRig {
	t.Helper()
	e := newEmuDevice(t, module)
	c, err := build(e.module(module))
	if err != nil {
		t.Fatal(err)
	}
	return &codecRig{dev: e, c: c}
}

// codecBufs is device memory for encoding n chunks of chunkBytes.
type codecBufs struct {
	in, out, sizes, scratch DevPtr
	stride                  int64
	free                    func()
}

func (r *codecRig) alloc(t testing.TB, chunkBytes int64, n int) *codecBufs {
	t.Helper()
	b := &codecBufs{stride: (r.c.Bound(chunkBytes) + 255) &^ 255}
	var ptrs []DevPtr
	get := func(sz int64) DevPtr {
		p, err := r.dev.Alloc(max(sz, 4))
		if err != nil {
			t.Fatal(err)
		}
		ptrs = append(ptrs, p)
		return p
	}
	b.in = get(chunkBytes * int64(n))
	b.out = get(b.stride * int64(n))
	b.sizes = get(4 * int64(n))
	b.scratch = get(r.c.Scratch(chunkBytes, n))
	b.free = func() {
		for _, p := range ptrs {
			r.dev.Free(p)
		}
	}
	return b
}

// encode compresses data (n chunks of chunkBytes) with the rig's codec and
// returns each chunk's encoded bytes (a zstd frame, a blosc1 buffer).
func (r *codecRig) encode(t testing.TB, data []byte, chunkBytes int64) [][]byte {
	t.Helper()
	n := 1
	if chunkBytes > 0 {
		n = len(data) / int(chunkBytes)
	}
	b := r.alloc(t, chunkBytes, n)
	defer b.free()
	if len(data) > 0 {
		if err := r.dev.CopyHtoD(b.in, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.c.Encode(r.dev, b.in, chunkBytes, n, b.out, b.stride, b.sizes, b.scratch); err != nil {
		t.Fatal(err)
	}
	sizes := make([]byte, 4*n)
	out := make([]byte, b.stride*int64(n))
	if err := r.dev.CopyDtoH(sizes, b.sizes); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.CopyDtoH(out, b.out); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Sync(); err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, n)
	for i := range frames {
		sz := int64(binary.LittleEndian.Uint32(sizes[4*i:]))
		if sz > r.c.Bound(chunkBytes) {
			t.Fatalf("chunk %d: size %d exceeds Bound %d", i, sz, r.c.Bound(chunkBytes))
		}
		frames[i] = out[int64(i)*b.stride : int64(i)*b.stride+sz]
	}
	return frames
}
