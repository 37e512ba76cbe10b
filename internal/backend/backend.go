package backend

import (
	"fmt"
	"strings"
)

// Kind is a compress backend choice. The zero value is Auto.
type Kind int

const (
	// Auto takes the GPU when this build has a GPU backend and a GPU is
	// present, and the CPU otherwise.
	Auto Kind = iota
	CPU
	GPU
)

// Kinds lists every value, for tests and help texts.
var Kinds = []Kind{Auto, CPU, GPU}

func (k Kind) String() string {
	switch k {
	case Auto:
		return "auto"
	case CPU:
		return "cpu"
	case GPU:
		return "gpu"
	}
	return fmt.Sprintf("backend(%d)", int(k))
}

// Parse accepts auto, cpu and gpu, case-insensitively.
func Parse(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return Auto, nil
	case "cpu":
		return CPU, nil
	case "gpu", "cuda":
		return GPU, nil
	}
	return 0, fmt.Errorf("unknown backend %q (want auto, cpu or gpu)", s)
}
