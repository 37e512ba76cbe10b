package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Schema names the version of the JSON record. Bump the number when a
// field changes meaning or goes away; adding fields keeps it.
const Schema = "zwrite-bench/1"

// Report is one bench run: what ran, where, and what it measured. It is
// both the JSON record and the source of the table on stderr.
type Report struct {
	Schema  string    `json:"schema"`
	Tool    string    `json:"tool"` // "zwrite" (the peer script writes "tensorstore")
	Time    time.Time `json:"time"`
	Command []string  `json:"command,omitempty"`
	Version string    `json:"version,omitempty"` // zwrite version (git describe, or module version)
	Machine Machine   `json:"machine"`

	Scenario ScenarioInfo `json:"scenario"`
	Config   RunConfig    `json:"config"`
	Result   Result       `json:"result"`
	// Stages are the pipeline's per-stage figures, in pipeline order.
	Stages []StageFigure `json:"stages"`
	// CoreUse is how much of the machine's cores the run kept busy.
	CoreUse   CoreUse   `json:"core_use"`
	Baselines Baselines `json:"baselines"`
}

// ScenarioInfo is the array written.
type ScenarioInfo struct {
	Name       string   `json:"name"`
	Shape      []int64  `json:"shape"` // shape[0] = frames written
	Chunk      []int64  `json:"chunk"`
	Shard      []int64  `json:"shard"`
	DType      string   `json:"dtype"`
	Codec      string   `json:"codec"`
	Shuffle    string   `json:"shuffle,omitempty"` // blosc codecs: byte, bit or none
	Level      int      `json:"level"`
	Fill       string   `json:"fill"`
	FrameBytes int64    `json:"frame_bytes"`
	DimNames   []string `json:"dimension_names,omitempty"`
}

// RunConfig is how it was written.
type RunConfig struct {
	Backend    string  `json:"backend"` // the stage that ran: cpu or gpu
	Depth      int     `json:"depth"`   // 0: the pipeline's default
	WriteBytes int64   `json:"write_bytes"`
	Prefill    bool    `json:"prefill"`
	PrefillBuf int64   `json:"prefill_bytes,omitempty"` // the buffer cycled over
	Sink       string  `json:"sink"`                    // "discard" or the store path
	DurationS  float64 `json:"duration_s,omitempty"`
	WarmupS    float64 `json:"warmup_s,omitempty"`
	// Input is the raw file an --input run fed to the writer (as zwrite
	// append does); InputNote says how it was read (InputNote).
	Input     string `json:"input,omitempty"`
	InputNote string `json:"input_note,omitempty"`
}

// Result is the end-to-end outcome. Rates are over Wall: from the first
// counted write to the return of Close (flush included), init excluded.
type Result struct {
	Frames      int64   `json:"frames"`
	InputBytes  int64   `json:"input_bytes"`
	OutputBytes int64   `json:"output_bytes"` // shard bytes delivered, index included
	WallS       float64 `json:"wall_s"`
	InitS       float64 `json:"init_s"`  // stage open + pipeline allocation
	FlushS      float64 `json:"flush_s"` // Close: last batch, delivery, metadata
	// FillS is the producer's time making data between writes (zero with
	// --prefill); it is inside Wall.
	FillS float64 `json:"fill_s"`
	// CPUS is the process's CPU time (user + system) over Wall.
	CPUS       float64 `json:"cpu_s"`
	InputGBps  float64 `json:"input_gbps"`  // 1e9 bytes/s
	InputGiBps float64 `json:"input_gibps"` // 2^30 bytes/s
	OutputGBps float64 `json:"output_gbps"`
	Ratio      float64 `json:"ratio"` // input / the shard bytes of the output (zarr.json left out)
	// ProducerStallS is the time Write spent blocked: waiting for a slot
	// (join) or for the sink to drain (backpressure).
	ProducerStallS float64 `json:"producer_stall_s"`
	StallJoinS     float64 `json:"producer_stall_join_s"`
	StallBackS     float64 `json:"producer_stall_backpressure_s"`
}

