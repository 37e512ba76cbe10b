package zstdenc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// inputs are test inputs of the kinds the writer sees, by name.
func inputs(n int, seed uint64) map[string][]byte {
	r := rand.New(rand.NewPCG(seed, 3))
	out := map[string][]byte{}
	mk := func(name string, f func(i int) byte) {
		b := make([]byte, n)
		for i := range b {
			b[i] = f(i)
		}
		out[name] = b
	}
	mk("zeros", func(int) byte { return 0 })
	mk("noise", func(int) byte { return byte(r.Uint32()) })
	mk("u16-12bit", func(i int) byte {
		if i%2 == 0 {
			return byte(r.Uint32())
		}
		return byte(r.IntN(16))
	})
	mk("ramp", func(i int) byte { return byte(i/2%700) + byte(r.IntN(3)) })
	mk("runs", func(i int) byte { return byte(i / 3000 * 7) })
	mk("text", func(i int) byte { return "the quick brown fox jumps over the lazy dog "[(i*7/5)%44] })
	mk("sparse", func(int) byte {
		if r.IntN(9) == 0 {
			return byte(r.Uint32())
		}
		return 0
	})
	mk("repeats", func(i int) byte { return byte(r.IntN(4)) })
	// Rows repeating with a shift, like the thirds gradient: the same
	// offset again and again (repeat offsets).
	mk("gradient", func(i int) byte {
		x, y := i%128, i/128
		return byte((x + y) / 2 * (1 + (x+y)%2))
	})
	// Stretches copied from three offsets in turn, with one literal or
	// none between: explicit offsets equal to the second and third repeat
	// offsets, with and without literals (repeat codes 2 and 3, and the
	// zero-literal shift).
	cyc := make([]byte, n)
	for i := range cyc {
		switch {
		case i < 300:
			cyc[i] = byte(r.Uint32())
		case (i/24)%2 == 0 && i%24 == 0:
			cyc[i] = byte(r.Uint32())
		case i < n/2: // three offsets in turn
			cyc[i] = cyc[i-[3]int{97, 211, 283}[(i/24)%3]]
		default: // two
			cyc[i] = cyc[i-[2]int{97, 211}[(i/24)%2]]
		}
	}
	out["cycling"] = cyc
	return out
}

func decodeKlauspost(t testing.TB, frame []byte, n int) []byte {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil || !h.HasFCS || h.FrameContentSize != uint64(n) || h.HasCheckSum {
		t.Fatalf("frame header %+v: %v", h, err)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := d.DecodeAll(frame, nil)
	if err != nil {
		t.Fatalf("klauspost decode: %v", err)
	}
	return out
}

// TestRoundTrip: every input kind at sizes around the header and block
// limits decodes with klauspost's decoder to the input, within
// MaxEncodedSize, appended in place when dst has the room.
func TestRoundTrip(t *testing.T) {
	var e Encoder
	for _, n := range []int{0, 1, 7, 8, 9, 16, 255, 256, 300, 1023, 1024, 4096, 65535, 65791, 65792, 128 << 10, 128<<10 + 1, 300 << 10} {
		for name, src := range inputs(n, uint64(n)) {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				dst := make([]byte, 2, 2+MaxEncodedSize(n))
				out := e.EncodeAll(dst, src)
				if &out[0] != &dst[0] {
					t.Fatal("dst grew")
				}
				if len(out)-2 > MaxEncodedSize(n) {
					t.Fatalf("%d bytes > bound %d", len(out)-2, MaxEncodedSize(n))
				}
				if got := decodeKlauspost(t, out[2:], n); !bytes.Equal(got, src) {
					t.Fatalf("decoded bytes differ at %d", firstDiff(got, src))
				}
			})
		}
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

// TestLibzstd decodes frames of every input kind with the reference
// library (the zstd CLI, libzstd), which is stricter than klauspost in
// places (RFC 8878 pitfalls: 4-stream literals below 6 bytes, exact
// bitstream consumption). Skips when the CLI is not installed.
func TestLibzstd(t *testing.T) {
	var e Encoder
	var frames, want []byte
	for _, n := range []int{1, 300, 1024, 65792, 128<<10 + 1, 400 << 10} {
		for _, src := range inputs(n, uint64(n)+7) {
			frames = e.EncodeAll(frames, src)
			want = append(want, src...)
		}
	}
	if out := libzstdDecode(t, frames); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded %d bytes that differ from the %d input bytes at %d", len(out), len(want), firstDiff(out, want))
	}
}

