package gpu

import (
	"errors"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// TestAvailable checks both outcomes: on a machine without a GPU the error
// wraps ErrNoGPU and says why; with one, a device opens.
func TestAvailable(t *testing.T) {
	err := Available()
	if err != nil {
		if !errors.Is(err, ErrNoGPU) {
			t.Fatalf("Available() = %v; want an error wrapping ErrNoGPU", err)
		}
		if _, oerr := OpenDevice(0); !errors.Is(oerr, ErrNoGPU) {
			t.Fatalf("OpenDevice(0) without a GPU = %v; want ErrNoGPU", oerr)
		}
		t.Logf("no GPU here: %v", err)
		return
	}
	d, err := OpenDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	free, total, err := d.MemInfo()
	if err != nil || free <= 0 || total < free {
		t.Fatalf("MemInfo() = %d, %d, %v", free, total, err)
	}
	t.Logf("%s: %d SMs, %d of %d MiB free", d.Name(), d.SMs(), free>>20, total>>20)
}

// TestErrorName checks that a CUDA failure names the call and the error.
func TestErrorName(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("needs a GPU: %v", err)
	}
	err := check("cuTest", 2)
	want := "cuTest: CUDA_ERROR_OUT_OF_MEMORY (2)"
	if err == nil || err.Error() != want {
		t.Fatalf("check(2) = %v; want %s", err, want)
	}
}

func TestSupports(t *testing.T) {
	err := Supports(zarr.CodecNone)
	if Available() != nil {
		if !errors.Is(err, ErrNoGPU) {
			t.Fatalf("Supports(none) without a GPU = %v; want ErrNoGPU", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Supports(none) with a GPU = %v", err)
	}
	for _, c := range zarr.Codecs {
		if err := Supports(c); err != nil && !errors.Is(err, ErrNoKernels) {
			t.Errorf("Supports(%v) = %v; want nil or ErrNoKernels", c, err)
		}
	}
}
