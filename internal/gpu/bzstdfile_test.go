package gpu

import (
	"fmt"
	"os"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// TestBloscZstdEmulatorFile is for tuning the GPU parse's ratio without a
// GPU: with ZWRITE_EMU_FILE naming a file of whole chunks of
// ZWRITE_EMU_CHUNK bytes (uint16), it encodes them with blosc-zstd (byte
// shuffle, clevel 1, and ZWRITE_EMU_LEVELS) on the kernel emulator, built
// with ZWRITE_EMU_CFLAGS (say -DZS_MM=5), checks every buffer and logs the
// ratio, to set beside libzstd's on the same blocks.
func TestBloscZstdEmulatorFile(t *testing.T) {
	file := os.Getenv("ZWRITE_EMU_FILE")
	if file == "" {
		t.Skip("ZWRITE_EMU_FILE not set")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cb int64
	if _, err := fmt.Sscan(os.Getenv("ZWRITE_EMU_CHUNK"), &cb); err != nil || cb <= 0 || int64(len(data))%cb != 0 {
		t.Fatalf("ZWRITE_EMU_CHUNK %q: want the chunk size, a divisor of the file's %d bytes", os.Getenv("ZWRITE_EMU_CHUNK"), len(data))
	}
	for _, sh := range []zarr.Shuffle{zarr.ByteShuffle} {
		r := newBloscZstdEmuRig(t, zarr.Uint16, 1, sh)
		tot := checkBlosc(t, r.encode(t, data, cb), data, cb, 2, bloscFormatZstd, sh)
		t.Logf("%s: blosc-zstd %s clevel 1, flags %q: %d -> %d, ratio %.4f", file, zarr.ShuffleName(sh), os.Getenv("ZWRITE_EMU_CFLAGS"), len(data), tot, float64(len(data))/float64(tot))
	}
}
