package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

func TestScenarios(t *testing.T) {
	want := map[string]struct{ shape, chunk, shard []int64 }{
		"256cube":    {[]int64{1000, 256, 256, 256, 3}, []int64{4, 32, 32, 32, 1}, []int64{64, 128, 128, 128, 3}},
		"orca2":      {[]int64{10000, 2, 2048, 2304}, []int64{32, 1, 64, 64}, []int64{640, 2, 512, 576}},
		"medfmt":     {[]int64{10, 1, 10240, 15360}, []int64{4, 1, 128, 256}, []int64{12, 1, 2560, 3840}},
		"smallepoch": {[]int64{65536, 16, 16}, []int64{32768, 1, 1}, []int64{32768, 16, 16}},
	}
	if got := len(Scenarios()); got != len(want) {
		t.Fatalf("%d scenarios, want %d", got, len(want))
	}
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			w, ok := want[s.Name]
			if !ok {
				t.Fatalf("unexpected scenario %q", s.Name)
			}
			if fmtShape(s.Shape) != fmtShape(w.shape) || fmtShape(s.Chunk) != fmtShape(w.chunk) || fmtShape(s.Shard) != fmtShape(w.shard) {
				t.Fatalf("geometry %v %v %v, want %v %v %v", s.Shape, s.Chunk, s.Shard, w.shape, w.chunk, w.shard)
			}
			got, err := LookupScenario(strings.ToUpper(s.Name))
			if err != nil || got.Name != s.Name {
				t.Fatalf("LookupScenario(%q) = %v, %v", strings.ToUpper(s.Name), got.Name, err)
			}
			for _, dt := range zarr.DTypes {
				for _, c := range zarr.Codecs {
					frames := s.DefaultFrames(dt)
					if frames%s.Chunk[0] != 0 || frames < 2*s.Chunk[0] {
						t.Fatalf("%v: default frames %d not >= 2 whole epochs of %d", dt, frames, s.Chunk[0])
					}
					for _, n := range []int64{0, 1, frames} {
						spec, err := s.Spec(dt, c, c.DefaultLevel(), n)
						if err != nil {
							t.Fatalf("Spec(%v, %v, %d frames): %v", dt, c, n, err)
						}
						if len(spec.DimNames) != spec.Rank() {
							t.Fatalf("dimension names %v for rank %d", spec.DimNames, spec.Rank())
						}
					}
				}
			}
		})
	}
	if _, err := LookupScenario("nope"); err == nil || !strings.Contains(err.Error(), "medfmt") {
		t.Fatalf("LookupScenario(nope) error %v should list the scenarios", err)
	}
}

