//go:build !amd64 || purego

package cpu

// haveNT: without the amd64 kernel the scatter uses plain copies.
const haveNT = false

func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int) {
	panic("cpu: copyRunsNT without an assembly kernel")
}

func storeFence() {}
