package blosc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/zarr/fixture"
)

// fill makes test inputs of the kinds the writer sees.
func fill(kind string, n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	switch kind {
	case "zeros":
	case "noise":
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case "ramp": // smooth 16-bit image-like data: shuffle pays off
		for i := 0; i+1 < n; i += 2 {
			v := uint16(i/2%700) + uint16(r.IntN(4))
			b[i], b[i+1] = byte(v), byte(v>>8)
		}
	case "mixed": // compressible and incompressible runs
		for i := range b {
			if (i/5000)%2 == 0 {
				b[i] = byte(r.Uint32())
			} else {
				b[i] = byte(i / 300)
			}
		}
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 7, 127, 128, 129, 1000, 4095, 65536, 65537, 100003, 1 << 20, 3<<20 + 5}
	var enc Encoder
	var dec Decoder
	var buf, out []byte
	for _, comp := range Compressors {
		for _, o := range []Options{
			{CLevel: 1, Shuffle: ByteShuffle},
			{CLevel: 5, Shuffle: NoShuffle, BlockSize: 4096},
			{CLevel: 9, Shuffle: ByteShuffle, BlockSize: 1000},
			{CLevel: 0, Shuffle: ByteShuffle},
			{CLevel: 1, Shuffle: BitShuffle, BlockSize: 3000},
			{CLevel: 1, Shuffle: BitShuffle},
		} {
			o.Compressor = comp
			for _, ts := range []int{1, 2, 4, 8} {
				o.TypeSize = ts
				for _, kind := range []string{"zeros", "noise", "ramp", "mixed"} {
					for _, n := range sizes {
						if n >= 1<<20 && (o.CLevel != 1 || kind == "mixed" || (n > 1<<20 && ts != 2)) {
							continue // keep -race runs short
						}
						if comp == Zstd && n > 4095 && (o.CLevel > 1 || ts == 8 || kind == "mixed" || (n > 65537 && (ts != 2 || kind != "ramp"))) {
							continue // klauspost is slow under -race
						}
						name := fmt.Sprintf("%v/ts%d/%s/%d/c%d-%v-bs%d", comp, ts, kind, n, o.CLevel, o.Shuffle, o.BlockSize)
						src := fill(kind, n, uint64(n))
						buf = enc.Encode(buf[:0], src, o)
						if len(buf) > MaxEncodedSize(n) {
							t.Fatalf("%s: %d bytes > bound %d", name, len(buf), MaxEncodedSize(n))
						}
						h, err := ParseHeader(buf)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if c, _ := h.Compressor(); h.NBytes != n || h.CBytes != len(buf) || h.TypeSize != ts || c != comp {
							t.Fatalf("%s: header %+v", name, h)
						}
						if mustCopy := o.CLevel == 0 || n < 128; (mustCopy && !h.Memcpyed()) || (kind == "zeros" && !mustCopy && h.Memcpyed()) {
							t.Errorf("%s: memcpyed = %v", name, h.Memcpyed())
						}
						out, err = dec.Decode(out, buf)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						if !bytes.Equal(out, src) {
							t.Fatalf("%s: round trip differs", name)
						}
						if out, err = dec.DecodeN(out, buf, n); err != nil || !bytes.Equal(out, src) {
							t.Fatalf("%s: DecodeN: %v", name, err)
						}
					}
				}
			}
		}
	}
}

