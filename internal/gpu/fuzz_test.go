package gpu

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/blosc"
)

// FuzzBloscStrictDecode feeds arbitrary buffers to the tests' strict
// blosc1 reader: it must never panic, what it accepts must have the
// header's size, and (a differential check) internal/blosc must decode an
// accepted buffer to the same bytes, unless it does not read its
// compressor yet.
func FuzzBloscStrictDecode(f *testing.F) {
	var e blosc.Encoder
	for _, sh := range blosc.Shuffles {
		for _, cb := range []int{100, 300, 5000} {
			data := lz4Fill("thirds", uint64(cb), 2, int64(cb), 1)
			buf := e.Encode(nil, data, blosc.Options{TypeSize: 2, CLevel: 5, Shuffle: sh})
			f.Add(buf)
			bad := append([]byte(nil), buf...)
			bad[len(bad)/2] ^= 0x40
			f.Add(bad)
		}
	}
	f.Add([]byte{2, 1, 0x91, 2, 0, 1, 0, 0, 0, 1, 0, 0, 20, 0, 0, 0})
	f.Fuzz(func(t *testing.T, buf []byte) {
		if len(buf) >= 8 && int(uint32(buf[4])|uint32(buf[5])<<8|uint32(buf[6])<<16|uint32(buf[7])<<24) > 1<<22 {
			return // the readers allocate the decoded size: keep the fuzzer's memory small
		}
		out, h, err := decodeBloscStrict(buf)
		if err != nil {
			return
		}
		if len(out) != h.nbytes {
			t.Fatalf("accepted a buffer decoding to %d bytes, header says %d", len(out), h.nbytes)
		}
		got, err := blosc.Decode(nil, buf)
		if errors.Is(err, blosc.ErrNotSupported) {
			return
		}
		if err != nil || !bytes.Equal(got, out) {
			t.Fatalf("the strict reader accepts what internal/blosc %v (equal %v)", err, bytes.Equal(got, out))
		}
	})
}

// FuzzParseArch: an arch parseArch accepts is exactly sm_ and the decimal
// of its capability (so "sm_090" or "sm_90a" never pass as sm_90).
func FuzzParseArch(f *testing.F) {
	for _, s := range []string{"sm_80", "sm_86", "sm_90", "sm_100", "sm_121", "sm_90a", "sm_090", "sm_", "compute_90", "sm_9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arch string) {
		major, minor, ok := parseArch(arch)
		if !ok {
			return
		}
		if minor < 0 || minor > 9 || major < 1 || "sm_"+strconv.Itoa(major*10+minor) != arch {
			t.Fatalf("parseArch(%q) = %d.%d", arch, major, minor)
		}
		if got := pickCubin([]string{arch}, major, minor); got != arch {
			t.Fatalf("pickCubin does not take %q for its own capability %d.%d", arch, major, minor)
		}
	})
}

// FuzzParseCubinManifest: the manifest reader never panics, and what it
// accepts has five well-formed fields per line.
func FuzzParseCubinManifest(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add("sm_80 lz4 " + h + " " + h + " 100\n")
	f.Add("sm_90 zstd " + h + " " + h + " x\n")
	f.Add("\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := parseCubinManifest([]byte(s))
		if err != nil {
			return
		}
		for _, e := range es {
			if _, _, ok := parseArch(e.arch); !ok || len(e.source) != 64 || len(e.sum) != 64 || e.module == "" {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}
