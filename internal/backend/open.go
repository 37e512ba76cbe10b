package backend

import (
	"fmt"

	"github.com/zwrite/zwrite/internal/stage"
)

// UnavailableError reports a backend that was asked for but cannot run
// here (no GPU backend in this build, no GPU, no driver). The CLI treats it
// as a usage error: the user asked for something this machine cannot do.
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
		return nil, &UnavailableError{"no GPU backend in this build yet; use --backend cpu (or auto)"}
	case CPU, Auto:
		// Auto means cpu until this build has a GPU backend.
		return stage.NewCPU(cfg)
	}
	return nil, fmt.Errorf("unknown backend %v", k)
}