// TestGeometry pins the block size and split rule both encoders share.
func TestGeometry(t *testing.T) {
	tests := []struct {
		name   string
		o      Options
		nbytes int
		bs     int
		split  bool
	}{
		{"lz4 default", Options{TypeSize: 2, CLevel: 1}, 1 << 20, 64 << 10, true},
		{"lz4 small chunk", Options{TypeSize: 2, CLevel: 1}, 1536, 1536, true},
		{"lz4 too few elements", Options{TypeSize: 4, CLevel: 1, BlockSize: 256}, 1 << 20, 256, false},
		{"lz4 typesize over 16", Options{TypeSize: 32, CLevel: 1}, 1 << 20, 64 << 10, false},
		{"lz4 typesize 16", Options{TypeSize: 16, CLevel: 1}, 1 << 20, 64 << 10, true},
		{"forced size rounds to typesize", Options{TypeSize: 8, BlockSize: 5007}, 100000, 5000, true},
		{"forced size at least 128", Options{TypeSize: 1, BlockSize: 5}, 100000, 128, true},
		{"zstd default", Options{TypeSize: 2, CLevel: 1, Compressor: Zstd}, 1 << 20, 32 << 10, false},
		{"zstd clevel 2", Options{TypeSize: 2, CLevel: 2, Compressor: Zstd}, 1 << 20, 64 << 10, false},
		{"zstd clevel 3", Options{TypeSize: 2, CLevel: 3, Compressor: Zstd}, 1 << 20, 128 << 10, false},
		{"zstd clevel 9 capped", Options{TypeSize: 2, CLevel: 9, Compressor: Zstd}, 1 << 20, 128 << 10, false},
		{"zstd clevel 0", Options{TypeSize: 2, Compressor: Zstd}, 1 << 20, 16 << 10, false},
		{"zstd chunk below the block", Options{TypeSize: 2, CLevel: 1, Compressor: Zstd}, 30000, 30000, false},
		{"zstd typesize 3", Options{TypeSize: 3, CLevel: 1, Compressor: Zstd}, 1 << 20, 32766, false},
		{"zstd forced", Options{TypeSize: 2, CLevel: 1, Compressor: Zstd, BlockSize: 4096}, 100000, 4096, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs, split := Geometry(tc.o, tc.nbytes)
			if bs != tc.bs || split != tc.split {
				t.Fatalf("Geometry(%+v, %d) = %d, %v; want %d, %v", tc.o, tc.nbytes, bs, split, tc.bs, tc.split)
			}
		})
	}
}

// TestZstdLevel pins c-blosc's clevel -> zstd level rule.
func TestZstdLevel(t *testing.T) {
	want := []int{0: -1, 1: 1, 2: 3, 3: 5, 4: 7, 5: 9, 6: 11, 7: 13, 8: 15, 9: 22}
	for clevel := 1; clevel <= 9; clevel++ {
		if got := ZstdLevel(clevel); got != want[clevel] {
			t.Errorf("clevel %d: zstd level %d, want %d", clevel, got, want[clevel])
		}
	}
}

