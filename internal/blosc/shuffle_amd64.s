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
