//go:build amd64 && !purego

package blosc

// SSE2 kernels for typesizes 2 and 4 (shuffle_amd64.s). SSE2 is part of
// every amd64 CPU (GOAMD64=v1), so no feature check is needed. Each kernel
// does 16 elements per iteration with PAND/PSRLW/PACKUSWB (shuffle) or
// PUNPCKLBW/PUNPCKHBW (unshuffle), the way c-blosc's shuffle-sse2.c does;
// the pure-Go loops in shuffle.go finish the rest and are what other
// architectures and the purego build tag use.

// noAsm makes the *Asm helpers do nothing, so tests can check the pure-Go
// loops on amd64 too.
var noAsm bool

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
	shuffle2SSE2(&out[0], &out[n], &in[0], m/16)
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