// TestEncodeLayout pins the header and split rules of GPU-CODECS.md §2.2
// and, for zstd, c-blosc's: compressor code 4 and version byte 1, blocks
// never split.
func TestEncodeLayout(t *testing.T) {
	var e Encoder
	ramp := fill("ramp", 200000, 3)
	tests := []struct {
		name      string
		src       []byte
		o         Options
		flags     byte
		blocksize int
		memcpyed  bool
	}{
		{"shuffle split", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle}, 0x21, 65536, false},
		{"noshuffle split", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: NoShuffle}, 0x20, 65536, false},
		{"bitshuffle split", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle}, 0x24, 65536, false},
		{"too few elems to split", ramp, Options{TypeSize: 4, CLevel: 1, Shuffle: ByteShuffle, BlockSize: 256}, 0x31, 256, false},
		{"typesize over 16", ramp, Options{TypeSize: 32, CLevel: 1, Shuffle: ByteShuffle}, 0x31, 65536, false},
		{"clevel 0", ramp, Options{TypeSize: 2, Shuffle: ByteShuffle}, 0x23, 65536, true},
		{"tiny", ramp[:100], Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle}, 0x33, 100, true},
		{"noise", fill("noise", 70000, 1), Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle}, 0x23, 65536, true},
		{"odd blocksize rounds to typesize", make([]byte, 100000), Options{TypeSize: 8, CLevel: 1, Shuffle: NoShuffle, BlockSize: 5007}, 0x20, 5000, false},
		{"zstd shuffle", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, Compressor: Zstd}, 0x91, 32768, false},
		{"zstd noshuffle", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: NoShuffle, Compressor: Zstd, BlockSize: 65536}, 0x90, 65536, false},
		{"zstd bitshuffle", ramp, Options{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle, Compressor: Zstd}, 0x94, 32768, false},
		{"zstd clevel 0", ramp, Options{TypeSize: 2, Shuffle: ByteShuffle, Compressor: Zstd}, 0x93, 16384, true},
		{"zstd noise", fill("noise", 70000, 1), Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, Compressor: Zstd}, 0x93, 32768, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.Encode(nil, tc.src, tc.o)
			h, err := ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 2 || b[1] != 1 || h.Flags != tc.flags || h.BlockSize != tc.blocksize || h.Memcpyed() != tc.memcpyed {
				t.Fatalf("header % x: flags %#x blocksize %d, want %#x %d", b[:16], h.Flags, h.BlockSize, tc.flags, tc.blocksize)
			}
			if tc.memcpyed {
				if h.CBytes != len(tc.src)+16 || !bytes.Equal(b[16:], tc.src) {
					t.Fatal("memcpyed body wrong")
				}
				return
			}
			nblocks := (len(tc.src) + h.BlockSize - 1) / h.BlockSize
			if got := binary.LittleEndian.Uint32(b[16:]); int(got) != 16+4*nblocks {
				t.Errorf("bstarts[0] = %d, want %d", got, 16+4*nblocks)
			}
			if tc.o.Compressor == Zstd {
				// Each stream is one whole zstd frame with its content size,
				// as c-blosc's ZSTD_compressCCtx writes it.
				p := 16 + 4*nblocks + 4
				cs := int(binary.LittleEndian.Uint32(b[p-4:]))
				var zh zstd.Header
				if err := zh.Decode(b[p : p+cs]); err != nil || !zh.HasFCS || zh.FrameContentSize != uint64(min(h.BlockSize, len(tc.src))) || zh.HasCheckSum {
					t.Errorf("first stream's zstd header %+v: %v", zh, err)
				}
				// A shuffled block's byte planes are zstd blocks of their own.
				planes := 1
				if tc.o.Shuffle != NoShuffle {
					planes = tc.o.TypeSize
				}
				if n := zstdBlocks(t, b[p:p+cs], zh.HeaderSize); cs < h.BlockSize && n != planes {
					t.Errorf("first stream: %d zstd blocks, want %d (one per byte plane)", n, planes)
				}
			}
		})
	}
}

// TestRawStream checks the csize == neblock convention: a block whose one
// stream is incompressible and another compressible keeps the raw stream.
func TestRawStream(t *testing.T) {
	src := make([]byte, 4096)
	r := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < len(src); i += 2 {
		src[i] = byte(r.Uint32()) // low bytes: noise; high bytes: zero
	}
	var e Encoder
	b := e.Encode(nil, src, Options{TypeSize: 2, CLevel: 9, Shuffle: ByteShuffle})
	h, _ := ParseHeader(b)
	if h.Memcpyed() {
		t.Fatal("memcpyed")
	}
	if cs := binary.LittleEndian.Uint32(b[20:]); cs != 2048 {
		t.Errorf("low-byte stream csize %d, want raw 2048", cs)
	}
	if got, err := Decode(nil, b); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("decode: %v", err)
	}
	// zstd: a block of noise and then zeros keeps the noisy block raw.
	src = append(fill("noise", 4096, 3), make([]byte, 4096)...)
	b = e.Encode(nil, src, Options{TypeSize: 1, CLevel: 1, Compressor: Zstd, BlockSize: 4096})
	if cs := binary.LittleEndian.Uint32(b[24:]); cs != 4096 {
		t.Errorf("zstd noise block csize %d, want raw 4096", cs)
	}
	if got, err := Decode(nil, b); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("decode: %v", err)
	}
}