func TestCustomScenario(t *testing.T) {
	s, err := CustomScenario([]int64{0, 64, 64}, []int64{4, 32, 32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmtShape(s.Shard) != "4,32,32" {
		t.Fatalf("shard %v, want the chunk", s.Shard)
	}
	if _, err := s.Spec(zarr.Uint16, zarr.CodecZstd, 1, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := CustomScenario(nil, []int64{1}, nil); err == nil {
		t.Fatal("no error without a shape")
	}
	bad, _ := CustomScenario([]int64{0, 64}, []int64{4, 32}, []int64{4, 33})
	if _, err := bad.Spec(zarr.Uint16, zarr.CodecZstd, 1, 8); err == nil {
		t.Fatal("no error for a shard that is not a multiple of the chunk")
	}
}

// tileRef cuts chunk pos of epoch 0 out of frames the slow way.
func tileRef(spec *zarr.Spec, frames []byte, pos int64) []byte {
	rank, es := spec.Rank(), int64(spec.DType.Size())
	grid := spec.ChunkGrid()
	origin := make([]int64, rank)
	p := pos
	for d := rank - 1; d >= 1; d-- {
		origin[d] = p % grid[d-1] * spec.Chunk[d]
		p /= grid[d-1]
	}
	out := make([]byte, spec.ChunkBytes())
	local := make([]int64, rank)
	for i := int64(0); i < spec.ChunkElems(); i++ {
		r := i
		for d := rank - 1; d >= 0; d-- {
			local[d] = r % spec.Chunk[d]
			r /= spec.Chunk[d]
		}
		idx, inside := int64(0), true
		for d := 0; d < rank; d++ {
			c := origin[d] + local[d]
			if d > 0 {
				if c >= spec.Shape[d] {
					inside = false
				}
				idx *= spec.Shape[d]
			}
			idx += c
		}
		if inside {
			copy(out[i*es:(i+1)*es], frames[idx*es:(idx+1)*es])
		}
	}
	return out
}

func TestFillChunk(t *testing.T) {
	specs := []zarr.Spec{
		{Shape: []int64{0, 10, 13}, Chunk: []int64{3, 4, 5}, DType: zarr.Uint16},
		{Shape: []int64{0, 2, 7, 9}, Chunk: []int64{2, 1, 4, 4}, DType: zarr.Float32},
		{Shape: []int64{0, 16}, Chunk: []int64{4, 16}, DType: zarr.Uint8},
		{Shape: []int64{0, 3, 5, 6, 2}, Chunk: []int64{2, 2, 2, 4, 1}, DType: zarr.Int64},
		// Rows gathered across two trailing one-element axes, and a
		// trailing axis too long to gather (one fill per element).
		{Shape: []int64{0, 5, 7, 3, 2}, Chunk: []int64{3, 2, 4, 1, 1}, DType: zarr.Uint16},
		{Shape: []int64{0, 6, 40}, Chunk: []int64{2, 4, 1}, DType: zarr.Uint8},
		{Shape: []int64{0, 9, 3}, Chunk: []int64{2, 1, 1}, DType: zarr.Float64},
	}
	for _, spec := range specs {
		spec.Shard = spec.Chunk
		spec.Codec = zarr.CodecNone
		for _, kind := range Fills {
			t.Run(kind.String()+"/"+fmtShape(spec.Shape)+"/"+spec.DType.String(), func(t *testing.T) {
				frames := make([]byte, spec.Chunk[0]*spec.FrameBytes())
				if err := FillFrames(kind, &spec, 0, frames); err != nil {
					t.Fatal(err)
				}
				f := newFiller(kind, &spec)
				got := make([]byte, spec.ChunkBytes())
				for pos := int64(0); pos < spec.ChunksPerEpoch(); pos++ {
					fillChunk(f, kind, &spec, 0, pos, got)
					if want := tileRef(&spec, frames, pos); !bytes.Equal(got, want) {
						t.Fatalf("chunk %d differs from tiling the frames", pos)
					}
				}
			})
		}
	}
}

func TestMemmove(t *testing.T) {
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, len(src))
	gbps, moved := memmoveGBps(src, dst, 3<<20)
	if !bytes.Equal(src, dst) || gbps <= 0 || moved < 3<<20 {
		t.Fatalf("memmove: %.3f GB/s, %d bytes, equal %v", gbps, moved, bytes.Equal(src, dst))
	}
}

func TestReportRendering(t *testing.T) {
	r := &Report{Schema: Schema, Tool: "zwrite", Time: time.Unix(0, 0).UTC(), Machine: DescribeMachine(),
		Scenario: ScenarioInfo{Name: "orca2", Shape: []int64{64, 2, 2048, 2304}, Chunk: []int64{32, 1, 64, 64},
			Shard: []int64{640, 2, 512, 576}, DType: "uint16", Codec: "zstd", Level: 1, Fill: "thirds"},
		Config: RunConfig{Backend: "cpu", Depth: 3, WriteBytes: 64 << 20, Prefill: true, PrefillBuf: 604 << 20, Sink: "discard"},
		Result: Result{Frames: 64, InputBytes: 1 << 30, OutputBytes: 1 << 29, WallS: 1, InputGBps: 1.07, Ratio: 2},
		Stages: []StageFigure{{Name: "compress", Kind: KindCPU, BusyS: 1.5, GBps: 0.7, Cores: 1.5, BusyFraction: 0.1875},
			{Name: "stage wait", Kind: KindWait, BusyS: 0.4}},
		CoreUse:   CoreUse{Cores: 8, BusyCores: 2, BusyFraction: 0.25, StagesBusyFraction: 0.1875},
		Baselines: Baselines{MemmoveGBps: 10, CeilingGBps: 1.2, OverCeiling: 0.89},
	}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"orca2", "GB/s", "GiB/s", "ratio 2.000", "compress", "end-to-end / ceiling  0.890", "memmove",
		"of 8 cores", "1.50   19%", "(elapsed, not work)", "cores busy 2.00 of 8 (25%", "account for 19%"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	if n := strings.Count(tb.String(), "\n"); n > 24 {
		t.Errorf("table is %d lines; want one screen", n)
	}
	var jb bytes.Buffer
	if err := r.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["schema"] != Schema {
		t.Fatalf("schema %v", back["schema"])
	}
	m, ok := back["machine"].(map[string]any)
	if !ok {
		t.Fatalf("record has no machine object: %v", back["machine"])
	}
	// Each key present with the right type and the value the machine has:
	// a missing key must fail, not compare as "not empty".
	model, ok := m["cpu_model"].(string)
	if want := cpuinfoModel(t); !ok || model != want || model != r.Machine.CPUModel {
		t.Errorf("cpu_model %q (%T), want %q from /proc/cpuinfo (Machine.CPUModel %q)", m["cpu_model"], m["cpu_model"], want, r.Machine.CPUModel)
	}
	if cores, ok := m["cores"].(float64); !ok || int(cores) != runtime.NumCPU() {
		t.Errorf("cores %v (%T), want %d", m["cores"], m["cores"], runtime.NumCPU())
	}
	if gv, ok := m["go_version"].(string); !ok || gv != runtime.Version() {
		t.Errorf("go_version %v, want %s", m["go_version"], runtime.Version())
	}
	if cu, ok := back["core_use"].(map[string]any); !ok || cu["cores"] != 8.0 || cu["busy_fraction"] != 0.25 {
		t.Errorf("core_use %v, want cores 8 and busy_fraction 0.25", back["core_use"])
	}
	if st, ok := back["stages"].([]any); !ok || len(st) != 2 || st[0].(map[string]any)["busy_fraction"] != 0.1875 || st[1].(map[string]any)["kind"] != KindWait {
		t.Errorf("stages %v, want the busy fraction and kind of each", back["stages"])
	}
	if _, ok := m["gpus"].([]any); !ok {
		t.Fatalf("gpus should be a list, even empty: %v", m["gpus"])
	}
}

// cpuinfoModel is the first "model name" value of /proc/cpuinfo, read
// here independently of machine.go (a regexp over the whole file), or
// GOARCH where there is no such line.
func cpuinfoModel(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	m := regexp.MustCompile(`(?m)^model name\s*:[ \t]*(.*?)[ \t]*$`).FindSubmatch(b)
	if m == nil {
		return runtime.GOARCH
	}
	return string(m[1])
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {64 << 20, "64 MiB"}, {1536 << 20, "1.50 GiB"}} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestPeerScenarioTable keeps scripts/peer/scenarios.py, the table the
// tensorstore peer writes from, equal to ours.
func TestPeerScenarioTable(t *testing.T) {
	src, err := os.ReadFile("../../scripts/peer/scenarios.py")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(src)), "")
	for _, s := range Scenarios() {
		want := fmt.Sprintf(`"%s":dict(shape=[%s],chunk=[%s],shard=[%s],`, s.Name, fmtShape(s.Shape), fmtShape(s.Chunk), fmtShape(s.Shard))
		if !strings.Contains(text, want) {
			t.Errorf("scenarios.py has no entry %s", want)
		}
	}
}
