package lz4enc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// inputs are the edge cases: sizes around lz4.c's limits (minLength 13,
// MFLIMIT 12, LASTLITERALS 5, the 16-bit table's LZ4_64Klimit), all-zero
// and random blocks, long and overlapping matches, literal and match runs
// that need 255-byte length continuations, matches at the largest
// distances, and shuffled-sensor-like planes.
func inputs() []struct {
	name string
	src  []byte
} {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	var out []struct {
		name string
		src  []byte
	}
	add := func(name string, b []byte) {
		out = append(out, struct {
			name string
			src  []byte
		}{name, b})
	}
	add("empty", nil)
	for n := 1; n <= 16; n++ {
		add(fmt.Sprintf("zeros-%d", n), make([]byte, n))
		add(fmt.Sprintf("random-%d", n), random(n))
	}
	for _, n := range []int{17, 100, 255, 270, 4096, 32 << 10, 64 << 10, limit16 - 1, limit16, 100 << 10} {
		add(fmt.Sprintf("zeros-%d", n), make([]byte, n))
		add(fmt.Sprintf("random-%d", n), random(n))
	}
	// Overlapping matches: a short period repeated (offset < length).
	for _, p := range []int{1, 2, 3, 5, 7, 16} {
		b := make([]byte, 5000)
		copy(b, random(p))
		for i := p; i < len(b); i++ {
			b[i] = b[i-p]
		}
		add(fmt.Sprintf("period-%d", p), b)
	}
	// A random prefix repeated at the far end: matches at distances just
	// under 64 KiB (the largest a 16-bit-table block can hold).
	for _, n := range []int{limit16 - 1, 65536, limit16} {
		b := random(n)
		copy(b[n-2000:], b[:2000])
		add(fmt.Sprintf("far-%d", n), b)
	}
	// Long literal runs between matches, and matches of 15, 16, 270 bytes.
	{
		b := random(20000)
		for _, at := range []int{700, 4000, 9000, 15000} {
			copy(b[at:at+270], b[at-600:])
			copy(b[at+800:at+815], b[at-100:])
			copy(b[at+1500:at+1516], b[at-50:])
		}
		add("mixed-runs", b)
	}
	// A noisy low-byte plane and a smooth high-byte plane, as byte
	// shuffle leaves 12-bit sensor data.
	{
		lo, hi := make([]byte, 32<<10), make([]byte, 32<<10)
		for i := range lo {
			v := 2048 + int(r.NormFloat64()*40)
			lo[i], hi[i] = byte(v), byte(v>>8)
		}
		add("plane-lo", lo)
		add("plane-hi", hi)
	}
	return out
}

// reference is pierrec's port of LZ4_compress_fast, golden-tested against
// lz4.c itself.
func reference(src, dst []byte, accel int) int {
	c := lz4.CompressorCCompat{Acceleration: accel}
	n, err := c.CompressBlock(src, dst)
	if err != nil {
		return 0
	}
	return n
}

// check compresses src into a dst of capacity room (followed by canary
// bytes that must survive) with both compressors and requires the same
// result, and that it decodes to src.
func check(t *testing.T, c *Compressor, src []byte, room, accel int) {
	t.Helper()
	const canary = 64
	buf := bytes.Repeat([]byte{0xA5}, room+canary)
	got := c.CompressBlock(src, buf[:room:room], accel)
	if !bytes.Equal(buf[room:], bytes.Repeat([]byte{0xA5}, canary)) {
		t.Fatalf("%d bytes, room %d, accel %d: wrote past dst", len(src), room, accel)
	}
	ref := make([]byte, room)
	want := reference(src, ref, accel)
	if got != want || !bytes.Equal(buf[:got], ref[:want]) {
		t.Fatalf("%d bytes, room %d, accel %d: %d bytes, want lz4.c's %d (first difference at %d)",
			len(src), room, accel, got, want, firstDiff(buf[:got], ref[:want]))
	}
	if got == 0 {
		return
	}
	dec := make([]byte, len(src))
	if n, err := lz4.UncompressBlock(buf[:got], dec); err != nil || n != len(src) || !bytes.Equal(dec, src) {
		t.Fatalf("%d bytes, accel %d: decodes to %d bytes (%v), equal %v", len(src), accel, n, err, bytes.Equal(dec[:max(n, 0)], src))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSameAsLZ4C: every edge case, at the accelerations c-blosc uses
// (10-clevel) and 1, with room for the bound, exactly the input size (what
// c-blosc gives: a stream may not grow) and sizes around the output's own,
// where lz4.c's conservative output checks decide (each is off by its
// margin from the bytes written, so every room near the size matters).
func TestSameAsLZ4C(t *testing.T) {
	var c Compressor
	for _, in := range inputs() {
		t.Run(in.name, func(t *testing.T) {
			for _, accel := range []int{1, 5, 9, 0, 100} {
				full := make([]byte, Bound(len(in.src)))
				m := reference(in.src, full, accel)
				rooms := []int{Bound(len(in.src)), len(in.src), 0, 1}
				for d := -16; d <= 16; d++ {
					rooms = append(rooms, m+d)
				}
				for _, room := range rooms {
					if room >= 0 {
						check(t, &c, in.src, room, accel)
					}
				}
			}
		})
	}
}

// TestRefusesTooSmall: a dst that cannot hold the block gives 0, the
// check above can fail.
func TestRefusesTooSmall(t *testing.T) {
	var c Compressor
	src := make([]byte, 1000)
	for i := range src {
		src[i] = byte(i * 7919 >> 3)
	}
	if n := c.CompressBlock(src, make([]byte, 10), 1); n != 0 {
		t.Fatalf("10-byte dst: %d, want 0", n)
	}
	if n := c.CompressBlock(src, make([]byte, Bound(len(src))), 1); n == 0 {
		t.Fatal("bound-sized dst refused")
	}
}

// FuzzSameAsLZ4C: arbitrary input, acceleration and dst room must give
// lz4.c's bytes (pierrec's port) and decode back with pierrec's decoder.
func FuzzSameAsLZ4C(f *testing.F) {
	for _, in := range inputs() {
		if len(in.src) < 5000 {
			f.Add(in.src, uint8(9), uint16(len(in.src)))
		}
	}
	var c Compressor
	f.Fuzz(func(t *testing.T, src []byte, accel uint8, room uint16) {
		check(t, &c, src, Bound(len(src)), int(accel))
		check(t, &c, src, int(room)%(Bound(len(src))+1), int(accel))
	})
}
