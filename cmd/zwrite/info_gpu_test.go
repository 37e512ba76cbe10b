package main

import (
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/gpu"
)

// TestInfoGPU: info --gpu exits 0 either way; with a GPU it lists it, and
// without one it says so plainly. A STORE beside --gpu is a usage error.
func TestInfoGPU(t *testing.T) {
	out := mustZw(t, nil, "info", "--gpu")
	if gpu.Available() == nil {
		if !strings.Contains(out, "gpu 0") || !strings.Contains(out, "driver") {
			t.Fatalf("info --gpu on a GPU machine printed:\n%s", out)
		}
	} else if !strings.HasPrefix(out, "no GPU: ") {
		t.Fatalf("info --gpu without a GPU printed:\n%s", out)
	}
	if code, _, stderr := run(t, nil, "info", "--gpu", "s.zarr"); code != 2 || !strings.Contains(stderr, "--gpu takes no STORE") {
		t.Fatalf("info --gpu s.zarr: exit %d, %s", code, stderr)
	}
}
