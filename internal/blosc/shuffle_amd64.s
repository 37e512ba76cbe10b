//go:build amd64 && !purego

#include "textflag.h"

// Byte shuffle and unshuffle for typesizes 2 and 4 with SSE2, 16 elements
// per iteration. See shuffle_amd64.go. Loads and stores are unaligned
// (MOVOU). X15 holds 0x00ff in every 16-bit lane: PAND with it keeps the
// even bytes, PSRLW $8 moves the odd ones down, and PACKUSWB packs the
// 16-bit lanes of two registers (all <= 255, so no saturation) into bytes.

// func shuffle2SSE2(dst0, dst1, src *byte, chunks int)
TEXT ·shuffle2SSE2(SB), NOSPLIT, $0-32
	MOVQ dst0+0(FP), DI
	MOVQ dst1+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ chunks+24(FP), CX
	PCMPEQW X15, X15
	PSRLW $8, X15

loop2:
	MOVOU 0(SI), X0  // elements 0..7
	MOVOU 16(SI), X1 // elements 8..15
	MOVOU X0, X2
	MOVOU X1, X3
	PAND X15, X0
	PAND X15, X1
	PSRLW $8, X2
	PSRLW $8, X3
	PACKUSWB X1, X0  // byte 0 of elements 0..15
	PACKUSWB X3, X2  // byte 1
	MOVOU X0, 0(DI)
	MOVOU X2, 0(R8)
	ADDQ $32, SI
	ADDQ $16, DI
	ADDQ $16, R8
	DECQ CX
	JNZ loop2
	RET

// func unshuffle2SSE2(dst, src0, src1 *byte, chunks int)
TEXT ·unshuffle2SSE2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src0+8(FP), SI
	MOVQ src1+16(FP), R8
	MOVQ chunks+24(FP), CX

uloop2:
	MOVOU 0(SI), X0 // byte 0 of elements 0..15
	MOVOU 0(R8), X1 // byte 1
	MOVOU X0, X2
	PUNPCKLBW X1, X0 // elements 0..7
	PUNPCKHBW X1, X2 // elements 8..15
	MOVOU X0, 0(DI)
	MOVOU X2, 16(DI)
	ADDQ $16, SI
	ADDQ $16, R8
	ADDQ $32, DI
	DECQ CX
	JNZ uloop2
	RET

// func shuffle4SSE2(dst0, dst1, dst2, dst3, src *byte, chunks int)
// Two rounds of the typesize-2 split: bytes (0,2) and (1,3) of each
// element, then each of those split again.
TEXT ·shuffle4SSE2(SB), NOSPLIT, $0-48
	MOVQ dst0+0(FP), DI
	MOVQ dst1+8(FP), R8
	MOVQ dst2+16(FP), R9
	MOVQ dst3+24(FP), R10
	MOVQ src+32(FP), SI
	MOVQ chunks+40(FP), CX
	PCMPEQW X15, X15
	PSRLW $8, X15

loop4:
	MOVOU 0(SI), X0  // elements 0..3
	MOVOU 16(SI), X1 // 4..7
	MOVOU 32(SI), X2 // 8..11
	MOVOU 48(SI), X3 // 12..15
	MOVOU X0, X4
	MOVOU X1, X5
	MOVOU X2, X6
	MOVOU X3, X7
	PAND X15, X0
	PAND X15, X1
	PAND X15, X2
	PAND X15, X3
	PSRLW $8, X4
	PSRLW $8, X5
	PSRLW $8, X6
	PSRLW $8, X7
	PACKUSWB X1, X0 // bytes 0,2 of elements 0..7
	PACKUSWB X3, X2 // bytes 0,2 of elements 8..15
	PACKUSWB X5, X4 // bytes 1,3 of elements 0..7
	PACKUSWB X7, X6 // bytes 1,3 of elements 8..15
	MOVOU X0, X1
	MOVOU X2, X3
	MOVOU X4, X5
	MOVOU X6, X7
	PAND X15, X0
	PAND X15, X2
	PAND X15, X4
	PAND X15, X6
	PSRLW $8, X1
	PSRLW $8, X3
	PSRLW $8, X5
	PSRLW $8, X7
	PACKUSWB X2, X0 // byte 0 of elements 0..15
	PACKUSWB X3, X1 // byte 2
	PACKUSWB X6, X4 // byte 1
	PACKUSWB X7, X5 // byte 3
	MOVOU X0, 0(DI)
	MOVOU X4, 0(R8)
	MOVOU X1, 0(R9)
	MOVOU X5, 0(R10)
	ADDQ $64, SI
	ADDQ $16, DI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	DECQ CX
	JNZ loop4
	RET