// StageFigure is one pipeline stage's busy time. Busy sums over parallel
// workers, so on a CPU backend it can exceed Wall; GBps is the run's input
// bytes over busy time: the rate of one worker doing only that stage.
type StageFigure struct {
	Name  string  `json:"name"`
	BusyS float64 `json:"busy_s"`
	GBps  float64 `json:"gbps"`
	// Kind is where the time was spent: KindCPU (host cores), KindGPU
	// (device time, from the GPU's own events) or KindWait (elapsed time
	// of a wait, not work: stage wall, stage wait).
	Kind string `json:"kind"`
	// Cores is BusyS / wall: how many cores (GPUs for KindGPU) the stage
	// kept busy on average. BusyFraction is Cores over the run's cores
	// (GOMAXPROCS; 1 for a GPU stage): the share of the machine it used.
	// Both are 0 for KindWait.
	Cores        float64 `json:"cores"`
	BusyFraction float64 `json:"busy_fraction"`
	// Estimated marks a BusyS derived rather than measured: the copy into
	// staging is timed as the producer's wall, and counts once per
	// goroutine that shares it (the producer and its copy helpers).
	Estimated bool `json:"estimated,omitempty"`
}

// Kinds of StageFigure.
const (
	KindCPU  = "cpu"
	KindGPU  = "gpu"
	KindWait = "wait"
)

