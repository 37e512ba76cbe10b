//go:build !(linux || darwin || freebsd || netbsd)

package gpu

import (
	"errors"
	"runtime"
)

func dlopen(string) (uintptr, error) {
	return 0, errors.New("the GPU backend supports Linux only, not " + runtime.GOOS)
}

func dlsym(uintptr, string) (uintptr, error) { return 0, errors.New("no dynamic loader") }