// libzstdDecode decodes concatenated frames with the zstd CLI, skipping
// the test when it is not installed.
func libzstdDecode(t *testing.T, frames []byte) []byte {
	t.Helper()
	cli, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("the zstd CLI is not installed (apt-get install zstd)")
	}
	in := filepath.Join(t.TempDir(), "f.zst")
	if err := os.WriteFile(in, frames, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cli, "-d", "-c", "-q", in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd -d: %v: %s", err, stderr.Bytes())
	}
	return out
}

// TestFrameHeader pins the header forms: single segment with a 1, 2 or 4
// byte content size; above 8 MiB a window descriptor.
func TestFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n   int
		hdr []byte
	}{
		{0, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0}},
		{255, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 255}},
		{256, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x60, 0, 0}},
		{65791, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x60, 0xff, 0xff}},
		{65792, binary.LittleEndian.AppendUint32([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0}, 65792)},
		{9 << 20, binary.LittleEndian.AppendUint32([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x80, 13 << 3}, 9<<20)},
	} {
		if got := appendFrameHeader(nil, tc.n); !bytes.Equal(got, tc.hdr) {
			t.Errorf("n = %d: header % x, want % x", tc.n, got, tc.hdr)
		}
	}
}

// blockInfo is what walkFrame reads of one block.
type blockInfo struct {
	typ     int // 0 raw, 1 RLE, 2 compressed
	litType int // literals block type, compressed blocks only
	streams int // Huffman streams (1 or 4) of compressed literals
	nbSeq   int
	modes   [3]int // LL, OF, ML symbol compression modes
}

// walkFrame reads the block structure of one of our frames (single
// segment or window descriptor, no dictionary, no checksum): enough to see
// which coding paths a test exercised.
func walkFrame(t testing.TB, f []byte) []blockInfo {
	t.Helper()
	fhd := f[4]
	p := 5
	if fhd&0x20 == 0 {
		p++ // window descriptor
	}
	p += map[byte]int{0: map[bool]int{true: 1, false: 0}[fhd&0x20 != 0], 1: 2, 2: 4, 3: 8}[fhd>>6]
	var out []blockInfo
	for {
		h := int(f[p]) | int(f[p+1])<<8 | int(f[p+2])<<16
		p += 3
		b := blockInfo{typ: h >> 1 & 3}
		size := h >> 3
		if b.typ == 2 {
			q := p
			lt, sf := int(f[q]&3), int(f[q]>>2&3)
			b.litType = lt
			var lhs, csize int
			switch {
			case lt < 2 && sf&1 == 0:
				lhs, csize = 1, int(f[q]>>3)
			case lt < 2 && sf == 1:
				lhs, csize = 2, int(f[q]>>4)|int(f[q+1])<<4
			case lt < 2:
				lhs, csize = 3, int(f[q]>>4)|int(f[q+1])<<4|int(f[q+2])<<12
			default:
				v := uint64(f[q]) | uint64(f[q+1])<<8 | uint64(f[q+2])<<16 | uint64(f[q+3])<<24 | uint64(f[q+4])<<32
				b.streams = 4
				switch sf {
				case 0, 1:
					lhs, csize = 3, int(v>>14&1023)
					if sf == 0 {
						b.streams = 1
					}
				case 2:
					lhs, csize = 4, int(v>>18&16383)
				case 3:
					lhs, csize = 5, int(v>>22&262143)
				}
			}
			if lt == 1 {
				csize = 1
			}
			q += lhs + csize
			switch n := int(f[q]); {
			case n < 128:
				b.nbSeq, q = n, q+1
			case n < 255:
				b.nbSeq, q = (n-128)<<8|int(f[q+1]), q+2
			default:
				b.nbSeq, q = int(f[q+1])|int(f[q+2])<<8+0x7f00, q+3
			}
			if b.nbSeq > 0 {
				m := f[q]
				b.modes = [3]int{int(m >> 6), int(m >> 4 & 3), int(m >> 2 & 3)}
			}
		}
		out = append(out, b)
		if b.typ == 1 {
			size = 1
		}
		p += size
		if h&1 == 1 {
			return out
		}
	}
}

