package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// GPUInfo describes one GPU for `zwrite info --gpu` and bench records.
type GPUInfo struct {
	Index             int    `json:"index"`
	Name              string `json:"name"`
	UUID              string `json:"uuid,omitempty"`
	PCIBusID          string `json:"pci_bus_id,omitempty"`
	MemoryTotal       int64  `json:"memory_total_bytes"`
	MemoryFree        int64  `json:"memory_free_bytes,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	SMs               int    `json:"sms,omitempty"`
	// PCIe link: current (may drop while the card idles) and maximum.
	PCIeGen      int `json:"pcie_gen,omitempty"`
	PCIeWidth    int `json:"pcie_width,omitempty"`
	PCIeMaxGen   int `json:"pcie_max_gen,omitempty"`
	PCIeMaxWidth int `json:"pcie_max_width,omitempty"`
}

// System is what Discover finds.
type System struct {
	DriverVersion string    `json:"driver_version,omitempty"`
	CUDAVersion   string    `json:"cuda_version,omitempty"` // highest CUDA the driver supports
	Source        string    `json:"source"`                 // "nvml" or "cuda" (driver API and sysfs)
	GPUs          []GPUInfo `json:"gpus"`
}

// Discover lists the GPUs. It uses NVML when the binary was built with cgo
// and the library loads, else the CUDA driver API plus sysfs for the PCIe
// link. Without a driver or GPU the error wraps ErrNoGPU and says why.
func Discover() (System, error) {
	sys, nvmlErr := discoverNVML()
	if nvmlErr == nil && len(sys.GPUs) > 0 {
		addCUDADetails(&sys)
		return sys, nil
	}
	sys, err := discoverCUDA()
	if err != nil {
		if nvmlErr != nil {
			return System{}, fmt.Errorf("%w (NVML: %v)", err, nvmlErr)
		}
		return System{}, err
	}
	return sys, nil
}

func cudaVersionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// addCUDADetails fills what NVML leaves out (SM count, CUDA version) when
// the driver API is there too.
func addCUDADetails(sys *System) {
	if v, err := DriverVersion(); err == nil {
		sys.CUDAVersion = cudaVersionString(v)
	}
	n, err := DeviceCount()
	if err != nil {
		return
	}
	for i := range sys.GPUs {
		if i >= n {
			break
		}
		var dev int32
		if drv.cuDeviceGet(&dev, int32(i)) != cuSuccess {
			continue
		}
		var v int32
		if drv.cuDeviceGetAttribute(&v, attrMultiprocessorCount, dev) == cuSuccess {
			sys.GPUs[i].SMs = int(v)
		}
	}
}

func discoverCUDA() (System, error) {
	n, err := DeviceCount()
	if err != nil {
		return System{}, err
	}
	if n == 0 {
		return System{}, fmt.Errorf("%w: the CUDA driver is installed but sees no GPU", ErrNoGPU)
	}
	sys := System{Source: "cuda", DriverVersion: kernelDriverVersion()}
	if v, err := DriverVersion(); err == nil {
		sys.CUDAVersion = cudaVersionString(v)
	}
	for i := 0; i < n; i++ {
		g := GPUInfo{Index: i}
		var dev int32
		if err := check("cuDeviceGet", drv.cuDeviceGet(&dev, int32(i))); err != nil {
			return System{}, err
		}
		var name [256]byte
		if err := check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
			return System{}, err
		}
		g.Name = cString(&name[0], len(name))
		var mem uint64
		if err := check("cuDeviceTotalMem", drv.cuDeviceTotalMem(&mem, dev)); err != nil {
			return System{}, err
		}
		g.MemoryTotal = int64(mem)
		var maj, minr, sms int32
		drv.cuDeviceGetAttribute(&maj, attrComputeCapabilityMajor, dev)
		drv.cuDeviceGetAttribute(&minr, attrComputeCapabilityMinor, dev)
		drv.cuDeviceGetAttribute(&sms, attrMultiprocessorCount, dev)
		g.ComputeCapability = fmt.Sprintf("%d.%d", maj, minr)
		g.SMs = int(sms)
		var bus [64]byte
		if drv.cuDeviceGetPCIBusId(&bus[0], int32(len(bus)), dev) == cuSuccess {
			g.PCIBusID = cString(&bus[0], len(bus))
			g.PCIeGen, g.PCIeWidth, g.PCIeMaxGen, g.PCIeMaxWidth = sysfsLink(g.PCIBusID)
		}
		sys.GPUs = append(sys.GPUs, g)
	}
	return sys, nil
}

// kernelDriverVersion reads the NVIDIA kernel module's version.
func kernelDriverVersion() string {
	if b, err := os.ReadFile("/sys/module/nvidia/version"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// sysfsLink reads the PCIe link of a device from sysfs; zeros when absent.
func sysfsLink(busID string) (gen, width, maxGen, maxWidth int) {
	dir := filepath.Join("/sys/bus/pci/devices", strings.ToLower(busID))
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return pcieGen(read("current_link_speed")), atoi(read("current_link_width")),
		pcieGen(read("max_link_speed")), atoi(read("max_link_width"))
}

// pcieGen maps a sysfs link speed ("32.0 GT/s PCIe") to its generation.
func pcieGen(speed string) int {
	f := strings.Fields(speed)
	if len(f) == 0 {
		return 0
	}
	gts, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	for _, g := range []struct {
		gts float64
		gen int
	}{{2.5, 1}, {5, 2}, {8, 3}, {16, 4}, {32, 5}, {64, 6}, {128, 7}} {
		if gts <= g.gts+0.01 {
			return g.gen
		}
	}
	return 0
}
