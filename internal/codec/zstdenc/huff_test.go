package zstdenc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// skewed is n bytes with no repeats worth matching (every 8th byte noise)
// and a byte distribution where symbol s has weight about 1/ratio^s: the
// Huffman codes get deeper than huffMaxBits for ratio 2 (counts halving)
// and stay shallow near 1, so both the length limit and plain codes run.
func skewed(n int, ratio float64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 5))
	b := make([]byte, n)
	for i := range b {
		if i%8 == 7 {
			b[i] = byte(r.Uint32())
			continue
		}
		s := 0
		for s < 255 && r.Float64() > 1/ratio {
			s++
		}
		b[i] = byte(s)
	}
	return b
}

// TestHuffmanShapes: literals of skewed distributions, from deep codes
// that need limiting to nearly flat ones, in blocks of one and four
// streams and several blocks (the previous table reused or not), decode
// with klauspost and libzstd; the limited code lengths are complete.
func TestHuffmanShapes(t *testing.T) {
	var e Encoder
	var all, want []byte
	for _, ratio := range []float64{1.01, 1.1, 1.5, 2, 3, 8} {
		for _, n := range []int{100, 1000, 5000, 128 << 10, 300 << 10} {
			t.Run(fmt.Sprintf("%v/%d", ratio, n), func(t *testing.T) {
				src := skewed(n, ratio, uint64(n))
				f := e.EncodeAll(nil, src)
				if got := decodeKlauspost(t, f, n); !bytes.Equal(got, src) {
					t.Fatalf("decoded bytes differ at %d", firstDiff(got, src))
				}
				all = append(all, f...)
				want = append(want, src...)
			})
		}
	}
	if out := libzstdDecode(t, all); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded other bytes (at %d)", firstDiff(out, want))
	}
}

// TestLimitLengths: counts that make a Huffman tree deeper than the limit
// come out complete (Kraft sum exactly one) and within it.
func TestLimitLengths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts func(s int) uint32
		nsym   int
	}{
		{"fibonacci-like", func(s int) uint32 { return uint32(1) << min(s, 30) }, 31},
		{"halving-256", func(s int) uint32 { return 1 + uint32(1<<20)>>min(s, 31) }, 256},
		{"one-heavy", func(s int) uint32 { return map[bool]uint32{true: 1 << 24, false: 1}[s == 0] }, 256},
		{"flat", func(int) uint32 { return 7 }, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h huffEnc
			for s := range tc.nsym {
				h.count[s] = tc.counts(s)
			}
			maxLen := h.buildLengths(tc.nsym - 1)
			if maxLen == 0 || maxLen > huffMaxBits {
				t.Fatalf("longest length %d", maxLen)
			}
			kraft := 0
			for s := range tc.nsym {
				l := int(h.length[s])
				if l == 0 || l > maxLen {
					t.Fatalf("symbol %d: length %d", s, l)
				}
				kraft += 1 << (huffMaxBits - l)
			}
			if kraft != 1<<huffMaxBits {
				t.Fatalf("Kraft sum %d/%d", kraft, 1<<huffMaxBits)
			}
		})
	}
}

// FuzzLiterals: skewed literal blocks of fuzzed size, shape and seed
// round-trip (FuzzEncode's inputs are too short for four streams).
func FuzzLiterals(f *testing.F) {
	f.Add(uint16(200), uint8(100), uint64(1))
	f.Add(uint16(40000), uint8(1), uint64(2))
	var e Encoder
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, n uint16, shape uint8, seed uint64) {
		src := skewed(int(n)*5, 1+float64(shape)/32, seed)
		frame := e.EncodeAll(nil, src)
		got, err := d.DecodeAll(frame, nil)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// noise12 is n bytes of little-endian 12-bit uniform noise (the rand
// fill's literals: a high byte of 16 values, a low byte of 256): many
// symbols share a count, so balance has ties to swap.
func noise12(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 12))
	b := make([]byte, n)
	for i := 0; i+1 < n; i += 2 {
		v := r.Uint32() & 0xfff
		b[i], b[i+1] = byte(v), byte(v>>8)
	}
	return b
}

// TestStreamBytesExact: the stream lengths newTable and streamBytes
// predict (which choose the table and size the header) are the bytes the
// streams take once written, for one stream and for four of every
// remainder, with balancing and without.
func TestStreamBytesExact(t *testing.T) {
	for _, n := range []int{64, 100, 1023, 1024, 1025, 1026, 1027, 5000, 128 << 10} {
		for name, src := range map[string][]byte{"skewed": skewed(n, 1.5, uint64(n)), "noise12": noise12(n, uint64(n)), "flat": skewed(n, 1.01, 3)} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				var h huffEnc
				maxSym, _ := h.histogram(src)
				maxLen := h.buildLengths(maxSym)
				if maxLen == 0 {
					t.Fatal("no code")
				}
				single := n < 1024
				size := h.newTable(maxSym, maxLen, single)
				out := make([]byte, 2*n+64)
				pos := 0
				if single {
					pos = huffStream(out, 0, src, &h.code)
				} else {
					seg := (n + 3) / 4
					for k := range 4 {
						pos = huffStream(out, pos, src[min(k*seg, n):min((k+1)*seg, n)], &h.code)
					}
				}
				if want := size - len(h.desc); pos != want {
					t.Fatalf("streams took %d bytes, predicted %d", pos, want)
				}
				if got := h.streamBytes(&h.length, maxSym, single); got != pos {
					t.Fatalf("streamBytes %d, written %d", got, pos)
				}
			})
		}
	}
}

// TestBalance: on 12-bit noise, balancing keeps the code optimal (the same
// lengths and bits in all), never lengthens the streams, saves bytes over
// blocks (a few: about one in five saves a byte), and the frames decode with klauspost and libzstd.
func TestBalance(t *testing.T) {
	var e Encoder
	var all, want []byte
	saved := 0
	for seed := range uint64(64) {
		n := 128<<10 - int(seed)*7
		src := noise12(n, seed)
		var h huffEnc
		maxSym, _ := h.histogram(src)
		maxLen := h.buildLengths(maxSym)
		orig := h.length
		before := h.streamBytes(&orig, maxSym, false)
		if !h.balance(maxSym) {
			continue
		}
		after := h.streamBytes(&h.length, maxSym, false)
		if after >= before {
			t.Fatalf("seed %d: balanced streams %d bytes, %d before", seed, after, before)
		}
		saved += before - after
		if a, b := weigh(h.count[:maxSym+1], &orig), weigh(h.count[:maxSym+1], &h.length); a != b {
			t.Fatalf("seed %d: %d bits in all balanced, %d before", seed, b, a)
		}
		var ca, cb [huffMaxBits + 1]int
		for s := range 256 {
			ca[orig[s]]++
			cb[h.length[s]]++
		}
		if ca != cb || maxLen == 0 {
			t.Fatalf("seed %d: lengths by count %v, before %v", seed, cb, ca)
		}
		f := e.EncodeAll(nil, src)
		if got := decodeKlauspost(t, f, n); !bytes.Equal(got, src) {
			t.Fatalf("seed %d: decoded bytes differ at %d", seed, firstDiff(got, src))
		}
		all = append(all, f...)
		want = append(want, src...)
	}
	if saved < 4 {
		t.Fatalf("balancing saved %d bytes over 64 blocks of noise (12 when written)", saved)
	}
	if out := libzstdDecode(t, all); !bytes.Equal(out, want) {
		t.Fatalf("libzstd decoded other bytes (at %d)", firstDiff(out, want))
	}
	t.Logf("saved %d bytes over 64 blocks", saved)
}
