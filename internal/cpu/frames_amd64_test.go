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
// strides from back to back to far apart) and not a byte around them.
func TestCopyRunsNT(t *testing.T) {
	for _, tc := range []struct{ run, stride, count int }{
		{64, 64, 1}, {64, 64, 5}, {80, 96, 3}, {112, 128, 7}, {128, 192, 4}, {144, 1024, 2}, {4096 + 48, 8192, 3}, {64, 64, 0},
	} {
		t.Run(fmt.Sprintf("%d/%d/%d", tc.run, tc.stride, tc.count), func(t *testing.T) {
			const guard = 64
			src := make([]byte, tc.run*tc.count+1)
			for i := range src {
				src[i] = byte(i*7 + 1)
			}
			raw := make([]byte, 2*guard+tc.stride*tc.count+16)
			// A 16-byte aligned start guard bytes in.
			a := guard + int((16-uintptr(unsafe.Pointer(&raw[guard]))&15)&15)
			for i := range raw {
				raw[i] = 0xEE
			}
			want := bytes.Clone(raw)
			for k := 0; k < tc.count; k++ {
				copy(want[a+k*tc.stride:], src[k*tc.run:(k+1)*tc.run])
			}
			copyRunsNT(&raw[a], tc.stride, &src[0], tc.run, tc.count)
			storeFence()
			if !bytes.Equal(raw, want) {
				t.Fatalf("differs at %d (runs start at %d)", firstDiffBytes(raw, want), a)
			}
		})
	}
}

func firstDiffBytes(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
