//go:build amd64 && !purego

package cpu

import "golang.org/x/sys/cpu"

// useAVX2: copyShuffle2NT moves 32 elements per step where the CPU (and
// the OS) has AVX2, 16 with SSE2 elsewhere; tests turn it off to check
// the SSE2 loop. A byte for the assembly to compare.
var useAVX2 = cpu.X86.HasAVX2

// haveNT: SSE2's non-temporal stores are part of every amd64 CPU.
const haveNT = true

//go:noescape
func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int)

//go:noescape
func copyShuffle2NT(dst *byte, dstStride int, gap int, src *byte, run int, count int)

func storeFence()
