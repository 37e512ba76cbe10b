package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// smokeScenario is small and ragged everywhere: edge chunks in every dim,
// a partial last epoch, a partial last shard row.
func smokeScenario(t *testing.T) Scenario {
	t.Helper()
	s, err := CustomScenario([]int64{0, 3, 100, 70}, []int64{4, 2, 32, 32}, []int64{8, 2, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSmokeBench is the bench that `make test` runs: a few frames with
// every codec, prefilled or not, to a store that must verify, and a report
// whose fields must be filled in and consistent.
func TestSmokeBench(t *testing.T) {
	defer func(d time.Duration) { baselineMin = d }(baselineMin)
	baselineMin = 20 * time.Millisecond
	for _, codec := range zarr.Codecs {
		for _, prefill := range []bool{false, true} {
			name := codec.String()
			if prefill {
				name += "/prefill"
			}
			t.Run(name, func(t *testing.T) {
				sc := smokeScenario(t)
				dir := t.TempDir() + "/s.zarr"
				const frames = 13
				r, err := Run(context.Background(), Options{
					Scenario: sc, DType: zarr.Uint16, Codec: codec, Level: codec.DefaultLevel(),
					Fill: FillThirds, Frames: frames, WriteBytes: 9998, Prefill: prefill,
					Backend: "cpu", Depth: 2, OutDir: dir, Command: []string{"test"},
				})
				if err != nil {
					t.Fatal(err)
				}
				checkReport(t, r, frames)

				// The store verifies and holds exactly the data written.
				spec, _ := sc.Spec(zarr.Uint16, codec, codec.DefaultLevel(), frames)
				fb := spec.FrameBytes()
				want := make([]byte, frames*fb)
				if prefill {
					epoch := make([]byte, spec.Chunk[0]*fb)
					if err := FillFrames(FillThirds, &spec, 0, epoch); err != nil {
						t.Fatal(err)
					}
					for off := 0; off < len(want); off += len(epoch) {
						copy(want[off:], epoch)
					}
				} else if err := FillFrames(FillThirds, &spec, 0, want); err != nil {
					t.Fatal(err)
				}
				a, err := zarr.Open(os.DirFS(dir))
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				vr, err := a.Verify(zarr.VerifyOptions{Raw: bytes.NewReader(want)})
				if err != nil {
					t.Fatalf("verify: %v (%v)", err, vr.Problems)
				}
				if !vr.RawCompared || vr.Frames != frames {
					t.Fatalf("verify: compared %v, %d frames", vr.RawCompared, vr.Frames)
				}
				if vr.BytesStored > r.Result.OutputBytes {
					t.Fatalf("store holds %d shard bytes, report says %d written", vr.BytesStored, r.Result.OutputBytes)
				}
				// The ratio is over the stored shards, as a store's size
				// (and the peers' count) has it, without zarr.json.
				if want := float64(r.Result.InputBytes) / float64(vr.BytesStored); math.Abs(r.Result.Ratio-want) > 1e-12*want {
					t.Fatalf("ratio %v, want input / shard bytes %d/%d = %v", r.Result.Ratio, r.Result.InputBytes, vr.BytesStored, want)
				}
			})
		}
	}
}

func checkReport(t *testing.T, r *Report, frames int64) {
	t.Helper()
	res := &r.Result
	fb := r.Scenario.FrameBytes
	switch {
	case r.Schema != Schema || r.Tool != "zwrite":
		t.Errorf("schema %q tool %q", r.Schema, r.Tool)
	case frames > 0 && (res.Frames != frames || res.InputBytes != frames*fb || r.Scenario.Shape[0] != frames):
		t.Errorf("frames %d, input %d, shape %v; want %d frames of %d bytes", res.Frames, res.InputBytes, r.Scenario.Shape, frames, fb)
	case res.InputBytes%fb != 0:
		t.Errorf("input %d bytes is not whole %d-byte frames", res.InputBytes, fb)
	case res.OutputBytes <= 0 || res.Ratio <= 0 || res.WallS <= 0 || res.InputGBps <= 0 || res.OutputGBps <= 0:
		t.Errorf("empty result: %+v", *res)
	case res.InputGiBps >= res.InputGBps:
		t.Errorf("GiB/s %.4f should be below GB/s %.4f", res.InputGiBps, res.InputGBps)
	case r.Config.Backend != "cpu" || r.Config.Depth <= 0:
		t.Errorf("config %+v", r.Config)
	case r.Machine.Cores < 1 || r.Machine.GoVersion == "" || r.Machine.CPUModel == "":
		t.Errorf("machine %+v", r.Machine)
	case len(r.Machine.GPUs) == 0 && r.Machine.GPUNote == "":
		t.Errorf("no GPUs and no note saying why")
	}
	names := map[string]bool{}
	for _, s := range r.Stages {
		names[s.Name] = true
	}
	for _, n := range []string{"copy", "compress", "deliver", "stage wall"} {
		if !names[n] {
			t.Errorf("stage %q missing from %v", n, r.Stages)
		}
	}
	if inStream := !r.Config.Prefill && r.Config.Input == ""; names["fill"] != inStream {
		t.Errorf("fill stage shown %v with prefill %v, input %q: the fill is timed exactly when data is made in the stream", names["fill"], r.Config.Prefill, r.Config.Input)
	}
	// Per-core accounting: every working stage's cores and share follow
	// from its busy time, the run's wall and cores; waits carry none.
	cores := r.Machine.GOMAXPROCS
	if r.CoreUse.Cores != cores || r.CoreUse.BusyCores <= 0 || !near(r.CoreUse.BusyCores, res.CPUS/res.WallS) ||
		!near(r.CoreUse.BusyFraction, r.CoreUse.BusyCores/float64(cores)) {
		t.Errorf("core use %+v; want cpu %.3f s / wall %.3f s over %d cores", r.CoreUse, res.CPUS, res.WallS, cores)
	}
	var sum float64
	for _, s := range r.Stages {
		switch s.Kind {
		case KindWait:
			if s.Cores != 0 || s.BusyFraction != 0 {
				t.Errorf("wait %q has cores %v, share %v", s.Name, s.Cores, s.BusyFraction)
			}
		case KindCPU:
			if s.countsInCores() {
				sum += s.BusyFraction
			}
			if !near(s.Cores, s.BusyS/res.WallS) || !near(s.BusyFraction, s.Cores/float64(cores)) {
				t.Errorf("stage %+v: cores and share do not follow from busy %.3f s, wall %.3f s, %d cores", s, s.BusyS, res.WallS, cores)
			}
		default:
			t.Errorf("stage %q of kind %q on the cpu backend", s.Name, s.Kind)
		}
	}
	if !near(sum, r.CoreUse.StagesBusyFraction) {
		t.Errorf("stages' shares sum to %.4f, core use says %.4f", sum, r.CoreUse.StagesBusyFraction)
	}
	bl := &r.Baselines
	if bl.MemmoveGBps <= 0 || bl.CeilingGBps <= 0 || bl.CeilingRatio <= 0 || bl.OverCeiling <= 0 || bl.OverMemmove <= 0 {
		t.Errorf("baselines missing: %+v", *bl)
	}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil || !strings.Contains(tb.String(), "end-to-end / ceiling") {
		t.Errorf("table: %v\n%s", err, tb.String())
	}
}

// near is equality up to float rounding.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }

// TestAccounting: the per-core figures from known busy times.
func TestAccounting(t *testing.T) {
	s := pipeline.Stats{Copy: time.Second, Deliver: 500 * time.Millisecond, StageWait: 3 * time.Second}
	s.Stage = stage.Times{Tile: 2 * time.Second, Compress: 6 * time.Second, Wall: 7 * time.Second}
	const in = 8e9
	type want struct {
		busy, cores, share float64
		kind               string
		est                bool
	}
	tests := []struct {
		name string
		acc  accounting
		want map[string]want
		use  CoreUse
	}{
		{
			name: "cpu, 4 cores, copy by 3",
			acc:  accounting{wall: 2, cores: 4, fill: 4 * time.Second, copyParts: 3},
			want: map[string]want{
				"fill":       {4, 2, 0.5, KindCPU, false},
				"copy":       {3, 1.5, 0.375, KindCPU, true},
				"tile":       {2, 1, 0.25, KindCPU, false},
				"compress":   {6, 3, 0.75, KindCPU, false},
				"deliver":    {0.5, 0.25, 0.0625, KindCPU, false},
				"stage wall": {7, 0, 0, KindWait, false},
				"stage wait": {3, 0, 0, KindWait, false},
			},
			// cpu 5 s over 2 s: 2.5 of 4 cores; stages 0.5+0.375+0.25+0.75+0.0625.
			use: CoreUse{Cores: 4, BusyCores: 2.5, BusyFraction: 0.625, StagesBusyFraction: 1.9375},
		},
		{
			name: "gpu steps, 16 cores, serial copy, prefill",
			acc:  accounting{wall: 8, cores: 16, gpu: true, copyParts: 1},
			want: map[string]want{
				"copy":       {1, 0.125, 0.125 / 16, KindCPU, false},
				"tile":       {2, 0.25, 0.25, KindGPU, false},
				"compress":   {6, 0.75, 0.75, KindGPU, false},
				"deliver":    {0.5, 0.0625, 0.0625 / 16, KindCPU, false},
				"stage wall": {7, 0, 0, KindWait, false},
				"stage wait": {3, 0, 0, KindWait, false},
			},
			use: CoreUse{Cores: 16, BusyCores: 0.625, BusyFraction: 0.625 / 16, StagesBusyFraction: (0.125 + 0.0625) / 16},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			figs := tc.acc.figures(s, in)
			if len(figs) != len(tc.want) {
				t.Fatalf("%d stages %v, want %d", len(figs), figs, len(tc.want))
			}
			for _, f := range figs {
				w, ok := tc.want[f.Name]
				if !ok {
					t.Fatalf("unexpected stage %q", f.Name)
				}
				if !near(f.BusyS, w.busy) || !near(f.Cores, w.cores) || !near(f.BusyFraction, w.share) || f.Kind != w.kind || f.Estimated != w.est {
					t.Errorf("%s: busy %v cores %v share %v kind %s est %v; want %+v", f.Name, f.BusyS, f.Cores, f.BusyFraction, f.Kind, f.Estimated, w)
				}
				if !near(f.GBps, in/f.BusyS/1e9) {
					t.Errorf("%s: %v GB/s, want input over busy time", f.Name, f.GBps)
				}
			}
			u := tc.acc.coreUse(figs, tc.use.BusyCores*tc.acc.wall)
			if u.Cores != tc.use.Cores || !near(u.BusyCores, tc.use.BusyCores) || !near(u.BusyFraction, tc.use.BusyFraction) || !near(u.StagesBusyFraction, tc.use.StagesBusyFraction) {
				t.Errorf("core use %+v, want %+v", u, tc.use)
			}
		})
	}
}

func TestCopyParts(t *testing.T) {
	set := pipeline.Settings{CopyHelpers: 3, CopyThreshold: 8 << 20}
	tests := []struct {
		name string
		set  pipeline.Settings
		n    int64
		want int
	}{
		{"no helpers", pipeline.Settings{CopyThreshold: 8 << 20}, 64 << 20, 1},
		{"below threshold", set, 8<<20 - 1, 1},
		{"at threshold: two halves", set, 8 << 20, 2},
		{"three halves", set, 12 << 20, 3},
		{"all helpers", set, 64 << 20, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := copyParts(tc.set, tc.n); got != tc.want {
				t.Errorf("copyParts(%+v, %d) = %d, want %d", tc.set, tc.n, got, tc.want)
			}
		})
	}
}

func TestTimedBench(t *testing.T) {
	r, err := Run(context.Background(), Options{
		Scenario: smokeScenario(t), DType: zarr.Uint8, Codec: zarr.CodecZstd, Level: 1,
		Fill: FillZeros, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		// Depth 1 drains each batch inline, so little is left to flush
		// after the clock stops (the race detector slows compression).
		WriteBytes: 50000, Prefill: true, Backend: "cpu", Depth: 1, NoBaselines: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Result.Frames <= 0 || r.Result.InputBytes != r.Result.Frames*r.Scenario.FrameBytes {
		t.Fatalf("timed run: %d frames, %d bytes", r.Result.Frames, r.Result.InputBytes)
	}
	if r.Result.WallS < 0.3 {
		t.Fatalf("timed run lasted %.3f s; want at least the 0.3 s asked for", r.Result.WallS)
	}
}

func TestBenchErrors(t *testing.T) {
	sc := smokeScenario(t)
	base := Options{Scenario: sc, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1, Frames: 4, Backend: "cpu", NoBaselines: true}
	tests := []struct {
		name string
		mod  func(o *Options)
		want string
	}{
		{"bad backend", func(o *Options) { o.Backend = "tpu" }, "backend"},
		{"bad level", func(o *Options) { o.Level = 99 }, "level"},
		{"tiny writes", func(o *Options) { o.WriteBytes = 1 }, "element"},
		{"no dtype", func(o *Options) { o.DType = 0 }, "dtype"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("gpu without a GPU", func(t *testing.T) {
		o := base
		o.Backend = "gpu"
		_, err := Run(context.Background(), o)
		if err == nil {
			t.Skip("this machine has a usable GPU")
		}
		var ue *backend.UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("error %v (%T); want a backend.UnavailableError", err, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Run(ctx, base); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v; want context.Canceled", err)
		}
	})
}
