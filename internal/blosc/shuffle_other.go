//go:build !amd64 || purego

package blosc

// Without the SSE2 kernels the pure-Go loops in shuffle.go do all the work.

var noAsm = true

// noAVX2 exists for the tests, which set it on every architecture.
var noAVX2 = true

func shuffle2Asm(out, in []byte, n int) int       { return 0 }
func unshuffle2Asm(out, in []byte, n int) int     { return 0 }
func shuffle4Asm(out, in []byte, n int) int       { return 0 }
func unshuffle4Asm(out, in []byte, n int) int     { return 0 }
func shuffle8Asm(out, in []byte, n, ts int) int   { return 0 }
func unshuffle8Asm(out, in []byte, n, ts int) int { return 0 }
