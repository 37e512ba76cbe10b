package blosc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// buffer assembles a blosc1 buffer by hand, so that tests can build what
// no encoder writes: header fields as given, then one bstart per block and
// each block's streams as [int32 size][bytes]. cbytes 0 means the real
// length.
type buffer struct {
	version, versionLZ, flags, typesize byte
	nbytes, blocksize, cbytes           int
	blocks                              [][][]byte
}

func (bb buffer) bytes() []byte {
	b := make([]byte, HeaderSize+4*len(bb.blocks))
	b[0], b[1], b[2], b[3] = bb.version, bb.versionLZ, bb.flags, bb.typesize
	binary.LittleEndian.PutUint32(b[4:], uint32(bb.nbytes))
	binary.LittleEndian.PutUint32(b[8:], uint32(bb.blocksize))
	for i, blk := range bb.blocks {
		binary.LittleEndian.PutUint32(b[HeaderSize+4*i:], uint32(len(b)))
		for _, s := range blk {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	cb := bb.cbytes
	if cb == 0 {
		cb = len(b)
	}
	binary.LittleEndian.PutUint32(b[12:], uint32(cb))
	return b
}

// lz4Block is src as one LZ4 block, which must be shorter than src (a
// stream as long as its share would be read as raw).
func lz4Block(t testing.TB, src []byte) []byte {
	t.Helper()
	out := make([]byte, lz4.CompressBlockBound(len(src)))
	var c lz4.Compressor
	n, err := c.CompressBlock(src, out)
	if err != nil || n == 0 || n >= len(src) {
		t.Fatalf("lz4 of %d bytes: %d, %v", len(src), n, err)
	}
	return out[:n]
}

// pattern is compressible and not periodic: byte i is i/40.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / 40)
	}
	return b
}

// rawZstdFrame is src in a zstd frame of raw blocks that declares no
// content size (FHD 0, window 1 KiB << exp): what a streaming zstd writer
// may produce, which only the decoder's cap stops.
func rawZstdFrame(src []byte) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3} // window 128 KiB
	for {
		n := min(len(src), 128<<10)
		last := 0
		if n == len(src) {
			last = 1
		}
		v := uint32(last | n<<3) // raw block
		b = append(b, byte(v), byte(v>>8), byte(v>>16))
		b = append(b, src[:n]...)
		src = src[n:]
		if last == 1 {
			return b
		}
	}
}

func zstdFrame(t testing.TB, src []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(src, nil)
}

