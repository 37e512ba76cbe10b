package zstdenc

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestLibzstdBlocks: frames of many small blocks (EncodeAllBlocks, as
// blosc's byte planes use it) decode with libzstd: every block may reuse
// the previous block's Huffman table (treeless literals), matches reach
// into earlier blocks, and blocks stored raw or RLE sit between them,
// which the decoder's table and repeat offsets must survive.
func TestLibzstdBlocks(t *testing.T) {
	var e Encoder
	var frames, want []byte
	for _, n := range []int{300, 5000, 70000, 300 << 10} {
		srcs := inputs(n, uint64(n)+3)
		srcs["skewed2"] = skewed(n, 2, 9)
		srcs["skewed1.1"] = skewed(n, 1.1, 9)
		for _, src := range srcs {
			src = append(append(src, skewed(n, 1.5, 1)...), src...)
			for _, block := range []int{1, 64, 100, 1000, 1024, 8192, 20000, 0} {
				frames = e.EncodeAllBlocks(frames, src, block)
				want = append(want, src...)
			}
		}
	}
	if out := libzstdDecode(t, frames); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded %d bytes that differ from the %d input bytes at %d", len(out), len(want), firstDiff(out, want))
	}
}

// TestLibzstdWindow: above 8 MiB the frame has a window of 8 MiB; a copy
// just inside it is matched, one just beyond is not (libzstd rejects an
// offset past the window).
func TestLibzstdWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	rnd := make([]byte, 1<<20)
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	var e Encoder
	var frames, want []byte
	for _, tc := range []struct {
		gap   int
		match bool
	}{{7<<20 - 100, true}, {7 << 20, true}, {7<<20 + 100, false}, {8 << 20, false}} {
		// rnd, zeros (whose hashes leave rnd's table entries alone), rnd
		// again at gap+1 MiB.
		src := append(append(append([]byte(nil), rnd...), make([]byte, tc.gap)...), rnd...)
		f := e.EncodeAll(nil, src)
		if matched := len(f) < 3*len(rnd)/2; matched != tc.match {
			t.Errorf("copy at %d bytes: %d-byte frame, want the copy matched %v", tc.gap+len(rnd), len(f), tc.match)
		}
		frames = append(frames, f...)
		want = append(want, src...)
	}
	if out := libzstdDecode(t, frames); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded other bytes (at %d)", firstDiff(out, want))
	}
}

// FuzzEncodeBlocks: fuzzed inputs, repeated, with skewed literals after
// them, in fuzzed block sizes (one encoder throughout, so the tables of
// earlier frames must not leak into later ones), round-trip within the
// bound.
func FuzzEncodeBlocks(f *testing.F) {
	for name, src := range inputs(3000, 2) {
		f.Add(src, uint16(100), name == "noise", uint8(2))
	}
	var e Encoder
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, block uint16, skew bool, reps uint8) {
		src := append([]byte(nil), b...)
		for range int(reps % 6) {
			src = append(src, b...)
		}
		if skew {
			src = append(src, skewed(len(b)*3+70, 1.5, uint64(len(b)))...)
		}
		frame := e.EncodeAllBlocks(nil, src, int(block))
		if bound := MaxEncodedSizeBlocks(len(src), int(block)); len(frame) > bound {
			t.Fatalf("%d bytes > bound %d", len(frame), bound)
		}
		got, err := d.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
