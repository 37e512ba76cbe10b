//go:build amd64 && !purego

package cpu

// haveNT: SSE2's non-temporal stores are part of every amd64 CPU.
const haveNT = true

//go:noescape
func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int)

func storeFence()
