package bench

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/sysinfo"
)

// Machine is where a run happened; every number in a record is only
// meaningful with it.
type Machine struct {
	Hostname   string `json:"hostname"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`      // logical CPUs (runtime.NumCPU)
	GOMAXPROCS int    `json:"gomaxprocs"` // what the run could use
	MemBytes   int64  `json:"mem_bytes"`  // MemTotal
	GoVersion  string `json:"go_version"`
	Commit     string `json:"commit"`          // vcs.revision of the binary, "" if unknown
	Modified   bool   `json:"commit_modified"` // built from a dirty tree
	// GPUs as internal/gpu discovers them (NVML, else the CUDA driver
	// API), with the driver; empty with GPUNote saying why.
	GPUs      []gpu.GPUInfo `json:"gpus"`
	GPUDriver string        `json:"gpu_driver,omitempty"`
	GPUCUDA   string        `json:"gpu_cuda,omitempty"`
	GPUSource string        `json:"gpu_source,omitempty"`
	GPUNote   string        `json:"gpu_note,omitempty"`
}

// DescribeMachine gathers the machine fields. It never fails: what cannot
// be read stays empty.
func DescribeMachine() Machine {
	m := Machine{
		OS: runtime.GOOS, Arch: runtime.GOARCH,
		Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(),
		CPUModel:  cpuModel(),
		MemBytes:  sysinfo.MemTotal(),
	}
	m.Hostname, _ = os.Hostname()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Commit = s.Value
			case "vcs.modified":
				m.Modified = s.Value == "true"
			}
		}
	}
	m.GPUs = []gpu.GPUInfo{}
	sys, err := gpu.Discover()
	switch {
	case err != nil:
		m.GPUNote = err.Error()
		if !strings.HasPrefix(m.GPUNote, "no GPU") {
			m.GPUNote = "no GPU found: " + m.GPUNote
		}
	case len(sys.GPUs) == 0:
		m.GPUNote = "no GPU found"
	default:
		m.GPUs = sys.GPUs
		m.GPUDriver, m.GPUCUDA, m.GPUSource = sys.DriverVersion, sys.CUDAVersion, sys.Source
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo (Linux), else the
// architecture.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