// TestDecodeErrors triggers every error return of ParseHeader, DecodeN and
// Decode, each with the message that names it: disabling any one check
// makes its case fail (the buffer then decodes, or fails later with
// another message).
func TestDecodeErrors(t *testing.T) {
	var e Encoder
	good := e.Encode(nil, fill("ramp", 10000, 2), Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, BlockSize: 4096})
	mod := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	put := func(off int, v uint32) []byte {
		return mod(func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) })
	}
	ramp := pattern(1000)
	// One unsplit block of 1000 bytes with the given streams.
	one := func(c Compressor, streams ...[]byte) []byte {
		return buffer{version: 2, versionLZ: 1, flags: c.format()<<formatShift | flagDontSplit, typesize: 1,
			nbytes: 1000, blocksize: 1000, blocks: [][][]byte{streams}}.bytes()
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		// ParseHeader
		{"empty", nil, "shorter than"},
		{"version 3", mod(func(b []byte) { b[0] = 3 }), "format version 3"},
		{"version 0", mod(func(b []byte) { b[0] = 0 }), "format version 0"},
		{"typesize 0", mod(func(b []byte) { b[3] = 0 }), "typesize 0"},
		{"reserved", mod(func(b []byte) { b[2] |= 8 }), "reserved"},
		{"cbytes below header", put(12, 15), "less than the header"},
		{"nbytes over limit", put(4, 1<<31), "blosc1 limit"},
		{"blocksize 0", put(8, 0), "block size 0"},
		{"blocksize over limit", put(8, 1<<31), "block size 2147483648 out of range"},
		// decode
		{"truncated", good[:len(good)-1], "buffer has"},
		{"trailing", append(append([]byte(nil), good...), 0), "buffer has"},
		{"memcpy size", func() []byte {
			b := e.Encode(nil, fill("noise", 500, 1), Options{TypeSize: 1})
			binary.LittleEndian.PutUint32(b[4:], 499)
			return b
		}(), "memcpyed buffer"},
		{"blosclz", mod(func(b []byte) { b[2] = b[2]&0x1f | 0<<5 }), "not supported"},
		{"snappy", mod(func(b []byte) { b[2] = b[2]&0x1f | 2<<5 }), "not supported"},
		{"lz4 version", mod(func(b []byte) { b[1] = 2 }), "lz4 format version 2"},
		{"zstd version", func() []byte {
			b := one(Zstd, zstdFrame(t, ramp))
			b[1] = 0
			return b
		}(), "zstd format version 0"},
		{"nbytes 0", put(4, 0), "compressed buffer for 0 bytes"},
		{"huge nbytes lz4", put(4, 1<<30), "cannot come from"},
		{"huge nbytes zstd", func() []byte {
			b := one(Zstd, zstdFrame(t, ramp))
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b)*(1<<15)+1<<15))
			return b
		}(), "cannot come from"},
		{"bstarts past end", buffer{version: 2, versionLZ: 1, flags: 0x30, typesize: 1, nbytes: 100000, blocksize: 128,
			blocks: [][][]byte{{make([]byte, 500)}}}.bytes(), "block offsets do not fit"},
		{"bstart into bstarts", put(16, 3), "block 0 starts"},
		{"bstart past end", put(20, uint32(len(good))), "block 1 starts"},
		{"size field past end", put(20, uint32(len(good)-2)), "size field past the end"},
		{"csize too big", put(28, 1<<20), "compressed bytes"},
		{"csize negative", put(28, 0xffffffff), "compressed bytes"},
		{"csize 0", put(28, 0), "0 compressed bytes"},
		{"blocksize not a multiple of typesize", buffer{version: 2, versionLZ: 1, flags: 0x20, typesize: 2, nbytes: 1001, blocksize: 1001,
			blocks: [][][]byte{{make([]byte, 500), make([]byte, 500)}}}.bytes(), "does not split into 2 streams"},
		{"corrupt lz4", func() []byte {
			b := e.Encode(nil, make([]byte, 10000), Options{TypeSize: 2, CLevel: 1, Shuffle: ByteShuffle, BlockSize: 4096})
			p := binary.LittleEndian.Uint32(b[16:]) + 4 // first stream's data
			for i := p; i < p+8; i++ {
				b[i] = 0xff
			}
			return b
		}(), "lz4:"},
		{"corrupt zstd", one(Zstd, []byte("not a zstd frame")), "zstd:"},
		// A stream that decodes to fewer bytes than its share: c-blosc's
		// "nbytes != neblock" check. Without it the rest of the block
		// would silently keep whatever dst held (zeros for a new buffer).
		{"short lz4 stream", one(LZ4, lz4Block(t, ramp[:999])), "lz4 gave 999 bytes, want 1000"},
		{"short zstd stream", one(Zstd, zstdFrame(t, ramp[:999])), "zstd gave 999 bytes, want 1000"},
		{"short zstd stream without content size", one(Zstd, rawZstdFrame(ramp[:999])), "zstd gave 999 bytes, want 1000"},
		// Longer: the zstd output is capped at the stream's share.
		{"long zstd stream", one(Zstd, zstdFrame(t, append(ramp, 1))), "zstd:"},
		{"long zstd stream without content size", one(Zstd, rawZstdFrame(append(ramp, 1))), "zstd:"},
		{"lz4 frame as zstd", one(Zstd, lz4Block(t, ramp)), "zstd:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(nil, tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (%d bytes out), want %q", err, len(got), tc.want)
			}
		})
	}
	for _, b := range [][]byte{mod(func(b []byte) { b[2] = b[2]&0x1f | 0<<5 }), mod(func(b []byte) { b[2] = b[2]&0x1f | 3<<5 })} {
		if _, err := Decode(nil, b); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s blosc: %v is not ErrNotSupported", binary.LittleEndian.AppendUint16(nil, uint16(b[2])), err)
		}
	}
	// The hand-built buffers are right but for the flaw each case adds.
	for _, b := range [][]byte{one(LZ4, lz4Block(t, ramp)), one(Zstd, zstdFrame(t, ramp)), one(Zstd, rawZstdFrame(ramp)), one(Zstd, ramp)} {
		if got, err := Decode(nil, b); err != nil || !bytes.Equal(got, ramp) {
			t.Errorf("well-formed hand-built buffer: %v", err)
		}
	}
	var d Decoder
	if _, err := d.DecodeN(nil, good, 9999); err == nil || !strings.Contains(err.Error(), "decodes to 10000 bytes, want 9999") {
		t.Errorf("DecodeN with the wrong size: %v", err)
	}
	if _, err := d.DecodeN(nil, good[:10], 10000); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Errorf("DecodeN of a short buffer: %v", err)
	}
}

// TestDecodeSplitRule checks c-blosc 1.x's decoder rule for splits: a
// block is stored as typesize streams only when DONT_SPLIT is clear, it is
// not the leftover block, the typesize is at most 16 and it holds at least
// 128 elements (buffers from before the flag existed rely on the last two).
func TestDecodeSplitRule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ts       int
		n        int // block size = n (one block)
		streams  int
		leftover bool
	}{
		{"split", 2, 1024, 2, false},
		{"typesize 17 stays whole", 17, 17 * 128, 1, false},
		{"127 elements stay whole", 2, 254, 1, false},
		{"128 elements split", 2, 256, 2, false},
		{"leftover stays whole", 2, 1024, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pattern(tc.n)
			bb := buffer{version: 2, versionLZ: 1, flags: 0x20, typesize: byte(tc.ts), nbytes: tc.n, blocksize: tc.n}
			if tc.leftover {
				// A first full block of bs, then the leftover: two blocks.
				bb.blocksize = tc.n - 2
				full := src[:tc.n-2]
				ne := len(full) / tc.ts
				var blk0 [][]byte
				for j := 0; j < tc.ts; j++ {
					blk0 = append(blk0, lz4Block(t, full[j*ne:(j+1)*ne]))
				}
				bb.blocks = [][][]byte{blk0, {src[tc.n-2:]}} // leftover of 2 bytes, raw
			} else {
				ne := tc.n / tc.streams
				var blk [][]byte
				for j := 0; j < tc.streams; j++ {
					blk = append(blk, lz4Block(t, src[j*ne:(j+1)*ne]))
				}
				bb.blocks = [][][]byte{blk}
			}
			got, err := Decode(nil, bb.bytes())
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("decode: %v", err)
			}
		})
	}
}