func TestEncodeNoAlloc(t *testing.T) {
	for _, tc := range []struct {
		kind string
		o    Options
	}{
		{"ramp+noise", Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle}},
		{"ramp+noise", Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, Compressor: Zstd}},
		{"ramp+noise", Options{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle, Compressor: Zstd}},
		// All noise: every stream is stored raw until the last no longer
		// fits, so the zstd frames near the end of dst do not fit its
		// spare capacity and need the encoder's own buffer.
		{"noise", Options{TypeSize: 2, CLevel: 1, Shuffle: NoShuffle, Compressor: Zstd, BlockSize: 64 << 10}},
	} {
		o := tc.o
		t.Run(fmt.Sprintf("%s/%v-%v", tc.kind, o.Compressor, o.Shuffle), func(t *testing.T) {
			var e Encoder
			src := fill("noise", 1<<20, 1)
			if tc.kind == "ramp+noise" {
				src = append(fill("ramp", 1<<20, 1), fill("noise", 300<<10, 1)...)
			}
			dst := make([]byte, 0, MaxEncodedSize(len(src)))
			e.Encode(dst, src, o)
			if a := testing.AllocsPerRun(5, func() {
				dst = e.Encode(dst[:0], src, o)
			}); a != 0 {
				t.Errorf("%v allocations per Encode", a)
			}
			var d Decoder
			out := make([]byte, len(src))
			d.Decode(out, dst)
			if a := testing.AllocsPerRun(5, func() { out, _ = d.Decode(out, dst) }); a != 0 && !(raceEnabled && o.Compressor == Zstd) {
				t.Errorf("%v allocations per Decode", a)
			}
			if !bytes.Equal(out, src) {
				t.Error("round trip differs")
			}
		})
	}
}

// TestEncodeNearLimit: a stream that shrinks, but not enough to fit what
// is left of the input-sized output, must not be written past it (c-blosc
// passes the compressor maxout = what is left): the buffer is then stored
// memcpyed. Eleven noisy blocks, stored raw, leave the twelfth stream
// 4000 bytes of its 4096; a run of z zeros at its start, z from 0 to 240,
// puts its compressed size on both sides of that line.
func TestEncodeNearLimit(t *testing.T) {
	var e Encoder
	var d Decoder
	for _, comp := range Compressors {
		memcpyed, runs := 0, 0
		for z := 0; z <= 240; z += 3 {
			runs++
			src := fill("noise", 12*4096, uint64(z))
			clear(src[11*4096 : 11*4096+z])
			b := e.Encode(nil, src, Options{TypeSize: 1, CLevel: 1, Shuffle: NoShuffle, BlockSize: 4096, Compressor: comp})
			if len(b) > MaxEncodedSize(len(src)) {
				t.Fatalf("%v, %d zeros: %d bytes, more than the input plus the header", comp, z, len(b))
			}
			if got, err := d.Decode(nil, b); err != nil || !bytes.Equal(got, src) {
				t.Fatalf("%v, %d zeros: round trip: %v", comp, z, err)
			}
			if h, _ := ParseHeader(b); h.Memcpyed() {
				memcpyed++
			}
		}
		if memcpyed == 0 || memcpyed == runs {
			t.Errorf("%v: %d of %d buffers memcpyed; the runs should cross from memcpyed to compressed", comp, memcpyed, runs)
		}
	}
}

// TestEncoderHistory: what an Encoder encoded before (other levels,
// compressors and block sizes) does not change what it writes now
// (DESIGN.md rule 7): every encoding equals a fresh encoder's.
func TestEncoderHistory(t *testing.T) {
	src := append(fill("ramp", 200000, 4), fill("ramp", 200000, 4)...) // matches 200 kB back
	opts := []Options{
		{TypeSize: 2, CLevel: 1, Compressor: Zstd, BlockSize: 4096},
		{TypeSize: 2, CLevel: 1, Compressor: Zstd, BlockSize: 512 << 10},
		{TypeSize: 2, CLevel: 5, Compressor: Zstd, BlockSize: 512 << 10},
		{TypeSize: 2, CLevel: 1, Compressor: LZ4},
		{TypeSize: 4, CLevel: 3, Shuffle: BitShuffle, Compressor: Zstd},
		{TypeSize: 2, CLevel: 1, Compressor: Zstd, BlockSize: 4096},
	}
	var used Encoder
	for i, o := range opts {
		var fresh Encoder
		want := fresh.Encode(nil, src, o)
		if got := used.Encode(nil, src, o); !bytes.Equal(got, want) {
			t.Errorf("options %d %+v: a used encoder wrote %d bytes, a fresh one %d", i, o, len(got), len(want))
		}
	}
	var fresh Encoder
	if a, b := fresh.Encode(nil, src, opts[2]), fresh.Encode(nil, src, opts[1]); bytes.Equal(a, b) {
		t.Error("clevel 5 and clevel 1 wrote the same bytes: the level does not reach zstd")
	}
}

