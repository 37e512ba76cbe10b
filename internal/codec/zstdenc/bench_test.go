package zstdenc

import "testing"

// BenchmarkEncode: one goroutine, 256 KiB inputs of each kind; the frame
// size is checked inside the loop so a broken fast path cannot post a
// fake number. (internal/codec's TestMeasureCodecs compares with libzstd
// and klauspost on the bench fills.)
func BenchmarkEncode(b *testing.B) {
	for name, src := range inputs(256<<10, 1) {
		b.Run(name, func(b *testing.B) {
			var e Encoder
			dst := make([]byte, 0, MaxEncodedSize(len(src)))
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst = e.EncodeAll(dst[:0], src)
				if len(dst) < 9 || len(dst) > MaxEncodedSize(len(src)) {
					b.Fatalf("frame of %d bytes", len(dst))
				}
			}
			b.ReportMetric(float64(len(src))/float64(len(dst)), "ratio")
		})
	}
}
