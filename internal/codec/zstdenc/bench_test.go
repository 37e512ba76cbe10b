package zstdenc

import (
	"os"
	"testing"
)

func BenchmarkEncodeFile(b *testing.B) {
	for _, f := range []string{"thirds", "camera"} {
		data, err := os.ReadFile("/tmp/measure/" + f + ".raw")
		if err != nil {
			b.Skip(err)
		}
		b.Run(f, func(b *testing.B) {
			var e Encoder
			dst := make([]byte, 0, MaxEncodedSize(262144))
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for c := 0; c+262144 <= len(data); c += 262144 {
					dst = e.EncodeAll(dst[:0], data[c:c+262144])
				}
			}
		})
	}
}