// TestDecodeLongStreamStaysInside: a zstd stream that would decode to more
// than its share of the block is stopped at the share; bytes of dst past
// the buffer's decoded size are never written, even on error.
func TestDecodeLongStreamStaysInside(t *testing.T) {
	src := pattern(1100)
	b := buffer{version: 2, versionLZ: 1, flags: Zstd.format()<<formatShift | flagDontSplit, typesize: 1,
		nbytes: 1000, blocksize: 1000, blocks: [][][]byte{{rawZstdFrame(src)}}}.bytes()
	dst := bytes.Repeat([]byte{0xA5}, 2000)
	if _, err := Decode(dst[:0], b); err == nil {
		t.Fatal("a stream of 1100 bytes decoded into a 1000-byte block")
	}
	if bytes.Count(dst[1000:], []byte{0xA5}) != 1000 {
		t.Errorf("decoding wrote past the block into dst[1000:]: first changed byte %d", 1000+bytes.IndexFunc(dst[1000:], func(r rune) bool { return r != 0xA5 }))
	}
}

// fixtureShards returns the shard files of one tensorstore store by key.
func fixtureShards(t testing.TB, store string) map[string][]byte {
	t.Helper()
	files, err := fixture.Files("../../" + fixture.Tensorstore)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for name, b := range files {
		if rest, ok := strings.CutPrefix(name, store+"/"); ok && strings.HasPrefix(rest, "c/") {
			out[rest] = b
		}
	}
	if len(out) == 0 {
		t.Fatalf("no shards for %s", store)
	}
	return out
}

// innerChunks splits a shard (16 inner chunks, index at the end, crc32c)
// into its chunks by index position; nil for empty slots.
func innerChunks(t testing.TB, shard []byte) [][]byte {
	const n = 16
	idx := shard[len(shard)-16*n-4:]
	out := make([][]byte, n)
	for i := 0; i < n; i++ {
		off := binary.LittleEndian.Uint64(idx[16*i:])
		nb := binary.LittleEndian.Uint64(idx[16*i+8:])
		if off == ^uint64(0) {
			continue
		}
		out[i] = shard[off : off+nb]
	}
	return out
}

// TestTensorstoreFixture decodes every blosc-lz4 chunk tensorstore (c-blosc)
// wrote, compares it with the uncompressed store's chunk, and checks that
// our encoder reproduces c-blosc's bytes exactly.
func TestTensorstoreFixture(t *testing.T) {
	lz := fixtureShards(t, "a-lz4.zarr")
	raw := fixtureShards(t, "a-none.zarr")
	var e Encoder
	var d Decoder
	var n, memcpyed, same int
	for key, shard := range lz {
		rc := innerChunks(t, raw[key])
		for i, c := range innerChunks(t, shard) {
			if c == nil {
				if rc[i] != nil {
					t.Fatalf("%s[%d]: empty in lz4 store only", key, i)
				}
				continue
			}
			got, err := d.Decode(nil, c)
			if err != nil {
				t.Fatalf("%s[%d]: %v", key, i, err)
			}
			if !bytes.Equal(got, rc[i]) {
				t.Fatalf("%s[%d]: decoded chunk differs from the uncompressed store", key, i)
			}
			h, _ := ParseHeader(c)
			if h.Memcpyed() {
				memcpyed++
			}
			re := e.Encode(nil, got, Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle})
			if bytes.Equal(re, c) {
				same++
			}
			n++
		}
	}
	t.Logf("%d chunks (%d memcpyed), %d re-encoded byte-identical to c-blosc", n, memcpyed, same)
	if n != 600 || memcpyed == 0 {
		t.Errorf("%d chunks, %d memcpyed; the fixture has 600 with 224 memcpyed", n, memcpyed)
	}
	if same != n {
		t.Errorf("only %d of %d chunks re-encode to c-blosc's bytes", same, n)
	}
}

