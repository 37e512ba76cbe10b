package backend

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/stage"
)

// UnavailableError reports a backend that was asked for but cannot run
// here (no GPU backend in this build, no GPU, no driver). Reason says why,
// never what to type instead: the CLI treats it as a usage error and adds
// the flag advice.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return e.Reason }

// Open builds the compress stage for name (auto, cpu or gpu).
func Open(name string, cfg stage.Config) (stage.Stage, error) {
	k, err := Parse(name)
	if err != nil {
		return nil, err
	}
	switch k {
	case GPU:
		if err := gpu.Supports(cfg.Spec.Codec); err != nil {
			return nil, &UnavailableError{fmt.Sprintf("the GPU backend cannot run here: %v", err)}
		}
		return gpu.NewStage(cfg)
	case Auto:
		// The GPU when there is one and the codec has GPU kernels. If the
		// GPU stage still fails to start (a driver too old for our PTX,
		// say), auto means "whatever works": fall back to the CPU.
		if gpu.Supports(cfg.Spec.Codec) == nil {
			if st, err := gpu.NewStage(cfg); err == nil {
				return st, nil
			}
		}
		return cpu.New(cfg)
	case CPU:
		return cpu.New(cfg)
	}
	return nil, fmt.Errorf("unknown backend %v", k)
}
