package bench

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

func TestProfScratch(t *testing.T) {
	if os.Getenv("SCEN") == "" {
		t.Skip()
	}
	s, _ := LookupScenario(os.Getenv("SCEN"))
	o := Options{Scenario: s, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1, Fill: FillThirds, Duration: 1e9, Warmup: 8e9, Prefill: true, Backend: "cpu", NoBaselines: true}
	var f *os.File
	o.Progress = func(done, total int64) {
		if f == nil && done > 0 {
			f, _ = os.Create("/tmp/cpu.prof")
			pprof.StartCPUProfile(f)
			time.AfterFunc(10*time.Second, func() {})
		}
	}
	o.Duration = 12e9
	r, err := Run(context.Background(), o)
	pprof.StopCPUProfile()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.3f GB/s cpu %.3f wall %.3f  %.3f CPU-s/GB", r.Result.InputGBps, r.Result.CPUS, r.Result.WallS, r.Result.CPUS/(float64(r.Result.InputBytes)/1e9))
}
