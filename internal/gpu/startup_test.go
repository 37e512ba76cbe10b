package gpu

import (
	"os"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestStageStartup: a GPU stage reports its start-up split (driver init,
// each module's image and load time, allocation, pinning), the modules
// come from cubins where the card has one (no JIT), and the codec note
// names the parse its level runs as.
func TestStageStartup(t *testing.T) {
	needGPU(t)
	spec := zarr.Spec{Shape: []int64{0, 256, 256}, DType: zarr.Uint16, Chunk: []int64{4, 64, 64}, Shard: []int64{8, 128, 128}, Codec: zarr.CodecZstd, Level: 5}
	st, err := NewStage(stage.Config{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl, err := st.NewSlot(8)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Free()
	s := st.Startup()
	t.Logf("driver init %v, modules %v, alloc %v, pin %v", s.DriverInit, s.ModuleLoad, s.Alloc, s.Prefault)
	for _, m := range s.Modules {
		t.Logf("  %s: %s in %v %s", m.Module, m.Image, m.Load, m.Fallback)
	}
	if s.DriverInit <= 0 || s.ModuleLoad <= 0 || s.Alloc <= 0 || s.Prefault <= 0 || len(s.Modules) != 3 {
		t.Fatalf("start-up report %+v: want every part measured and 3 modules (tile, aggregate, zstd)", s)
	}
	major, minor := st.Device().ComputeCapability()
	set := imageSet{fsys: ptxFS, dir: "ptx"}
	for _, m := range s.Modules {
		if os.Getenv(PTXDirEnv) != "" {
			break // the images are not the embedded ones
		}
		if arch := pickCubin(set.cubinArchs(m.Module), major, minor); arch != "" && !strings.HasPrefix(m.Image, arch+" cubin") {
			t.Errorf("%s loaded %q (%s) though the %s cubin fits the card", m.Module, m.Image, m.Fallback, arch)
		}
	}
	if want := "zstd level 5 runs as GPU parse 'lazy' (levels >= 3)"; st.CodecNote() != want {
		t.Errorf("codec note %q, want %q", st.CodecNote(), want)
	}
}