// func unshuffle4SSE2(dst, src0, src1, src2, src3 *byte, chunks int)
TEXT ·unshuffle4SSE2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src0+8(FP), SI
	MOVQ src1+16(FP), R8
	MOVQ src2+24(FP), R9
	MOVQ src3+32(FP), R10
	MOVQ chunks+40(FP), CX

uloop4:
	MOVOU 0(SI), X0  // byte 0 of elements 0..15
	MOVOU 0(R8), X1  // byte 1
	MOVOU 0(R9), X2  // byte 2
	MOVOU 0(R10), X3 // byte 3
	MOVOU X0, X4
	MOVOU X1, X5
	PUNPCKLBW X2, X0 // bytes 0,2 of elements 0..7
	PUNPCKHBW X2, X4 // bytes 0,2 of elements 8..15
	PUNPCKLBW X3, X1 // bytes 1,3 of elements 0..7
	PUNPCKHBW X3, X5 // bytes 1,3 of elements 8..15
	MOVOU X0, X2
	MOVOU X4, X6
	PUNPCKLBW X1, X0 // elements 0..3
	PUNPCKHBW X1, X2 // elements 4..7
	PUNPCKLBW X5, X4 // elements 8..11
	PUNPCKHBW X5, X6 // elements 12..15
	MOVOU X0, 0(DI)
	MOVOU X2, 16(DI)
	MOVOU X4, 32(DI)
	MOVOU X6, 48(DI)
	ADDQ $16, SI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $64, DI
	DECQ CX
	JNZ uloop4
	RET

// SPLIT(a, b, ta, tb) leaves the even bytes of a then b in a and the odd
// ones in ta; b and tb are scratch. One round of the typesize-2 split.
#define SPLIT(a, b, ta, tb) \
	MOVOU a, ta \
	MOVOU b, tb \
	PAND X15, a \
	PAND X15, b \
	PSRLW $8, ta \
	PSRLW $8, tb \
	PACKUSWB b, a \
	PACKUSWB tb, ta

// MERGE(a, b, t) interleaves the bytes of a and b: the low halves into a,
// the high halves into t. One round of the typesize-2 merge.
#define MERGE(a, b, t) \
	MOVOU a, t \
	PUNPCKLBW b, a \
	PUNPCKHBW b, t

// func shuffle8SSE2(dst, src *byte, n, chunks int)
// Plane j starts at dst + j*n. Three rounds of SPLIT: bytes (even, odd),
// then (0 mod 4, 2 mod 4), then single bytes.
TEXT ·shuffle8SSE2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R8
	MOVQ chunks+24(FP), CX
	LEAQ (R8)(R8*2), R9  // 3n
	LEAQ (R8)(R8*4), R10 // 5n
	LEAQ (R9)(R8*4), R11 // 7n
	PCMPEQW X15, X15
	PSRLW $8, X15

loop8:
	MOVOU 0(SI), X0 // elements 0,1
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7 // elements 14,15
	SPLIT(X0, X1, X8, X9)    // X0: bytes 0,2,4,6 of elements 0..3; X8: bytes 1,3,5,7
	SPLIT(X2, X3, X10, X11)  // elements 4..7
	SPLIT(X4, X5, X12, X13)  // elements 8..11
	SPLIT(X6, X7, X14, X1)   // elements 12..15
	SPLIT(X0, X2, X1, X3)    // X0: bytes 0,4 of elements 0..7; X1: bytes 2,6
	SPLIT(X4, X6, X5, X7)    // X4: bytes 0,4 of elements 8..15; X5: bytes 2,6
	SPLIT(X8, X10, X2, X3)   // X8: bytes 1,5 of elements 0..7; X2: bytes 3,7
	SPLIT(X12, X14, X6, X7)  // X12: bytes 1,5 of elements 8..15; X6: bytes 3,7
	SPLIT(X0, X4, X3, X7)    // X0: byte 0 of elements 0..15; X3: byte 4
	SPLIT(X1, X5, X4, X7)    // X1: byte 2; X4: byte 6
	SPLIT(X8, X12, X5, X7)   // X8: byte 1; X5: byte 5
	SPLIT(X2, X6, X9, X7)    // X2: byte 3; X9: byte 7
	MOVOU X0, (DI)
	MOVOU X8, (DI)(R8*1)
	MOVOU X1, (DI)(R8*2)
	MOVOU X2, (DI)(R9*1)
	MOVOU X3, (DI)(R8*4)
	MOVOU X5, (DI)(R10*1)
	MOVOU X4, (DI)(R9*2)
	MOVOU X9, (DI)(R11*1)
	ADDQ $128, SI
	ADDQ $16, DI
	DECQ CX
	JNZ loop8
	RET

