//go:build amd64 && !purego

#include "textflag.h"

// func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int)
//
// Copies count runs of run bytes (a multiple of 16) that lie back to back
// at src to dst, dst+dstStride, ... with non-temporal stores (MOVNTDQ:
// no read for ownership, no cache pollution). dst and dstStride must be
// multiples of 16. The stores are weakly ordered: call storeFence before
// another goroutine may read them.
TEXT ·copyRunsNT(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ run+24(FP), R8
	MOVQ count+32(FP), CX
	TESTQ CX, CX
	JZ done

run:
	MOVQ DI, R9  // cursor in this run's destination
	MOVQ R8, R10 // bytes of the run left
	CMPQ R10, $64
	JB tail

block:
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVNTO X0, 0(R9)
	MOVNTO X1, 16(R9)
	MOVNTO X2, 32(R9)
	MOVNTO X3, 48(R9)
	ADDQ $64, SI
	ADDQ $64, R9
	SUBQ $64, R10
	CMPQ R10, $64
	JAE block

tail:
	TESTQ R10, R10
	JZ next

tail16:
	MOVOU 0(SI), X0
	MOVNTO X0, 0(R9)
	ADDQ $16, SI
	ADDQ $16, R9
	SUBQ $16, R10
	JNZ tail16

next:
	ADDQ DX, DI
	DECQ CX
	JNZ run

done:
	RET

// func storeFence()
TEXT ·storeFence(SB), NOSPLIT, $0-0
	SFENCE
	RET
