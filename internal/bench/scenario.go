package bench

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Scenario is a named array geometry. Shapes are slowest first; dim 0 is
// the one frames are appended along.
type Scenario struct {
	Name     string
	About    string
	Shape    []int64 // Shape[0] is the scenario's own frame count
	Chunk    []int64
	Shard    []int64
	DimNames []string
}

// The reference scenarios of issue 5, uint16 unless the user picks a dtype.
var scenarios = []Scenario{
	{
		Name:  "256cube",
		About: "volumetric time series: 1000 × 256³ × 3 channels",
		Shape: []int64{1000, 256, 256, 256, 3}, Chunk: []int64{4, 32, 32, 32, 1},
		Shard: []int64{64, 128, 128, 128, 3}, DimNames: []string{"t", "z", "y", "x", "c"},
	},
	{
		Name:  "orca2",
		About: "two Orca cameras: 2 × 2048×2304 frames",
		Shape: []int64{10000, 2, 2048, 2304}, Chunk: []int64{32, 1, 64, 64},
		Shard: []int64{640, 2, 512, 576}, DimNames: []string{"t", "c", "y", "x"},
	},
	{
		Name:  "medfmt",
		About: "medium-format tiles: 10240×15360 planes of a z stack",
		Shape: []int64{10, 1, 10240, 15360}, Chunk: []int64{4, 1, 128, 256},
		Shard: []int64{12, 1, 2560, 3840}, DimNames: []string{"z", "c", "y", "x"},
	},
	{
		Name:  "smallepoch",
		About: "tiny 16×16 frames, 32768-frame epochs of 1×1 columns",
		Shape: []int64{65536, 16, 16}, Chunk: []int64{32768, 1, 1},
		Shard: []int64{32768, 16, 16}, DimNames: []string{"t", "y", "x"},
	},
}

// Scenarios returns the named scenarios, in a fixed order.
func Scenarios() []Scenario {
	out := make([]Scenario, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.clone()
	}
	return out
}

// ScenarioNames lists the names, for help texts and errors.
func ScenarioNames() []string {
	n := make([]string, len(scenarios))
	for i, s := range scenarios {
		n[i] = s.Name
	}
	sort.Strings(n)
	return n
}

// LookupScenario finds a scenario by name, case-insensitively.
func LookupScenario(name string) (Scenario, error) {
	for _, s := range scenarios {
		if strings.EqualFold(s.Name, strings.TrimSpace(name)) {
			return s.clone(), nil
		}
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (want one of %s, or give --shape, --chunk and --shard)", name, strings.Join(ScenarioNames(), ", "))
}

// CustomScenario builds a scenario from --shape/--chunk/--shard. A shard
// left out is one chunk.
func CustomScenario(shape, chunk, shard []int64) (Scenario, error) {
	if len(shape) == 0 || len(chunk) == 0 {
		return Scenario{}, fmt.Errorf("a custom scenario needs both --shape and --chunk")
	}
	if len(shard) == 0 {
		shard = chunk
	}
	s := Scenario{Name: "custom", About: "custom geometry",
		Shape: append([]int64(nil), shape...), Chunk: append([]int64(nil), chunk...),
		Shard: append([]int64(nil), shard...)}
	return s, nil
}

func (s Scenario) clone() Scenario {
	s.Shape = append([]int64(nil), s.Shape...)
	s.Chunk = append([]int64(nil), s.Chunk...)
	s.Shard = append([]int64(nil), s.Shard...)
	s.DimNames = append([]string(nil), s.DimNames...)
	return s
}

// Spec is the array the scenario writes with frames frames along dim 0
// (frames == 0: growing, for timed runs).
func (s Scenario) Spec(dt zarr.DType, codec zarr.Codec, level int, frames int64) (zarr.Spec, error) {
	if len(s.Shape) == 0 || len(s.Chunk) != len(s.Shape) || len(s.Shard) != len(s.Shape) {
		return zarr.Spec{}, fmt.Errorf("scenario %q: shape %v, chunk %v and shard %v must have the same, non-zero number of dimensions", s.Name, s.Shape, s.Chunk, s.Shard)
	}
	spec := zarr.Spec{
		Shape: append([]int64(nil), s.Shape...),
		DType: dt, Codec: codec, Level: level,
		Chunk: append([]int64(nil), s.Chunk...),
		Shard: append([]int64(nil), s.Shard...),
	}
	if len(s.DimNames) == len(s.Shape) {
		spec.DimNames = append([]string(nil), s.DimNames...)
	}
	spec.Shape[0] = frames
	if frames > 0 && frames < spec.Chunk[0] {
		// Fewer frames than one epoch: a fixed shape smaller than the
		// chunk is invalid, so the array grows instead and zarr.json
		// records the frames written.
		spec.Shape[0] = 0
	}
	if err := spec.Validate(); err != nil {
		return zarr.Spec{}, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return spec, nil
}

// bytesPerCoreSecond is the CPU zstd-1 end-to-end rate per core that the
// default frame count assumes. On the 2-core AMD EPYC dev VM, medfmt and
// orca2 with the thirds fill ran at 0.5 to 1.1 GB/s per core depending on
// the other load; defaults thus aim at a ~10 s run wherever the bench runs.
const bytesPerCoreSecond = 800e6

// DefaultFrames is the frame count a run uses when the user gives neither
// --frames nor --duration: about ten seconds of CPU zstd-1 work on this
// machine's cores, in whole epochs, at least two (so the pipeline's overlap
// shows). The scenario's own dim-0 size is a geometry, not a run length,
// so it does not cap this (medfmt's 10 planes last a few seconds).
func (s Scenario) DefaultFrames(dt zarr.DType) int64 {
	frameBytes := int64(dt.Size())
	for _, x := range s.Shape[1:] {
		frameBytes *= x
	}
	budget := int64(10 * bytesPerCoreSecond * float64(runtime.NumCPU()))
	epoch := s.Chunk[0]
	return max(budget/(frameBytes*epoch), 2) * epoch
}
