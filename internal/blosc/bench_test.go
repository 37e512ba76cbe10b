package blosc

import (
	"fmt"
	"testing"
)

// BenchmarkEncode measures one worker encoding 1 MiB uint16 chunks; the
// output size is checked inside the loop so a broken fast path cannot post
// a fake number.
func BenchmarkEncode(b *testing.B) {
	for _, kind := range []string{"ramp", "zeros", "noise"} {
		for _, clevel := range []int{1, 5} {
			b.Run(fmt.Sprintf("%s/clevel%d", kind, clevel), func(b *testing.B) {
				src := fill(kind, 1<<20, 1)
				var e Encoder
				dst := make([]byte, 0, MaxEncodedSize(len(src)))
				o := Options{TypeSize: 2, CLevel: clevel, Shuffle: ByteShuffle}
				b.SetBytes(int64(len(src)))
				b.ReportAllocs()
				for b.Loop() {
					dst = e.Encode(dst[:0], src, o)
					if len(dst) < HeaderSize || len(dst) > MaxEncodedSize(len(src)) {
						b.Fatalf("bad size %d", len(dst))
					}
				}
				b.ReportMetric(float64(len(src))/float64(len(dst)), "ratio")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, kind := range []string{"ramp", "zeros", "noise"} {
		b.Run(kind, func(b *testing.B) {
			src := fill(kind, 1<<20, 1)
			var e Encoder
			var d Decoder
			enc := e.Encode(nil, src, Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle})
			out := make([]byte, len(src))
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = d.Decode(out, enc); err != nil || len(out) != len(src) {
					b.Fatal(err)
				}
			}
		})
	}
}
