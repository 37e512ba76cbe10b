//go:build amd64 && !purego

package cpu

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"
)

// TestCopyRunsNT: the kernel writes exactly count runs of run bytes at
// dst, dst+stride, ... (runs of 4 blocks and more, with 16-byte tails,
// strides from back to back to far apart), with AVX2 (one and two cache
// lines a step, 16-byte VEX tails, SSE2 alone where dst or the stride is
// not a multiple of 32) and with SSE2 only, and not a byte around them.
func TestCopyRunsNT(t *testing.T) {
	for _, st := range kernelSteps() {
		for _, tc := range []struct{ run, stride, count int }{
			{64, 64, 1}, {64, 64, 5}, {80, 96, 3}, {112, 128, 7}, {128, 192, 4}, {144, 1024, 2}, {4096 + 48, 8192, 3}, {64, 64, 0},
			{16, 32, 3}, {48, 64, 2}, {192, 256, 3}, {208, 256, 2}, {240, 512, 2}, {512, 262144, 3}, {96, 160, 2},
			// Strides of 16 mod 32: the AVX2 step must not run.
			{64, 80, 3}, {128, 144, 3}, {208, 240, 2}, {16, 48, 2},
		} {
			for _, off := range []int{0, 16} { // 16: dst itself not 32-byte aligned
				copyRunsCase(t, st, tc.run, tc.stride, tc.count, off)
			}
		}
	}
}

// copyRunsCase runs one TestCopyRunsNT case at step st, the runs
// starting off bytes past a 64-byte boundary (a wide step runs where dst
// and stride are multiples of its width; a misaligned VMOVNTDQ faults, so
// a wrong choice of step does not pass).
func copyRunsCase(t *testing.T, st kernelStep, run, stride, count, off int) {
	t.Run(fmt.Sprintf("%s/%d/%d/%d/+%d", st.name, run, stride, count, off), func(t *testing.T) {
		st.use(t)
		const guard = 64
		src := make([]byte, run*count+1)
		for i := range src {
			src[i] = byte(i*7 + 1)
		}
		raw := make([]byte, 2*guard+stride*count+64+off)
		// A 64-byte aligned start guard bytes in, then off.
		a := guard + int((64-uintptr(unsafe.Pointer(&raw[guard]))&63)&63) + off
		for i := range raw {
			raw[i] = 0xEE
		}
		want := bytes.Clone(raw)
		for k := 0; k < count; k++ {
			copy(want[a+k*stride:], src[k*run:(k+1)*run])
		}
		copyRunsNT(&raw[a], stride, &src[0], run, count)
		storeFence()
		if !bytes.Equal(raw, want) {
			t.Fatalf("differs at %d (runs start at %d)", firstDiffBytes(raw, want), a)
		}
	})
}

// TestCopyShuffle2NT: the kernel writes exactly count runs of run bytes
// (multiples of 32: the SSE2 step alone, the AVX2 step with and without
// an SSE2 tail) as two byte planes at dst+k*stride and gap
// bytes on, at every step this CPU has, and not a byte around them.
func TestCopyShuffle2NT(t *testing.T) {
	for _, st := range kernelSteps() {
		for _, tc := range []struct{ run, stride, gap, count int }{
			{32, 32, 16, 1}, {64, 256, 32, 3}, {96, 512, 48, 4}, {96, 512, 64, 4}, {128, 1024, 256, 5}, {128, 1040, 256, 2}, {512, 4096, 1024, 2}, {64, 64, 32, 0},
			{192, 1024, 512, 3}, {224, 2048, 512, 2}, {160, 1024, 256, 2}, {256, 4096, 2048, 3}, {128, 1024, 96, 2},
		} {
			t.Run(fmt.Sprintf("%s/%d/%d/%d/%d", st.name, tc.run, tc.stride, tc.gap, tc.count), func(t *testing.T) {
				st.use(t)
				const guard = 64
				src := make([]byte, tc.run*tc.count+1)
				for i := range src {
					src[i] = byte(i*7 + 1)
				}
				raw := make([]byte, 2*guard+tc.stride*tc.count+tc.gap+tc.run+64)
				// 64-byte aligned (more than the AVX2 step's 32), so that
				// it runs where stride and gap allow it.
				a := guard + int((64-uintptr(unsafe.Pointer(&raw[guard]))&63)&63)
				for i := range raw {
					raw[i] = 0xEE
				}
				want := bytes.Clone(raw)
				for k := 0; k < tc.count; k++ {
					for i := 0; i < tc.run/2; i++ {
						want[a+k*tc.stride+i] = src[k*tc.run+2*i]
						want[a+k*tc.stride+tc.gap+i] = src[k*tc.run+2*i+1]
					}
				}
				if tc.count > 0 {
					copyShuffle2NT(&raw[a], tc.stride, tc.gap, &src[0], tc.run, tc.count)
				}
				storeFence()
				if !bytes.Equal(raw, want) {
					t.Fatalf("differs at %d (runs start at %d)", firstDiffBytes(raw, want), a)
				}
			})
		}
	}
}
