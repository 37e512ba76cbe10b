//go:build amd64 && !purego

package blosc

import "golang.org/x/sys/cpu"

// SSE2 kernels for typesizes 2 and 4 (shuffle_amd64.s). SSE2 is part of
// every amd64 CPU (GOAMD64=v1), so no feature check is needed. Each kernel
// does 16 elements per iteration with PAND/PSRLW/PACKUSWB (shuffle) or
// PUNPCKLBW/PUNPCKHBW (unshuffle), the way c-blosc's shuffle-sse2.c does;
// the pure-Go loops in shuffle.go finish the rest and are what other
// architectures and the purego build tag use.

// noAsm makes the *Asm helpers do nothing, so tests can check the pure-Go
// loops on amd64 too.
var noAsm bool

// noAVX2 keeps typesize 2 on the SSE2 kernel: set where the CPU lacks AVX2
// (or the OS does not save its registers; cpu.X86.HasAVX2 checks both),
// and by tests to check the SSE2 kernel on AVX2 machines. With the LZ4
// streams at lz4.c's speed the shuffle was a quarter of a blosc-lz4
// chunk's time (BenchmarkLZ4Parts); AVX2 moves 32 elements per iteration.
var noAVX2 = !cpu.X86.HasAVX2

//go:noescape
func shuffle2AVX2(dst0, dst1, src *byte, chunks int)

//go:noescape
func shuffle2SSE2(dst0, dst1, src *byte, chunks int)

//go:noescape
func unshuffle2SSE2(dst, src0, src1 *byte, chunks int)

//go:noescape
func shuffle4SSE2(dst0, dst1, dst2, dst3, src *byte, chunks int)

//go:noescape
func unshuffle4SSE2(dst, src0, src1, src2, src3 *byte, chunks int)

// shuffle2Asm shuffles the first n&^15 elements of typesize 2 and returns
// that count. The pointers stay inside out and in: element m-1 of plane 1
// is out[n+m-1], and 2*m <= len(in).
func shuffle2Asm(out, in []byte, n int) int {
	m := n &^ 15
	if m == 0 || noAsm {
		return 0
	}
	_, _ = out[n+m-1], in[2*m-1]
	done := 0
	if k := n &^ 31; k > 0 && !noAVX2 {
		shuffle2AVX2(&out[0], &out[n], &in[0], k/32)
		done = k
	}
	if done < m {
		shuffle2SSE2(&out[done], &out[n+done], &in[2*done], (m-done)/16)
	}
	return m
}

func unshuffle2Asm(out, in []byte, n int) int {
	m := n &^ 15
	if m == 0 || noAsm {
		return 0
	}
	_, _ = out[2*m-1], in[n+m-1]
	unshuffle2SSE2(&out[0], &in[0], &in[n], m/16)
	return m
}

func shuffle4Asm(out, in []byte, n int) int {
	m := n &^ 15
	if m == 0 || noAsm {
		return 0
	}
	_, _ = out[3*n+m-1], in[4*m-1]
	shuffle4SSE2(&out[0], &out[n], &out[2*n], &out[3*n], &in[0], m/16)
	return m
}

func unshuffle4Asm(out, in []byte, n int) int {
	m := n &^ 15
	if m == 0 || noAsm {
		return 0
	}
	_, _ = out[4*m-1], in[3*n+m-1]
	unshuffle4SSE2(&out[0], &in[0], &in[n], &in[2*n], &in[3*n], m/16)
	return m
}

//go:noescape
func shuffle8SSE2(dst, src *byte, n, chunks int)

//go:noescape
func unshuffle8SSE2(dst, src *byte, n, chunks int)

// shuffle8Asm shuffles the first n&^15 elements of typesize ts when it is
// 8 (wider typesizes use the word loop) and returns that count.
func shuffle8Asm(out, in []byte, n, ts int) int {
	m := n &^ 15
	if ts != 8 || m == 0 || noAsm {
		return 0
	}
	_, _ = out[7*n+m-1], in[8*m-1]
	shuffle8SSE2(&out[0], &in[0], n, m/16)
	return m
}

func unshuffle8Asm(out, in []byte, n, ts int) int {
	m := n &^ 15
	if ts != 8 || m == 0 || noAsm {
		return 0
	}
	_, _ = out[8*m-1], in[7*n+m-1]
	unshuffle8SSE2(&out[0], &in[0], n, m/16)
	return m
}