func FuzzDecode(f *testing.F) {
	// Small seeds of several blocks each: the fuzzer minimises every new
	// input it finds, which costs seconds on kilobyte inputs.
	var e Encoder
	for _, o := range []Options{
		{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, BlockSize: 256},
		{TypeSize: 4, CLevel: 5, BlockSize: 128},
		{TypeSize: 1, CLevel: 0},
		{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle, BlockSize: 160},
		{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, Compressor: Zstd, BlockSize: 256},
		{TypeSize: 4, CLevel: 1, Shuffle: BitShuffle, Compressor: Zstd, BlockSize: 192},
		{TypeSize: 8, CLevel: 3, Shuffle: NoShuffle, Compressor: Zstd, BlockSize: 200},
	} {
		f.Add(e.Encode(nil, fill("ramp", 600, 1), o))
		f.Add(e.Encode(nil, fill("mixed", 500, 1), o))
	}
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Decode(nil, b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes (with the same compressor, filter and
		// block size) and decodes back to the same bytes.
		h, _ := ParseHeader(b)
		c, ok := h.Compressor()
		if !ok {
			c = LZ4 // a memcpyed buffer may name any compressor
		}
		re := e.Encode(nil, out, Options{TypeSize: h.TypeSize, CLevel: 1, Shuffle: h.Shuffle(), BlockSize: h.BlockSize, Compressor: c})
		again, err := Decode(nil, re)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-encode round trip failed: %v", err)
		}
	})
}

// TestBitTranspose checks the bit shuffle against its definition, bit by
// bit: bit k of byte j of element i lands at bit (j*8+k)*n + i of the
// output, bits numbered from the least significant bit of byte 0.
func TestBitTranspose(t *testing.T) {
	for _, ts := range []int{1, 2, 3, 4, 8} {
		for _, n := range []int{8, 16, 64, 200} {
			t.Run(fmt.Sprintf("ts%d/n%d", ts, n), func(t *testing.T) {
				in := fill("noise", n*ts+ts/2, uint64(n*ts))
				out := make([]byte, len(in))
				bitTranspose(out, in, ts, false)
				bit := func(b []byte, pos int) byte { return b[pos/8] >> (pos % 8) & 1 }
				for i := 0; i < n; i++ {
					for j := 0; j < ts; j++ {
						for k := 0; k < 8; k++ {
							if bit(in, (i*ts+j)*8+k) != bit(out, (j*8+k)*n+i) {
								t.Fatalf("element %d byte %d bit %d misplaced", i, j, k)
							}
						}
					}
				}
				if !bytes.Equal(out[n*ts:], in[n*ts:]) {
					t.Error("trailing bytes not copied")
				}
				back := make([]byte, len(in))
				bitTranspose(back, out, ts, true)
				if !bytes.Equal(back, in) {
					t.Error("inverse differs")
				}
			})
		}
	}
	// Element counts that are not a multiple of 8 are left alone.
	in := fill("noise", 12, 1)
	out := make([]byte, 12)
	bitTranspose(out, in, 2, false)
	if !bytes.Equal(out, in) {
		t.Error("6 elements were transposed")
	}
}

// zstdBlocks counts the blocks of a zstd frame whose header is hdr bytes.
func zstdBlocks(t *testing.T, f []byte, hdr int) int {
	t.Helper()
	n := 0
	for p := hdr; p+3 <= len(f); n++ {
		v := int(f[p]) | int(f[p+1])<<8 | int(f[p+2])<<16
		size := v >> 3
		if v>>1&3 == 1 {
			size = 1 // RLE
		}
		p += 3 + size
		if v&1 == 1 {
			return n + 1
		}
	}
	t.Fatal("zstd frame without a last block")
	return 0
}
