package zarr

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	spec := func(dt DType, shape, chunk, shard []int64) Spec {
		return Spec{Shape: shape, DType: dt, Chunk: chunk, Shard: shard, Codec: CodecZstd, Level: 1}
	}
	tests := []struct {
		name string
		spec Spec
		want string // substring of the error; "" = valid
	}{
		{"valid growing", spec(Uint16, []int64{0, 512, 512}, []int64{8, 128, 128}, []int64{64, 512, 512}), ""},
		{"valid fixed", spec(Uint8, []int64{10, 7}, []int64{3, 2}, []int64{6, 4}), ""},
		{"largest chunk", spec(Uint8, []int64{0, 1 << 31}, []int64{1, 1<<31 - 1}, []int64{1, 1<<31 - 1}), ""},
		{"no dims", spec(Uint8, nil, nil, nil), "shape has 0 dimensions"},
		{"chunk rank", spec(Uint8, []int64{0, 4}, []int64{1}, []int64{1, 4}), "chunk has 1 dimensions"},
		{"no dtype", spec(0, []int64{0, 4}, []int64{1, 4}, []int64{1, 4}), "dtype is not set"},
		{"zero inner dim", spec(Uint8, []int64{0, 0}, []int64{1, 1}, []int64{1, 1}), "shape[1] = 0"},
		{"shard not multiple", spec(Uint8, []int64{0, 8}, []int64{1, 2}, []int64{1, 3}), "shard[1] = 3 is not a positive multiple"},
		{"chunk over shape", spec(Uint8, []int64{0, 4}, []int64{1, 8}, []int64{1, 8}), "chunk[1] = 8 is larger than shape[1] = 4"},
		// zwrite bench --shape 10,4294967296,4294967296 --chunk 1,1,1: the
		// frame size wrapped to 0 and pipeline.New divided by it.
		{"frame overflow (bench panic)", spec(Uint16, []int64{10, 1 << 32, 1 << 32}, []int64{1, 1, 1}, []int64{1, 1, 1}), "one frame (all dimensions but the first) would exceed 128 TiB"},
		{"frame overflow int64 max", spec(Uint8, []int64{0, 1<<63 - 1, 2}, []int64{1, 1, 1}, []int64{1, 1, 1}), "one frame"},
		{"epoch too large", spec(Uint16, []int64{0, 65536, 65536}, []int64{65536, 1, 1}, []int64{65536, 1, 1}), "one epoch (chunk[0] = 65536 frames) would exceed"},
		{"fixed array too large", spec(Uint16, []int64{1 << 40, 1 << 10}, []int64{1, 1 << 10}, []int64{1, 1 << 10}), "the array would exceed 128 TiB"},
		{"chunk over 2 GiB", spec(Uint16, []int64{0, 65536, 65536}, []int64{1, 65536, 65536}, []int64{1, 65536, 65536}), "an inner chunk would exceed 2 GiB"},
		{"chunk product wraps", spec(Uint8, []int64{1 << 62, 1 << 62}, []int64{1 << 62, 4}, []int64{1 << 62, 4}), "exceed"},
		{"index too large", spec(Uint16, []int64{0, 65536, 65536}, []int64{1, 1, 1}, []int64{1, 8192, 8192}), "inner chunks per shard"},
		{"index product wraps", spec(Uint8, []int64{0, 1 << 20, 1 << 20}, []int64{1, 1, 1}, []int64{1 << 62, 1 << 62, 1 << 62}), "inner chunks per shard"},
		{"too many chunks", spec(Uint16, []int64{0, 65536, 65536}, []int64{1, 4, 4}, []int64{1, 4, 4}), "inner chunks per epoch"},
		{"too many chunks 1d", spec(Uint8, []int64{0, 1 << 40}, []int64{1, 1 << 10}, []int64{1, 1 << 10}), "inner chunks per epoch"},
		{"shape near int64 max", spec(Uint8, []int64{0, 1<<63 - 1}, []int64{1, 1 << 30}, []int64{1, 1 << 30}), "one frame"},
		{"zstd level", Spec{Shape: []int64{0, 4}, DType: Uint8, Chunk: []int64{1, 4}, Shard: []int64{1, 4}, Codec: CodecZstd, Level: 40}, "zstd level 40"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate(%+v): %v", tc.spec, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate(%+v) = %v, want an error containing %q", tc.spec, err, tc.want)
			}
			if err == nil {
				// Every geometry helper must be usable on a valid spec.
				if tc.spec.FrameBytes() <= 0 || tc.spec.ChunkBytes() <= 0 || tc.spec.ChunksPerShard() <= 0 || tc.spec.ChunksPerEpoch() <= 0 || tc.spec.ShardsPerRow() <= 0 {
					t.Errorf("valid spec %+v has a non-positive size", tc.spec)
				}
			}
		})
	}
}
