package gpu

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The CPU kernel emulator: kernels/emu/NAME_emu.cu compiles kernels/NAME.cu
// unchanged with g++ against kernels/emu/cuda_emu.h (every CUDA thread a
// fiber) and serves allocations, copies and launches over a pipe
// (kernels/emu/harness.h). emuDevice is the Go end: a Queue whose Launch
// runs a kernel by name with the grid and arguments a codec computed, so
// the whole Encode path of a codec (scratch layout, grids, argument order,
// kernels) runs on machines without a GPU.

// emuSources are the files (under kernels/) an emulator binary is built
// from besides emu/NAME_emu.cu and NAME.cu; its cache key hashes them all.
var emuSources = []string{"emu/cuda_emu.h", "emu/harness.h", "blosc.cuh"}

var emuBuilds sync.Map // module name -> *emuBuild

type emuBuild struct {
	once sync.Once
	path string
	err  error
}

// emuBinary builds (once per content, cached under the temp directory) the
// emulator of kernels/module.cu and returns its path; it skips the test
// without g++.
func emuBinary(t testing.TB, module string) string {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not found; the kernel emulator needs a C++17 compiler")
	}
	if _, err := os.Stat(filepath.Join("kernels", "emu", module+"_emu.cu")); err != nil {
		t.Skipf("kernel sources not found (run the test binary in internal/gpu): %v", err)
	}
	v, _ := emuBuilds.LoadOrStore(module, &emuBuild{})
	b := v.(*emuBuild)
	b.once.Do(func() { b.path, b.err = buildEmu(gxx, module) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildEmu(gxx, module string) (string, error) {
	main := filepath.Join("kernels", "emu", module+"_emu.cu")
	h := sha256.New()
	for _, f := range append([]string{"emu/" + module + "_emu.cu", module + ".cu"}, emuSources...) {
		f = filepath.Join("kernels", filepath.FromSlash(f))
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	flags := []string{"-O2", "-std=c++17", "-x", "c++"}
	// ZWRITE_EMU_CFLAGS adds compiler flags (kernel tuning: -DZS_HLOG=9).
	flags = append(flags, strings.Fields(os.Getenv("ZWRITE_EMU_CFLAGS"))...)
	fmt.Fprint(h, flags)
	dir := filepath.Join(os.TempDir(), "zwrite-emu-"+hex.EncodeToString(h.Sum(nil))[:20])
	bin := filepath.Join(dir, module+"_emu")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, module+"-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append(flags, main, "-o", tmp.Name())
	if out, err := exec.Command(gxx, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the %s kernel emulator: %v\n%s", module, err, out)
	}
	// Rename is atomic: concurrent test processes build the same bytes.
	return bin, os.Rename(tmp.Name(), bin)
}

// emuDevice is one running emulator process.
type emuDevice struct {
	cmd *exec.Cmd
	w   *bufio.Writer
	r   *bufio.Reader
	in  io.WriteCloser
	dev *Device // what the codec factories see: an H100-like card
	mu  sync.Mutex
}

var _ Queue = (*emuDevice)(nil)

// newEmuDevice starts the emulator of kernels/module.cu; it stops when the
// test ends.
func newEmuDevice(t testing.TB, module string) *emuDevice {
	t.Helper()
	bin := emuBinary(t, module)
	cmd := exec.Command(bin)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &emuDevice{cmd: cmd, w: bufio.NewWriter(in), r: bufio.NewReader(out), in: in,
		dev: &Device{name: "CPU kernel emulator", sms: 132, major: 9, minor: 0, smemOpt: 227 << 10}}
	t.Cleanup(func() {
		e.mu.Lock()
		e.w.WriteByte('Q')
		e.w.Flush()
		e.in.Close()
		e.mu.Unlock()
		cmd.Wait()
	})
	return e
}

// module is kernels/name.cu as the emulator runs it, for codec factories.
func (e *emuDevice) module(name string) *Module {
	return &Module{d: e.dev, name: name, emulated: true}
}

func (e *emuDevice) put(vs ...any) {
	for _, v := range vs {
		switch x := v.(type) {
		case byte:
			e.w.WriteByte(x)
		case uint32:
			binary.Write(e.w, binary.LittleEndian, x)
		case uint64:
			binary.Write(e.w, binary.LittleEndian, x)
		case DevPtr:
			binary.Write(e.w, binary.LittleEndian, uint64(x))
		case []byte:
			e.w.Write(x)
		case string:
			e.w.WriteString(x)
		default:
			panic(fmt.Sprintf("emu: cannot send %T", v))
		}
	}
}

var emuStatus = map[byte]string{1: "unknown kernel", 2: "wrong argument count", 3: "bad request (a pointer outside every allocation?)"}

// call sends one request and reads its status and n reply bytes into dst.
func (e *emuDevice) call(what string, dst []byte, req ...any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.put(req...)
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("emulator %s: %w", what, err)
	}
	st, err := e.r.ReadByte()
	if err != nil {
		return fmt.Errorf("emulator %s: the emulator died: %w", what, err)
	}
	if st != 0 {
		return fmt.Errorf("emulator %s: %s", what, emuStatus[st])
	}
	if _, err := io.ReadFull(e.r, dst); err != nil {
		return fmt.Errorf("emulator %s: %w", what, err)
	}
	return nil
}

func (e *emuDevice) Alloc(n int64) (DevPtr, error) {
	var b [8]byte
	if err := e.call("alloc", b[:], byte('A'), uint64(n)); err != nil {
		return 0, err
	}
	return DevPtr(binary.LittleEndian.Uint64(b[:])), nil
}

func (e *emuDevice) Free(p DevPtr) error { return e.call("free", nil, byte('F'), p) }

func (e *emuDevice) CopyHtoD(dst DevPtr, src []byte) error {
	return e.call("copy to device", nil, byte('H'), dst, uint64(len(src)), src)
}

func (e *emuDevice) CopyDtoH(dst []byte, src DevPtr) error {
	return e.call("copy from device", dst, byte('D'), src, uint64(len(dst)))
}

func (e *emuDevice) CopyDtoD(dst, src DevPtr, n int64) error {
	return e.call("copy on device", nil, byte('C'), dst, src, uint64(n))
}

func (e *emuDevice) Memset(p DevPtr, v byte, n int64) error {
	return e.call("memset", nil, byte('M'), p, v, uint64(n))
}

func (e *emuDevice) Memset32(p DevPtr, v uint32, n int64) error {
	return e.call("memset32", nil, byte('W'), p, v, uint64(n))
}

// Launch runs f on the emulator and returns when it is done. Arguments
// take the same Go types as Stream.Launch; by-value structs are not
// supported (no codec kernel takes one).
func (e *emuDevice) Launch(f *Function, grid, block Dim3, shmem int, args ...any) error {
	if len(f.Name) > 255 || len(args) > 64 {
		return errors.New("emulator launch: name or arguments too long")
	}
	req := []any{byte('L'), byte(len(f.Name)), f.Name, one(grid.X), one(grid.Y), one(grid.Z),
		one(block.X), one(block.Y), one(block.Z), uint32(shmem), byte(len(args))}
	for i, v := range args {
		var a uint64
		switch x := v.(type) {
		case DevPtr:
			a = uint64(x)
		case int32:
			a = uint64(uint32(x))
		case uint32:
			a = uint64(x)
		case int64:
			a = uint64(x)
		case uint64:
			a = x
		case float32:
			a = uint64(math.Float32bits(x))
		default:
			return fmt.Errorf("emulator launch %s: argument %d has unsupported type %T", f.Name, i, v)
		}
		req = append(req, a)
	}
	return e.call("launch "+f.Name, nil, req...)
}
