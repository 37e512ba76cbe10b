package blosc

import (
	"bytes"
	"fmt"
	"testing"
)

// shuffleTypeSizes covers every kernel: the SSE2 and word paths (2, 4, 8),
// the byte loop (3, 5, 6, 7), and typesizes over 8 that mix 8x8 word
// transposes with byte-loop columns.
var shuffleTypeSizes = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 64, 255}

// TestShuffleReference compares shuffle and unshuffle with the one-byte
// reference loops, with and without the assembly kernels, for element
// counts around every group size (8 for the word loops, 16 for SSE2) and
// lengths that leave trailing bytes.
func TestShuffleReference(t *testing.T) {
	for _, mode := range []struct {
		name      string
		asm, avx2 bool
	}{{"avx2", true, true}, {"sse2", true, false}, {"go", false, false}} {
		for _, ts := range shuffleTypeSizes {
			t.Run(fmt.Sprintf("asm=%s/ts%d", mode.name, ts), func(t *testing.T) {
				defer func(a, v bool) { noAsm, noAVX2 = a, v }(noAsm, noAVX2)
				noAsm = noAsm || !mode.asm
				noAVX2 = noAVX2 || !mode.avx2
				var lens []int
				for n := 0; n <= 70; n++ {
					lens = append(lens, n*ts, n*ts+ts/2, n*ts+ts-1)
				}
				lens = append(lens, 1000*ts+ts-1, DefaultBlockSize, DefaultBlockSize-1)
				for _, l := range lens {
					checkShuffle(t, fill("noise", l, uint64(l)), ts)
				}
			})
		}
	}
}

// checkShuffle checks both directions on in against the reference loops,
// with canaries after the output to catch writes past its end.
func checkShuffle(t *testing.T, in []byte, ts int) {
	t.Helper()
	const canary = 0xA5
	want := make([]byte, len(in))
	refShuffle(want, in, ts)
	got := bytes.Repeat([]byte{canary}, len(in)+32)
	shuffle(got, in, ts)
	if !bytes.Equal(got[:len(in)], want) {
		t.Fatalf("ts %d len %d: shuffle differs from the reference at byte %d", ts, len(in), firstDiff(got, want))
	}
	if bytes.Count(got[len(in):], []byte{canary}) != 32 {
		t.Fatalf("ts %d len %d: shuffle wrote past its output", ts, len(in))
	}
	back := bytes.Repeat([]byte{canary}, len(in)+32)
	unshuffle(back, want, ts)
	if !bytes.Equal(back[:len(in)], in) {
		t.Fatalf("ts %d len %d: unshuffle differs from the input at byte %d", ts, len(in), firstDiff(back, in))
	}
	if bytes.Count(back[len(in):], []byte{canary}) != 32 {
		t.Fatalf("ts %d len %d: unshuffle wrote past its output", ts, len(in))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBitTransposeReference compares the bit shuffle with the bit-by-bit
// definition for element counts that are and are not multiples of 8.
func TestBitTransposeReference(t *testing.T) {
	for _, ts := range shuffleTypeSizes {
		t.Run(fmt.Sprintf("ts%d", ts), func(t *testing.T) {
			for _, n := range []int{0, 1, 7, 8, 9, 16, 24, 56, 64, 72, 128, 136, 1000, 1024} {
				for _, extra := range []int{0, ts - 1} {
					checkBitTranspose(t, fill("noise", n*ts+extra, uint64(n)), ts)
				}
			}
		})
	}
}

func checkBitTranspose(t *testing.T, in []byte, ts int) {
	t.Helper()
	for _, inverse := range []bool{false, true} {
		want := make([]byte, len(in))
		refBitTranspose(want, in, ts, inverse)
		got := make([]byte, len(in))
		bitTranspose(got, in, ts, inverse)
		if !bytes.Equal(got, want) {
			t.Fatalf("ts %d len %d inverse %v: bit transpose differs from the reference at byte %d", ts, len(in), inverse, firstDiff(got, want))
		}
	}
}

// FuzzShuffle is the differential fuzz of both filters against the
// reference loops; the seeds run in plain go test.
func FuzzShuffle(f *testing.F) {
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"), uint8(2))
	f.Add(fill("ramp", 333, 1), uint8(4))
	f.Add(fill("noise", 1031, 2), uint8(8))
	f.Add(fill("noise", 517, 3), uint8(12))
	f.Add(fill("noise", 64*3+1, 4), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, ts uint8) {
		if ts == 0 {
			return
		}
		checkShuffle(t, in, int(ts))
		checkBitTranspose(t, in, int(ts))
	})
}
