package blosc

import (
	"fmt"
	"testing"
)

// Shuffle benchmarks run on one DefaultBlockSize block, the unit Encode
// and Decode shuffle, so the numbers are the per-block cost the CPU lz4
// path pays. The output is compared with the reference loop once before
// timing, so a broken fast path cannot post a number.
func BenchmarkShuffle(b *testing.B) {
	benchFilter(b, func(out, in []byte, ts int) { shuffle(out, in, ts) }, refShuffle)
}

func BenchmarkUnshuffle(b *testing.B) {
	benchFilter(b, func(out, in []byte, ts int) { unshuffle(out, in, ts) }, refUnshuffle)
}

func BenchmarkBitShuffle(b *testing.B) {
	benchFilter(b, func(out, in []byte, ts int) { bitTranspose(out, in, ts, false) },
		func(out, in []byte, ts int) { refBitTranspose(out, in, ts, false) })
}

func BenchmarkBitUnshuffle(b *testing.B) {
	benchFilter(b, func(out, in []byte, ts int) { bitTranspose(out, in, ts, true) },
		func(out, in []byte, ts int) { refBitTranspose(out, in, ts, true) })
}

func benchFilter(b *testing.B, f, ref func(out, in []byte, ts int)) {
	for _, ts := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprint(ts), func(b *testing.B) {
			in := fill("noise", DefaultBlockSize, 7)
			out := make([]byte, len(in))
			want := make([]byte, len(in))
			f(out, in, ts)
			ref(want, in, ts)
			if string(out) != string(want) {
				b.Fatal("output differs from the reference loop")
			}
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				f(out, in, ts)
			}
		})
	}
}
