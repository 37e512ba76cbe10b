//go:build cgo && linux

package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// discoverNVML lists GPUs through NVML (go-nvml dlopens
// libnvidia-ml.so.1; a missing library is an error, not a crash).
func discoverNVML() (System, error) {
	if r := nvml.Init(); r != nvml.SUCCESS {
		return System{}, fmt.Errorf("NVML: %s", nvml.ErrorString(r))
	}
	defer nvml.Shutdown()
	sys := System{Source: "nvml"}
	if v, r := nvml.SystemGetDriverVersion(); r == nvml.SUCCESS {
		sys.DriverVersion = v
	}
	if v, r := nvml.SystemGetCudaDriverVersion(); r == nvml.SUCCESS {
		sys.CUDAVersion = cudaVersionString(v)
	}
	n, r := nvml.DeviceGetCount()
	if r != nvml.SUCCESS {
		return System{}, fmt.Errorf("NVML device count: %s", nvml.ErrorString(r))
	}
	for i := 0; i < n; i++ {
		dev, r := nvml.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			return System{}, fmt.Errorf("NVML device %d: %s", i, nvml.ErrorString(r))
		}
		g := GPUInfo{Index: i}
		g.Name, _ = dev.GetName()
		g.UUID, _ = dev.GetUUID()
		if m, r := dev.GetMemoryInfo(); r == nvml.SUCCESS {
			g.MemoryTotal, g.MemoryFree = int64(m.Total), int64(m.Free)
		}
		if pci, r := dev.GetPciInfo(); r == nvml.SUCCESS {
			b := make([]byte, 0, len(pci.BusId))
			for _, c := range pci.BusId {
				if c == 0 {
					break
				}
				b = append(b, byte(c))
			}
			g.PCIBusID = string(b)
		}
		if maj, minr, r := dev.GetCudaComputeCapability(); r == nvml.SUCCESS {
			g.ComputeCapability = fmt.Sprintf("%d.%d", maj, minr)
		}
		if v, r := dev.GetCurrPcieLinkGeneration(); r == nvml.SUCCESS {
			g.PCIeGen = v
		}
		if v, r := dev.GetCurrPcieLinkWidth(); r == nvml.SUCCESS {
			g.PCIeWidth = v
		}
		if v, r := dev.GetMaxPcieLinkGeneration(); r == nvml.SUCCESS {
			g.PCIeMaxGen = v
		}
		if v, r := dev.GetMaxPcieLinkWidth(); r == nvml.SUCCESS {
			g.PCIeMaxWidth = v
		}
		sys.GPUs = append(sys.GPUs, g)
	}
	return sys, nil
}
