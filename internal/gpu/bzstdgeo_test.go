package gpu

import (
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestBloscZstdEmulatorGeometry: the frames cut at byte planes for the
// geometries where the kernels' and Go's slot counts and strides are most
// likely to part: a short last blosc block whose planes are zstd blocks
// of their own (or, bit shuffled with an element count that is no
// multiple of 8, not), the larger blocks of clevel 2-4 (and the lazy
// parse with planes), planes just above and below ZS_MINPLANE, and tiny
// chunks; every buffer must decode (klauspost) to its chunk.
func TestBloscZstdEmulatorGeometry(t *testing.T) {
	var cases []lz4Case
	for _, sh := range blosc.Shuffles {
		cases = append(cases,
			lz4Case{zarr.Uint32, sh, 3, "camera", 2*131072 + 100004, 1}, // last block 100004: 25001 elements
			lz4Case{zarr.Uint16, sh, 2, "thirds", 65536 + 16386, 2},     // lazy, last planes of 8193
			lz4Case{zarr.Uint16, sh, 2, "camera", 65536 + 16382, 1},     // last planes of 8191
			lz4Case{zarr.Uint64, sh, 4, "xor", 131072 + 65544, 1},       // 8 planes of 8193 bytes
			lz4Case{zarr.Uint8, sh, 1, "ramp", 32768*3 + 129, 1},
			lz4Case{zarr.Uint32, sh, 1, "xor", 132, 3},
			lz4Case{zarr.Float64, sh, 3, "thirds", 8 * 8200, 1},
		)
	}
	checkBloscZstdCases(t, newBloscZstdEmuRig, cases)
}