// CoreUse is the run's per-core total. BusyCores is the process's CPU time
// (user + system, measured) over wall: cores busy on average, whatever
// they did; BusyFraction is that over Cores. StagesBusyFraction sums the
// host stages' BusyFraction; the gap to BusyFraction is work no stage
// timer covers (garbage collection, scheduling, the sink's system time).
type CoreUse struct {
	Cores              int     `json:"cores"` // GOMAXPROCS
	BusyCores          float64 `json:"busy_cores"`
	BusyFraction       float64 `json:"busy_fraction"`
	StagesBusyFraction float64 `json:"stages_busy_fraction"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write bench record: %w", err)
	}
	return nil
}

// WriteTable writes the one-screen summary the CLI shows on stderr.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	s, c, res, bl := &r.Scenario, &r.Config, &r.Result, &r.Baselines
	data := "fill " + s.Fill
	if c.Input != "" {
		data = "input file"
	}
	fmt.Fprintf(&b, "zwrite bench  %s  %s %s level %d  %s  backend %s  depth %s\n",
		s.Name, s.DType, codecName(s.Codec, s.Shuffle), s.Level, data, c.Backend, depthString(c.Depth))
	fmt.Fprintf(&b, "  shape %s  chunk %s  shard %s\n", fmtShape(s.Shape), fmtShape(s.Chunk), fmtShape(s.Shard))
	if c.Input != "" {
		fmt.Fprintf(&b, "  input %s fed to the writer as zwrite append feeds it, sink %s\n  %s\n", c.Input, c.Sink, c.InputNote)
	} else {
		pre := "off (data made before each write)"
		if c.Prefill {
			pre = fmt.Sprintf("on (%s buffer cycled)", humanBytes(c.PrefillBuf))
		}
		fmt.Fprintf(&b, "  writes of %s, prefill %s, sink %s\n", humanBytes(c.WriteBytes), pre, c.Sink)
	}
	m := &r.Machine
	gpu := m.GPUNote
	if len(gpu) > 60 {
		gpu = gpu[:57] + "..." // the JSON record has it whole
	}
	if len(m.GPUs) > 0 {
		gpu = fmt.Sprintf("%d× %s", len(m.GPUs), m.GPUs[0].Name)
	}
	fmt.Fprintf(&b, "  machine %s, %d cores, %s RAM, %s, %s\n\n", m.CPUModel, m.Cores, humanBytes(m.MemBytes), m.GoVersion, gpu)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  input\t%s\t%d frames\t%.3f GB/s\t(%.3f GiB/s)\n", humanBytes(res.InputBytes), res.Frames, res.InputGBps, res.InputGiBps)
	fmt.Fprintf(tw, "  output\t%s\tratio %.3f\t%.3f GB/s\t\n", humanBytes(res.OutputBytes), res.Ratio, res.OutputGBps)
	fmt.Fprintf(tw, "  wall\t%.3f s\tinit %.3f s\tflush %.3f s\tfill %.3f s\tcpu %.3f s\n", res.WallS, res.InitS, res.FlushS, res.FillS, res.CPUS)
	fmt.Fprintf(tw, "  producer stall\t%.3f s\tjoin %.3f s\tbackpressure %.3f s\t\n", res.ProducerStallS, res.StallJoinS, res.StallBackS)
	tw.Flush()
	cu := &r.CoreUse
	fmt.Fprintf(&b, "\n  stage        busy s  GB/s per busy s    cores  of %d cores\n", cu.Cores)
	for _, st := range r.Stages {
		switch st.Kind {
		case KindWait:
			fmt.Fprintf(&b, "  %-10s %8.3f  %10.3f         (elapsed, not work)\n", st.Name, st.BusyS, st.GBps)
		case KindGPU:
			fmt.Fprintf(&b, "  %-10s %8.3f  %10.3f    %5.2f  gpu %3.0f%% busy\n", st.Name, st.BusyS, st.GBps, st.Cores, 100*st.BusyFraction)
		default:
			est := ""
			if st.Estimated {
				est = "  (producer wall x copiers)"
			}
			fmt.Fprintf(&b, "  %-10s %8.3f  %10.3f    %5.2f  %3.0f%%%s\n", st.Name, st.BusyS, st.GBps, st.Cores, 100*st.BusyFraction, est)
		}
	}
	fmt.Fprintf(&b, "  cores busy %.2f of %d (%.0f%%, process cpu time / wall); the stages above account for %.0f%%\n",
		cu.BusyCores, cu.Cores, 100*cu.BusyFraction, 100*cu.StagesBusyFraction)
	if cu.StagesBusyFraction > cu.BusyFraction+0.1 {
		// Stage timers are wall clocks: a worker another process
		// preempts still counts as busy, its CPU time does not.
		b.WriteString("  (stages above cpu time: other processes held these cores, the machine is shared)\n")
	}
	b.WriteString("\n  same-run baselines\n")
	if bl.MemmoveGBps == 0 && bl.CeilingGBps == 0 {
		b.WriteString("  not measured (--baselines=false)\n")
	} else {
		fmt.Fprintf(&b, "  memmove, all cores      %8.3f GB/s   end-to-end / memmove  %.3f\n", bl.MemmoveGBps, bl.OverMemmove)
	}
	if bl.CeilingGBps > 0 {
		fmt.Fprintf(&b, "  %-4s codec, all cores  %8.3f GB/s   end-to-end / ceiling  %.3f   (before %.3f, after %.3f; sample ratio %.3f, %d chunks)\n",
			s.Codec, bl.CeilingGBps, bl.OverCeiling, bl.CeilingBeforeGBps, bl.CeilingAfterGBps, bl.CeilingRatio, bl.CeilingChunks)
		if bl.OverCeilingCPU > 0 {
			fmt.Fprintf(&b, "  per CPU second: end-to-end / ceiling  %.3f   (steadier on a shared machine)\n", bl.OverCeilingCPU)
		}
	}
	for _, io := range []struct {
		name string
		c    *IOCeiling
		over float64
		rate string
	}{{"read", bl.Read, bl.OverRead, "input"}, {"write", bl.Write, bl.OverWrite, "output"}} {
		if io.c == nil {
			continue
		}
		var trials []string
		for _, t := range io.c.Trials {
			trials = append(trials, fmt.Sprintf("%d: %.2f", t.Threads, t.GBps))
		}
		what := humanBytes(io.c.Bytes)
		if io.c.Files > 0 {
			what = fmt.Sprintf("%d shard files, %s", io.c.Files, what)
		}
		if io.c.BestThreads == 0 {
			fmt.Fprintf(&b, "  %-5s ceiling: %s\n", io.name, io.c.Note)
			continue
		}
		if io.c.PartSize > 0 {
			// Object storage: one trial, with the sink's concurrency.
			fmt.Fprintf(&b, "  %-5s ceiling (%d shard objects, %s) %.3f GB/s by the S3 client alone, %d lanes, %d parts of %s in flight   %s rate / ceiling  %.3f\n",
				io.name, io.c.Files, humanBytes(io.c.Bytes), io.c.BestGBps, io.c.BestThreads, io.c.Parts, humanBytes(io.c.PartSize), io.rate, io.over)
			continue
		}
		fmt.Fprintf(&b, "  %-5s ceiling (%s) best %.3f GB/s with %d threads   %s rate / ceiling  %.3f\n        threads: GB/s  %s\n",
			io.name, what, io.c.BestGBps, io.c.BestThreads, io.rate, io.over, strings.Join(trials, ", "))
	}
	if c := bl.Copy; c != nil {
		fmt.Fprintf(&b, "  pinned copy (%s)  H2D %.3f GB/s  D2H %.3f GB/s  both %.3f GB/s   end-to-end / H2D  %.3f\n",
			c.Device, c.H2DGBs, c.D2HGBs, c.BothGBs, bl.OverH2D)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// codecName is "lz4/bit" for a blosc codec, the codec alone otherwise.
func codecName(codec, shuffle string) string {
	if shuffle == "" {
		return codec
	}
	return codec + "/" + shuffle
}

func depthString(d int) string {
	if d == 0 {
		return "default"
	}
	return fmt.Sprint(d)
}

// humanBytes writes n in binary units: "64 MiB", "1.17 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTP"[exp])
	}
	return fmt.Sprintf("%.2f %ciB", v, "KMGTP"[exp])
}
