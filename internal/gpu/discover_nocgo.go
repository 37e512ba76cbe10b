//go:build !(cgo && linux)

package gpu

import "errors"

// discoverNVML needs go-nvml, which needs cgo; Discover falls back to the
// CUDA driver API and sysfs.
func discoverNVML() (System, error) {
	return System{}, errors.New("NVML is not available in a binary built without cgo")
}