// TestCodingPaths: the inputs of TestRoundTrip between them use every
// block type, every literals type (raw, RLE, one and four Huffman
// streams with a table of their own or the previous block's), the 1- and
// 2-byte sequence counts (TestSequenceCounts has the
// rest), and predefined, RLE and own FSE tables for each of the three
// code streams; the frames decode.
func TestCodingPaths(t *testing.T) {
	var e Encoder
	seen := map[string]bool{}
	check := func(src []byte) {
		f := e.EncodeAll(nil, src)
		if got := decodeKlauspost(t, f, len(src)); !bytes.Equal(got, src) {
			t.Fatal("round trip")
		}
		for _, b := range walkFrame(t, f) {
			seen[fmt.Sprintf("block %d", b.typ)] = true
			if b.typ != 2 {
				continue
			}
			seen[fmt.Sprintf("literals %d/%d", b.litType, b.streams)] = true
			switch {
			case b.nbSeq == 0:
				seen["nbSeq 0"] = true
			case b.nbSeq < 128:
				seen["nbSeq 1 byte"] = true
			case b.nbSeq < 0x7f00:
				seen["nbSeq 2 bytes"] = true
			default:
				seen["nbSeq 3 bytes"] = true
			}
			for i, m := range b.modes {
				if b.nbSeq > 0 {
					seen[fmt.Sprintf("%s mode %d", []string{"LL", "OF", "ML"}[i], m)] = true
				}
			}
		}
	}
	for _, n := range []int{100, 1000, 5000, 128 << 10, 300 << 10} {
		for _, src := range inputs(n, uint64(n)) {
			check(src)
		}
	}
	for _, want := range []string{"block 0", "block 1", "block 2",
		"literals 0/0", "literals 1/0", "literals 2/1", "literals 2/4", "literals 3/4", "literals 3/1",
		"nbSeq 0", "nbSeq 1 byte", "nbSeq 2 bytes",
		"LL mode 0", "LL mode 1", "LL mode 2", "OF mode 0", "OF mode 1", "OF mode 2", "ML mode 0", "ML mode 1", "ML mode 2"} {
		if !seen[want] {
			t.Errorf("no test input coded with %s", want)
		}
	}
}

// TestMultiSegment: above 8 MiB the frame has a window descriptor and
// matches stay within the window: a copy of one random stretch 8 MiB on
// is matched, of another 9.1 MiB on is not (a decoder would refuse an
// offset past the window).
func TestMultiSegment(t *testing.T) {
	const half = 1 << 19
	src := make([]byte, 11<<20+77)
	r := rand.New(rand.NewPCG(1, 9))
	for i := 0; i < 2*half; i++ {
		src[i] = byte(r.Uint32())
	}
	copy(src[8<<20:], src[:half])                    // 8 MiB back: within the window
	copy(src[9<<20+half+100<<10:], src[half:2*half]) // 9.1 MiB back: past it
	var e Encoder
	f := e.EncodeAll(nil, src)
	if f[4] != 0x80 {
		t.Fatalf("frame header descriptor %#x, want 0x80 (window descriptor, 4-byte content size)", f[4])
	}
	if got := decodeKlauspost(t, f, len(src)); !bytes.Equal(got, src) {
		t.Fatal("round trip")
	}
	if out := libzstdDecode(t, f); !bytes.Equal(out, src) {
		t.Fatal("libzstd round trip")
	}
	// Both stretches, then the second once more as literals.
	if len(f) < 3*half || len(f) > 3*half+100<<10 {
		t.Errorf("%d bytes, want about %d: the first copy matched, the second not", len(f), 3*half)
	}
}

// TestNoAlloc: with room in dst and a used Encoder, EncodeAll does not
// allocate.
func TestNoAlloc(t *testing.T) {
	var e Encoder
	for name, src := range inputs(300<<10, 1) {
		dst := make([]byte, 0, MaxEncodedSize(len(src)))
		e.EncodeAll(dst, src)
		if a := testing.AllocsPerRun(3, func() { e.EncodeAll(dst, src) }); a != 0 {
			t.Errorf("%s: %v allocations", name, a)
		}
	}
}

// TestDeterministic: the bytes depend only on the input, not on what the
// Encoder coded before (DESIGN.md rule 7).
func TestDeterministic(t *testing.T) {
	var used Encoder
	for _, n := range []int{1000, 200 << 10} {
		for name, src := range inputs(n, 3) {
			var fresh Encoder
			if !bytes.Equal(used.EncodeAll(nil, src), fresh.EncodeAll(nil, src)) {
				t.Errorf("%s/%d: a used encoder wrote other bytes", name, n)
			}
		}
	}
}

