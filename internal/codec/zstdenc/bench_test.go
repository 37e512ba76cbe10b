package zstdenc

import (
	"os"
	"path/filepath"
	"testing"
)

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

// BenchmarkFills encodes the fills TestMeasureCodecs writes (internal/codec,
// ZWRITE_MEASURE=DIR) in its 256 KiB chunks, one frame per chunk, when
// ZSTDENC_FILLS names that directory: the writer's inputs, for profiles.
func BenchmarkFills(b *testing.B) {
	dir := os.Getenv("ZSTDENC_FILLS")
	if dir == "" {
		b.Skip("set ZSTDENC_FILLS=DIR (internal/codec's TestMeasureCodecs output)")
	}
	for _, name := range []string{"thirds", "rand", "bcamera", "camera", "xor"} {
		all, err := os.ReadFile(filepath.Join(dir, name+".raw"))
		if err != nil {
			b.Fatal(err)
		}
		const chunk = 256 << 10
		b.Run(name, func(b *testing.B) {
			var e Encoder
			dst := make([]byte, 0, MaxEncodedSize(chunk))
			b.SetBytes(int64(len(all)))
			var out int
			for b.Loop() {
				out = 0
				for p := 0; p+chunk <= len(all); p += chunk {
					dst = e.EncodeAll(dst[:0], all[p:p+chunk])
					out += len(dst)
				}
			}
			b.ReportMetric(float64(len(all))/float64(out), "ratio")
		})
	}
}
