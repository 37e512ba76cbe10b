package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zwrite/zwrite/internal/codec/codectest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestChunkEncoder: every level, sizes around block and header limits,
// fills from incompressible to constant; the output lands in dst when dst
// has Bound room and decodes to the input.
func TestChunkEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fills := map[string]func(b []byte){
		"noise": func(b []byte) {
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
		},
		"zeros": func(b []byte) { clear(b) },
		"sparse": func(b []byte) {
			for i := range b {
				b[i] = 0
				if r.IntN(9) == 0 {
					b[i] = byte(r.IntN(256))
				}
			}
		},
		"repeats": func(b []byte) {
			for i := range b {
				b[i] = byte(r.IntN(256))
				if i > 16 && r.IntN(4) > 0 {
					b[i] = b[i-1-r.IntN(16)]
				}
			}
		},
	}
	sizes := []int{2, 256, 1024, 1026, 4096, 128<<10 + 2, 300 << 10}
	for _, codec := range zarr.Codecs {
		levels := map[zarr.Codec][]int{zarr.CodecNone: {0}, zarr.CodecZstd: {-7, 1, 3, 6, 12}, zarr.CodecLZ4: {0, 1, 5, 9}, zarr.CodecBloscZstd: {0, 1, 3, 9}}[codec]
		if levels == nil {
			t.Fatalf("no levels for codec %v", codec)
		}
		for i, level := range levels {
			// The blosc codecs run every filter, on 2-byte elements.
			spec := zarr.Spec{Shape: []int64{0, 64}, Chunk: []int64{1, 64}, Shard: []int64{1, 64}, DType: zarr.Uint16, Codec: codec, Level: level}
			if codec.Blosc() {
				spec.Shuffle = zarr.Shuffles[i%len(zarr.Shuffles)]
			}
			enc, err := NewChunkEncoder(&spec)
			if err != nil {
				t.Fatal(err)
			}
			for name, fill := range fills {
				t.Run(fmt.Sprintf("%v/%d/%v/%s", codec, level, spec.Shuffle, name), func(t *testing.T) {
					for _, n := range sizes {
						src := make([]byte, n)
						fill(src)
						dst := make([]byte, 3, 3+enc.Bound(n))
						copy(dst, "abc")
						out, err := enc.Encode(dst, src)
						if err != nil {
							t.Fatal(err)
						}
						if &out[0] != &dst[0] || string(out[:3]) != "abc" {
							t.Fatalf("size %d: output not appended in place", n)
						}
						if got := codectest.Decode(t, &spec, out[3:]); !bytes.Equal(got, src) {
							t.Fatalf("size %d: decoded bytes differ", n)
						}
					}
				})
			}
			enc.Close()
		}
	}
}
