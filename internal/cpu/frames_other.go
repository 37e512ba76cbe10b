//go:build !amd64 || purego

package cpu

// haveNT: without the amd64 kernel the scatter uses plain copies.
const haveNT = false

// useAVX2: no kernel to choose for.
var useAVX2 = false

func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int) {
	panic("cpu: copyRunsNT without an assembly kernel")
}

func copyShuffle2NT(dst *byte, dstStride int, gap int, src *byte, run int, count int) {
	panic("cpu: copyShuffle2NT without an assembly kernel")
}

func storeFence() {}