func FuzzEncode(f *testing.F) {
	for name, src := range inputs(600, 2) {
		f.Add(src, name == "noise")
	}
	f.Add([]byte{}, false)
	var e Encoder
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, twice bool) {
		if twice { // repeat the input: long matches, repeat offsets
			b = append(append([]byte(nil), b...), b...)
		}
		frame := e.EncodeAll(nil, b)
		if len(frame) > MaxEncodedSize(len(b)) {
			t.Fatalf("%d bytes > bound %d", len(frame), MaxEncodedSize(len(b)))
		}
		got, err := d.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestSequenceCounts codes blocks of made-up sequences, from none to more
// than 0x7f00 (the 3-byte count), and has klauspost and libzstd decode
// them: the count forms, and FSE tables over many sequences, as decoders
// read them.
func TestSequenceCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	var all, want []byte
	for _, nb := range []int{0, 1, 127, 128, 0x7eff, 0x7f00, 40000} {
		t.Run(fmt.Sprint(nb), func(t *testing.T) {
			var e Encoder
			e.rep = [3]uint32{1, 4, 8}
			// Execute the sequences as a decoder would, to know the bytes.
			// A compressed block may not be larger than the frame's
			// content (Block_Maximum_Size is the window, the content size
			// here): with few sequences, the literals are one byte
			// repeated and the match is long.
			data := make([]byte, 0, 128<<10)
			for range 8 {
				data = append(data, byte(r.Uint32()))
			}
			if nb <= 1 {
				data = bytes.Repeat([]byte{7}, 300)
			}
			e.lits = append(e.lits[:0], data...)
			e.seqs = e.seqs[:0]
			for i := range nb {
				ll := 0
				if i == 0 {
					ll = len(data)
				}
				off := 1 + r.IntN(min(len(data), 300))
				ml := 3 + r.IntN(2)
				if nb == 1 {
					ml = 500
				}
				if nb > 30000 {
					ml = 3 // within one block
				}
				for range ml {
					data = append(data, data[len(data)-off]) // byte by byte: overlaps allowed
				}
				e.seqs = append(e.seqs, sequence{litLen: uint32(ll), matchLen: uint32(ml), offBase: uint32(off + 3)})
			}
			if nb == 0 {
				e.lits = e.lits[:len(data)]
			}
			body := e.compressed(nil, 1<<30)
			frame := appendFrameHeader(nil, len(data))
			frame = append(blockHeader(frame, true, blockCompressed, len(body)), body...)
			if got := decodeKlauspost(t, frame, len(data)); !bytes.Equal(got, data) {
				t.Fatalf("decoded bytes differ at %d", firstDiff(got, data))
			}
			if b := walkFrame(t, frame); b[0].nbSeq != nb {
				t.Fatalf("walked %d sequences, want %d", b[0].nbSeq, nb)
			}
			if testing.Verbose() {
				libzstdDecode(t, frame)
			}
			all = append(all, frame...)
			want = append(want, data...)
		})
	}
	if out := libzstdDecode(t, all); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded the blocks to other bytes (at %d)", firstDiff(out, want))
	}
}

// TestRawBlockKeepsRepeats: a block stored raw after all (its sequences
// coded no smaller) leaves the decoder's repeat offsets as they were, so
// the encoder must forget the offsets it parsed there. Block 2 is noise
// with one 8-byte repeat 290 bytes back near its start, where the parser
// still looks at most bytes (parsed, then stored raw: 8 bytes do not pay
// for a sequence); block 3 continues with a long copy 290 bytes back,
// which the parser codes as "repeat offset 1" only if it kept block 2's
// offsets.
func TestRawBlockKeepsRepeats(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	src := make([]byte, 3*maxBlock)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	for i := 0; i < maxBlock; i++ {
		src[i] = byte(i / 1000) // block 1: compressible
	}
	p := maxBlock + 300
	copy(src[p:p+8], src[p-290:])
	for i := 2*maxBlock + 1; i < 2*maxBlock+20000; i++ {
		src[i] = src[i-290]
	}
	var e Encoder
	f := e.EncodeAll(nil, src)
	if b := walkFrame(t, f); len(b) != 3 || b[1].typ != blockRaw || b[2].typ != blockCompressed {
		t.Fatalf("blocks %+v: want compressed, raw, compressed", b)
	}
	if got := decodeKlauspost(t, f, len(src)); !bytes.Equal(got, src) {
		t.Fatalf("decoded bytes differ at %d", firstDiff(got, src))
	}
	// The parse of block 2 did find the repeat (else this tests nothing).
	clear(e.table[:])
	e.rep = [3]uint32{1, 4, 8}
	e.parse(src, 0, maxBlock, len(src))
	e.parse(src, maxBlock, 2*maxBlock, len(src))
	if len(e.seqs) != 1 || e.rep[0] != 290 {
		t.Fatalf("block 2 parsed to %v, rep %v: want one match 290 back", e.seqs, e.rep)
	}
}
