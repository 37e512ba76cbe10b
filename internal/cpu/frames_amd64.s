//go:build amd64 && !purego

#include "textflag.h"

// func copyRunsNT(dst *byte, dstStride int, src *byte, run int, count int)
//
// Copies count runs of run bytes (a multiple of 16) that lie back to back
// at src to dst, dst+dstStride, ... with non-temporal stores (MOVNTDQ:
// no read for ownership, no cache pollution). dst and dstStride must be
// multiples of 16. The stores are weakly ordered: call storeFence before
// another goroutine may read them.
//
// With AVX2, and dst and dstStride multiples of 32 (the scatter's are:
// chunks lie 64-byte aligned, segments are multiples of 64 bytes), two
// cache lines go a step in 32-byte stores, each line's two back to back
// (a write-combining buffer fills in two stores, not four). On the GPU
// machine's 16-core Xeon (BenchmarkScatter, docs/bench/2026-12-03-h200):
// orca2 one core 5.9 -> 7.9 GB/s, 16 cores 55 -> 59; medfmt 6.2 -> 6.5
// and 43 -> 45. 64-byte AVX-512 stores (a whole line a store) measured
// the same as these there, and were dropped.
TEXT ·copyRunsNT(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ run+24(FP), R8
	MOVQ count+32(FP), CX
	XORQ R12, R12
	TESTQ CX, CX
	JZ done
	CMPB ·useAVX2(SB), $0
	JE run
	MOVQ DI, AX
	ORQ DX, AX
	TESTQ $31, AX
	JNZ run
	MOVQ $1, R12

run:
	MOVQ DI, R9  // cursor in this run's destination
	MOVQ R8, R10 // bytes of the run left
	TESTQ R12, R12
	JZ sse
	CMPQ R10, $128
	JB avx64

avx128:
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VMOVNTDQ Y0, 0(R9)
	VMOVNTDQ Y1, 32(R9)
	VMOVNTDQ Y2, 64(R9)
	VMOVNTDQ Y3, 96(R9)
	ADDQ $128, SI
	ADDQ $128, R9
	SUBQ $128, R10
	CMPQ R10, $128
	JAE avx128

avx64:
	CMPQ R10, $64
	JB avxtail
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVNTDQ Y0, 0(R9)
	VMOVNTDQ Y1, 32(R9)
	ADDQ $64, SI
	ADDQ $64, R9
	SUBQ $64, R10

avxtail:
	// The tail in VEX-encoded 16-byte moves: legacy SSE after 256-bit
	// stores would run against dirty upper halves (a merge a move).
	TESTQ R10, R10
	JZ next
	VMOVDQU 0(SI), X0
	VMOVNTDQ X0, 0(R9)
	ADDQ $16, SI
	ADDQ $16, R9
	SUBQ $16, R10
	JMP avxtail

sse:
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
	TESTQ R12, R12
	JZ ret
	VZEROUPPER

ret:
	RET

// func storeFence()
TEXT ·storeFence(SB), NOSPLIT, $0-0
	SFENCE
	RET

// func copyShuffle2NT(dst *byte, dstStride int, gap int, src *byte, run int, count int)
//
// copyRunsNT for a byte-shuffled destination of typesize 2: each of the
// count runs of run bytes (a multiple of 32) at src goes to dst+k*dstStride
// as two planes, byte 0 of its elements there and byte 1 gap bytes on
// (blosc's shuffle of one block, done while the bytes are copied anyway).
// dst, dstStride and gap must be multiples of 16 (32 for the AVX2 step).
// Weakly ordered stores, as copyRunsNT's.
TEXT ·copyShuffle2NT(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	MOVQ gap+16(FP), BX
	MOVQ src+24(FP), SI
	MOVQ run+32(FP), R8
	MOVQ count+40(FP), CX
	XORQ R12, R12
	TESTQ CX, CX
	JZ sdone
	PCMPEQW X15, X15
	PSRLW $8, X15 // 0x00FF in every word
	// The AVX2 step (R12 = 1) needs its stores 32-byte aligned: dst,
	// dstStride and gap all multiples of 32 (so are the scatter's, where
	// chunks lie 64-byte aligned and segments and blocks are multiples of
	// 64 bytes; otherwise SSE2 does the whole copy).
	CMPB ·useAVX2(SB), $0
	JE srun
	MOVQ DI, AX
	ORQ DX, AX
	ORQ BX, AX
	TESTQ $31, AX
	JNZ srun
	MOVQ $1, R12
	VPCMPEQW Y14, Y14, Y14
	VPSRLW $8, Y14, Y14

srun:
	MOVQ DI, R9   // byte 0 plane cursor
	LEAQ (DI)(BX*1), R11 // byte 1 plane cursor
	MOVQ R8, R10  // bytes of the run left

	TESTQ R12, R12
	JZ sblock
	CMPQ R10, $128
	JB sblock64

sblock128:
	// 64 elements: a whole cache line to each plane, its two stores
	// back to back (a write-combining buffer fills and leaves at once).
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y4
	VMOVDQU 96(SI), Y5
	VPSRLW $8, Y0, Y2
	VPSRLW $8, Y1, Y3
	VPSRLW $8, Y4, Y6
	VPSRLW $8, Y5, Y7
	VPAND Y14, Y0, Y0
	VPAND Y14, Y1, Y1
	VPAND Y14, Y4, Y4
	VPAND Y14, Y5, Y5
	VPACKUSWB Y1, Y0, Y0
	VPACKUSWB Y3, Y2, Y2
	VPACKUSWB Y5, Y4, Y4
	VPACKUSWB Y7, Y6, Y6
	VPERMQ $0xD8, Y0, Y0
	VPERMQ $0xD8, Y2, Y2
	VPERMQ $0xD8, Y4, Y4
	VPERMQ $0xD8, Y6, Y6
	VMOVNTDQ Y0, 0(R9)
	VMOVNTDQ Y4, 32(R9)
	VMOVNTDQ Y2, 0(R11)
	VMOVNTDQ Y6, 32(R11)
	ADDQ $128, SI
	ADDQ $64, R9
	ADDQ $64, R11
	SUBQ $128, R10
	CMPQ R10, $128
	JAE sblock128
	TESTQ R10, R10
	JZ snext
	CMPQ R10, $64
	JB sblock

sblock64:
	// 32 elements: as shuffle2AVX2 in internal/blosc (VPACKUSWB packs
	// within lanes, VPERMQ $0xD8 restores the order).
	VMOVDQU 0(SI), Y0
	VMOVDQU 32(SI), Y1
	VPSRLW $8, Y0, Y2
	VPSRLW $8, Y1, Y3
	VPAND Y14, Y0, Y0
	VPAND Y14, Y1, Y1
	VPACKUSWB Y1, Y0, Y0
	VPACKUSWB Y3, Y2, Y2
	VPERMQ $0xD8, Y0, Y0
	VPERMQ $0xD8, Y2, Y2
	VMOVNTDQ Y0, 0(R9)
	VMOVNTDQ Y2, 0(R11)
	ADDQ $64, SI
	ADDQ $32, R9
	ADDQ $32, R11
	SUBQ $64, R10
	CMPQ R10, $64
	JAE sblock64
	TESTQ R10, R10
	JZ snext

sblock:
	MOVOU 0(SI), X0  // elements 0..7
	MOVOU 16(SI), X1 // elements 8..15
	MOVOU X0, X2
	MOVOU X1, X3
	PAND X15, X0
	PAND X15, X1
	PSRLW $8, X2
	PSRLW $8, X3
	PACKUSWB X1, X0 // byte 0 of elements 0..15
	PACKUSWB X3, X2 // byte 1
	MOVNTO X0, 0(R9)
	MOVNTO X2, 0(R11)
	ADDQ $32, SI
	ADDQ $16, R9
	ADDQ $16, R11
	SUBQ $32, R10
	JNZ sblock

snext:
	ADDQ DX, DI
	DECQ CX
	JNZ srun

sdone:
	TESTQ R12, R12
	JZ sret
	VZEROUPPER

sret:
	RET