// func unshuffle8SSE2(dst, src *byte, n, chunks int)
// Plane j starts at src + j*n. The rounds of shuffle8SSE2 undone with
// MERGE, last first.
TEXT ·unshuffle8SSE2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), R8
	MOVQ chunks+24(FP), CX
	LEAQ (R8)(R8*2), R9  // 3n
	LEAQ (R8)(R8*4), R10 // 5n
	LEAQ (R9)(R8*4), R11 // 7n

uloop8:
	MOVOU (SI), X0 // byte 0 of elements 0..15
	MOVOU (SI)(R8*1), X1
	MOVOU (SI)(R8*2), X2
	MOVOU (SI)(R9*1), X3
	MOVOU (SI)(R8*4), X4
	MOVOU (SI)(R10*1), X5
	MOVOU (SI)(R9*2), X6
	MOVOU (SI)(R11*1), X7 // byte 7
	MERGE(X0, X4, X8)   // bytes 0,4 of elements 0..7 in X0, of 8..15 in X8
	MERGE(X2, X6, X9)   // bytes 2,6
	MERGE(X1, X5, X10)  // bytes 1,5
	MERGE(X3, X7, X11)  // bytes 3,7
	MERGE(X0, X2, X4)   // bytes 0,2,4,6 of elements 0..3 in X0, 4..7 in X4
	MERGE(X8, X9, X5)   // of elements 8..11 in X8, 12..15 in X5
	MERGE(X1, X3, X6)   // bytes 1,3,5,7 of elements 0..3 in X1, 4..7 in X6
	MERGE(X10, X11, X7) // of elements 8..11 in X10, 12..15 in X7
	MERGE(X0, X1, X2)   // elements 0,1 in X0; 2,3 in X2
	MERGE(X4, X6, X3)   // 4,5 in X4; 6,7 in X3
	MERGE(X8, X10, X9)  // 8,9 in X8; 10,11 in X9
	MERGE(X5, X7, X11)  // 12,13 in X5; 14,15 in X11
	MOVOU X0, 0(DI)
	MOVOU X2, 16(DI)
	MOVOU X4, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X8, 64(DI)
	MOVOU X9, 80(DI)
	MOVOU X5, 96(DI)
	MOVOU X11, 112(DI)
	ADDQ $16, SI
	ADDQ $128, DI
	DECQ CX
	JNZ uloop8
	RET

// func shuffle2AVX2(dst0, dst1, src *byte, chunks int)
// shuffle2SSE2 on 32 elements per iteration: VPACKUSWB packs within each
// 128-bit lane, so VPERMQ $0xD8 puts the four 8-byte groups back in order
// (quadwords 0, 2, 1, 3).
TEXT ·shuffle2AVX2(SB), NOSPLIT, $0-32
	MOVQ dst0+0(FP), DI
	MOVQ dst1+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ chunks+24(FP), CX
	VPCMPEQW Y15, Y15, Y15
	VPSRLW $8, Y15, Y15

loop2avx:
	VMOVDQU 0(SI), Y0  // elements 0..15
	VMOVDQU 32(SI), Y1 // elements 16..31
	VPSRLW $8, Y0, Y2
	VPSRLW $8, Y1, Y3
	VPAND Y15, Y0, Y0
	VPAND Y15, Y1, Y1
	VPACKUSWB Y1, Y0, Y0 // byte 0 of elements 0..7, 16..23, 8..15, 24..31
	VPACKUSWB Y3, Y2, Y2 // byte 1, same order
	VPERMQ $0xD8, Y0, Y0
	VPERMQ $0xD8, Y2, Y2
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y2, 0(R8)
	ADDQ $64, SI
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNZ loop2avx
	VZEROUPPER
	RET
