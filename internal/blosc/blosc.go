package blosc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/zwrite/zwrite/internal/codec/lz4enc"
)

// Header layout and flag bits of a blosc1 buffer (c-blosc README_HEADER.rst).
const (
	HeaderSize = 16

	versionFormat   = 2 // BLOSC_VERSION_FORMAT written by c-blosc 1.x
	flagShuffle     = 0x01
	flagMemcpyed    = 0x02
	flagBitShuffle  = 0x04
	flagReserved    = 0x08
	flagDontSplit   = 0x10
	formatShift     = 5
	maxSplits       = 16
	minBufferSize   = 128 // MIN_BUFFERSIZE: smaller inputs are stored memcpyed
	maxTypeSize     = 255
	maxBlosc1Buffer = 1<<31 - 1 - HeaderSize // BLOSC_MAX_BUFFERSIZE
)

// DefaultBlockSize is the block size used when Options.BlockSize is 0,
// for both compressors. For LZ4, 64 KiB is what the GPU encoder uses (one
// CTA per block, LZ4 offsets stay below 64 KiB) and what c-blosc itself
// picks at clevel 1, so CPU and GPU stores have comparable ratios and
// c-blosc-like ones; for zstd see Geometry.
const DefaultBlockSize = 64 << 10

// Shuffle is the pre-compression filter recorded in the header flags. The
// zero value is ByteShuffle, the default of c-blosc, numcodecs and zwrite,
// so that a Spec or Options that leaves it out gets the usual filter.
type Shuffle int

const (
	ByteShuffle Shuffle = iota
	NoShuffle
	BitShuffle
)

// Shuffles lists every filter, for tests and help texts.
var Shuffles = []Shuffle{ByteShuffle, BitShuffle, NoShuffle}

func (s Shuffle) String() string {
	switch s {
	case NoShuffle:
		return "noshuffle"
	case ByteShuffle:
		return "shuffle"
	case BitShuffle:
		return "bitshuffle"
	}
	return fmt.Sprintf("shuffle(%d)", int(s))
}

// Compressor is the codec blosc runs on each block (header flags bits 5-7).
type Compressor int

const (
	LZ4 Compressor = iota
	Zstd
)

// Compressors lists every compressor this package encodes and decodes.
var Compressors = []Compressor{LZ4, Zstd}

func (c Compressor) String() string {
	switch c {
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compressor(%d)", int(c))
}

// format is the compressor's code in flags bits 5-7 (BLOSC_LZ4_FORMAT 1,
// BLOSC_ZSTD_FORMAT 4; blosc.h), and version the byte c-blosc writes at
// offset 1 and checks on decode for it (BLOSC_LZ4_VERSION_FORMAT and
// BLOSC_ZSTD_VERSION_FORMAT, both 1; c-blosc initialize_decompress_func
// refuses any other value).
func (c Compressor) format() byte {
	if c == Zstd {
		return 4
	}
	return 1
}

func (c Compressor) version() byte { return 1 }

// compressorOf maps a header's format code back; ok is false for the
// compressors this package does not read (blosclz, snappy, zlib).
func compressorOf(format byte) (Compressor, bool) {
	switch format {
	case 1:
		return LZ4, true
	case 4:
		return Zstd, true
	}
	return 0, false
}

// Options select how Encode compresses. The zero value is valid: typesize
// 1, clevel 0 (memcpy), byte shuffle (a no-op at typesize 1, but recorded in
// the flags as c-blosc does), LZ4, DefaultBlockSize.
type Options struct {
	TypeSize  int     // element size for shuffle and split, 1..255 (0 means 1)
	CLevel    int     // 0..9; 0 stores the input memcpyed
	Shuffle   Shuffle // NoShuffle, ByteShuffle or BitShuffle
	BlockSize int     // bytes per block; 0 means DefaultBlockSize
	// Compressor is LZ4 (the zero value) or Zstd.
	Compressor Compressor
}

// Geometry is the block size bs and split decision for a buffer of nbytes
// encoded with o: the one definition both the CPU encoder here and the GPU
// encoder (internal/gpu) follow, so that both write the same bytes. split
// means each block (but a short last one) is stored as typesize streams,
// one per byte plane.
//
// Split: as c-blosc 1.x in its default FORWARD_COMPAT mode (blosc.c
// split_block), only LZ4 splits (zstd blocks are one stream), and only
// for typesize <= 16 with at least 128 elements per block. numcodecs'
// c-blosc writes zstd buffers with DONT_SPLIT set (checked by
// TestNumcodecs).
//
// Block size: o.BlockSize, else for LZ4 DefaultBlockSize (64 KiB, what
// c-blosc picks at clevel 1) and for zstd what c-blosc's compute_blocksize
// picks at the clevel (32 KiB at clevel 1, 64 KiB at 2, 128 KiB from 3 on,
// where c-blosc goes on to 256 KiB-1 MiB: zstdBlockSize), clamped as
// c-blosc clamps a forced size. Any reader decodes any block size (it is
// in the header). Both encoders code each byte plane of a shuffled zstd
// block as a zstd block of its own (one literal table for the noisy low
// bytes, another for the smooth high ones), which gives 12-bit noise 1.33
// where one table for the whole block gives 1.17. With that, measured on
// the 2-core dev VM (CPU encoder, byte shuffle, clevel 1, uint16; libzstd
// level 1 on the same blocks, shuffled, as c-blosc codes them):
//
//	data (chunks)                      32 KiB  64 KiB  libzstd 32 KiB
//	camera file (64x256x256, 8 MiB)    2.497   2.473   2.465
//	orca2 camera fill (32x1x64x64)     2.767   2.776   2.731
//	orca2 thirds fill (32x1x64x64)     4.612   4.642   4.426
//
// Large frames tiled as in the camera file gain from c-blosc's 32 KiB
// (the literal statistics follow the scene row band by row band), deep
// small tiles lose 0.3-0.6 %; c-blosc's own choice is the default, and a
// higher clevel gives larger blocks.
func Geometry(o Options, nbytes int) (bs int, split bool) {
	ts := max(o.TypeSize, 1)
	want := o.BlockSize
	if want == 0 {
		want = DefaultBlockSize
		if o.Compressor == Zstd {
			want = zstdBlockSize(o.CLevel)
		}
	}
	bs = blockSize(nbytes, ts, want)
	split = o.Compressor == LZ4 && ts <= maxSplits && bs/ts >= minBufferSize
	return bs, split
}

// zstdBlockSize is the block size c-blosc 1.x's compute_blocksize picks
// for zstd at clevel (L1 = 32 KiB, doubled for its high-ratio codecs,
// then scaled by the level: clevel 1 halves it, 2 keeps it, 3 doubles
// it), at most maxZstdBlock.
func zstdBlockSize(clevel int) int {
	bs := 2 * 32 << 10
	switch {
	case clevel <= 0:
		bs /= 4
	case clevel == 1:
		bs /= 2
	case clevel == 3:
		bs *= 2
	case clevel >= 4:
		bs *= 4
	}
	return min(bs, maxZstdBlock)
}

// maxZstdBlock caps zstd's blocks where c-blosc would go past it (clevel
// 4 and up): the GPU encoder takes a blosc block as one zstd frame of
// one zstd block per byte plane, of at most 128 KiB.
const maxZstdBlock = 128 << 10

// MaxEncodedSize is the largest buffer Encode produces for n input bytes.
func MaxEncodedSize(n int) int { return n + HeaderSize }

// Encoder compresses chunks into blosc1 buffers. Reuse one per worker: it
// keeps the LZ4 hash tables, the zstd encoder and the shuffle scratch
// block, so Encode does not allocate once dst has room. Not safe for
// concurrent use. The zero value is ready to use and holds no resources
// beyond memory (the zstd encoder runs no goroutines: EncodeAll only).
type Encoder struct {
	lz  lz4enc.Compressor
	zs  zstdEncoder
	tmp []byte
}

// Encode appends the blosc1 buffer of src to dst and returns the extended
// slice (like append: no allocation when cap(dst)-len(dst) is at least
// MaxEncodedSize(len(src))). It follows c-blosc 1.x's blosc_c exactly:
// LZ4 with acceleration 10-clevel (LZ4_compress_fast, as c-blosc calls
// it; internal/codec/lz4enc writes lz4.c's bytes) or zstd at level 2*clevel-1 (ZstdLevel), blocks split into typesize
// byte-plane streams when Geometry says so, a stream stored raw when the
// compressor does not shrink it, and the whole buffer stored memcpyed when
// clevel is 0, the input is under 128 bytes, or the compressed form would
// be larger than the input plus the header.
//
// It panics if o is out of range or src exceeds the blosc1 limit of about
// 2 GiB; callers validate options once, not per chunk.
func (e *Encoder) Encode(dst, src []byte, o Options) []byte {
	return e.encode(dst, src, o, false)
}

// PreShuffled reports whether EncodeShuffled takes a buffer of nbytes
// encoded with o, and the block size its layout follows: byte shuffle of
// a typesize above 1, at a clevel that compresses, on a buffer long enough
// to be compressed (otherwise Encode stores the input as it is, and there
// is no shuffle to do ahead).
func PreShuffled(o Options, nbytes int) (bs int, ok bool) {
	if o.Shuffle != ByteShuffle || o.TypeSize < 2 || o.TypeSize > maxTypeSize || o.CLevel < 1 || o.CLevel > 9 || nbytes < minBufferSize || nbytes > maxBlosc1Buffer {
		return 0, false
	}
	bs, _ = Geometry(o, nbytes)
	return bs, true
}

// ShuffledOffset is where byte x of a buffer of nbytes lands when each
// block of bs bytes is byte-shuffled on its own for typesize ts, as
// Encode shuffles it: byte j of element i of a block to plane j at i; the
// len%ts trailing bytes of a block stay where they are.
func ShuffledOffset(x, nbytes, bs, ts int) int {
	b, r := x/bs, x%bs
	n := min(bs, nbytes-b*bs) / ts
	if r >= n*ts {
		return x
	}
	return b*bs + (r%ts)*n + r/ts
}

// EncodeShuffled is Encode of a buffer whose blocks are already byte
// shuffled (each block of PreShuffled's size as shuffle would leave it,
// ShuffledOffset): the same bytes Encode writes for the unshuffled input,
// without the shuffle pass. A producer that copies the data anyway can
// shuffle while it copies (the CPU stage's scatter does), so the
// compressor reads each block once. o must be one PreShuffled accepts for
// len(src); it panics otherwise.
func (e *Encoder) EncodeShuffled(dst, src []byte, o Options) []byte {
	if _, ok := PreShuffled(o, len(src)); !ok {
		panic(fmt.Sprintf("blosc: EncodeShuffled with options %+v on %d bytes", o, len(src)))
	}
	return e.encode(dst, src, o, true)
}

// encode is Encode; with pre, src's blocks are already shuffled (o is
// then one PreShuffled accepts).
func (e *Encoder) encode(dst, src []byte, o Options, pre bool) []byte {
	ts := o.TypeSize
	if ts == 0 {
		ts = 1
	}
	if ts < 0 || ts > maxTypeSize || o.CLevel < 0 || o.CLevel > 9 || o.BlockSize < 0 ||
		o.Shuffle < ByteShuffle || o.Shuffle > BitShuffle || o.Compressor < LZ4 || o.Compressor > Zstd {
		panic(fmt.Sprintf("blosc: invalid options %+v", o))
	}
	if len(src) > maxBlosc1Buffer {
		panic(fmt.Sprintf("blosc: %d bytes exceed the blosc1 limit", len(src)))
	}
	nbytes := len(src)
	bs, split := Geometry(o, nbytes)

	flags := o.Compressor.format() << formatShift
	switch o.Shuffle {
	case ByteShuffle:
		flags |= flagShuffle
	case BitShuffle:
		flags |= flagBitShuffle
	}
	if !split {
		flags |= flagDontSplit
	}

	start := len(dst)
	limit := start + nbytes + HeaderSize // numcodecs' destsize: never exceed it
	dst = slices.Grow(dst, nbytes+HeaderSize)
	memcpyed := func(dst []byte) []byte {
		if pre {
			return e.appendUnshuffled(dst, src, flags, o.Compressor, ts, bs)
		}
		return appendMemcpyed(dst, src, flags, o.Compressor, ts, bs)
	}
	if o.CLevel == 0 || nbytes < minBufferSize {
		return memcpyed(dst)
	}

	nblocks := (nbytes + bs - 1) / bs
	leftover := nbytes % bs
	// Header and bstarts; bstarts are filled in as blocks are written.
	pos := start + HeaderSize + 4*nblocks
	if pos > limit {
		return memcpyed(dst)
	}
	dst = dst[:limit]
	putHeader(dst[start:], flags, o.Compressor, ts, nbytes, bs, 0)
	// As c-blosc: byte shuffle only for typesize > 1, bit shuffle for any
	// block at least one element long.
	doShuffle := (o.Shuffle == ByteShuffle && ts > 1) || o.Shuffle == BitShuffle
	if doShuffle && !pre && len(e.tmp) < bs {
		e.tmp = make([]byte, bs)
	}
	accel := 10 - o.CLevel // c-blosc get_accel for LZ4
	if o.Compressor == Zstd {
		e.zs.prepare(ZstdLevel(o.CLevel), bs)
	}
	for b := 0; b < nblocks; b++ {
		binary.LittleEndian.PutUint32(dst[start+HeaderSize+4*b:], uint32(pos-start))
		block := src[b*bs : min((b+1)*bs, nbytes)]
		if doShuffle && !pre && (o.Shuffle == ByteShuffle || len(block) >= ts) {
			if o.Shuffle == ByteShuffle {
				shuffle(e.tmp[:len(block)], block, ts)
			} else {
				bitTranspose(e.tmp[:len(block)], block, ts, false)
			}
			block = e.tmp[:len(block)]
		}
		nsplits := 1
		if split && !(leftover > 0 && b == nblocks-1) {
			nsplits = ts
		}
		neblock := len(block) / nsplits
		for j := 0; j < nsplits; j++ {
			stream := block[j*neblock : (j+1)*neblock]
			pos += 4
			// c-blosc's maxout: the stream may not grow, nor run past the
			// buffer's limit.
			maxout := min(neblock, limit-pos)
			if maxout <= 0 {
				return memcpyed(dst[:start])
			}
			var n int
			if o.Compressor == LZ4 {
				n = e.lz.CompressBlock(stream, dst[pos:pos+maxout], accel)
			} else {
				planes := 1
				if block := len(stream); (o.Shuffle == ByteShuffle && ts > 1) || (o.Shuffle == BitShuffle && block >= ts && (block/ts)%8 == 0) {
					// Byte shuffle puts each byte of the elements in a plane
					// of its own; so does bit shuffle (the 8 bit planes of
					// each byte lie together) when it ran.
					planes = ts
				}
				n = e.zs.compress(dst[:pos], stream, maxout, planes)
			}
			if n == 0 || n >= neblock {
				// The compressor could not shrink it: store the stream raw
				// (the decoder recognises csize == neblock), if it fits.
				if pos+neblock > limit {
					return memcpyed(dst[:start])
				}
				copy(dst[pos:], stream)
				n = neblock
			}
			binary.LittleEndian.PutUint32(dst[pos-4:], uint32(n))
			pos += n
		}
	}
	binary.LittleEndian.PutUint32(dst[start+12:], uint32(pos-start))
	return dst[:pos]
}

// blockSize mirrors c-blosc's compute_blocksize for a forced size: at least
// MIN_BUFFERSIZE, at most nbytes, a multiple of the typesize.
func blockSize(nbytes, ts, want int) int {
	bs := want
	if bs < minBufferSize {
		bs = minBufferSize
	}
	if bs > nbytes {
		bs = nbytes
	}
	if bs > ts {
		bs = bs / ts * ts
	}
	return bs
}

func putHeader(h []byte, flags byte, c Compressor, ts, nbytes, bs, cbytes int) {
	h[0] = versionFormat
	h[1] = c.version()
	h[2] = flags
	h[3] = byte(ts)
	binary.LittleEndian.PutUint32(h[4:], uint32(nbytes))
	binary.LittleEndian.PutUint32(h[8:], uint32(bs))
	binary.LittleEndian.PutUint32(h[12:], uint32(cbytes))
}

// appendMemcpyed appends the header with MEMCPYED set (c-blosc keeps the
// other flag bits) and the raw input. dst has the capacity already.
func appendMemcpyed(dst, src []byte, flags byte, c Compressor, ts, bs int) []byte {
	start := len(dst)
	dst = dst[:start+HeaderSize]
	putHeader(dst[start:], flags|flagMemcpyed, c, ts, len(src), bs, len(src)+HeaderSize)
	return append(dst, src...)
}

// appendUnshuffled is appendMemcpyed for a buffer whose blocks are
// shuffled (EncodeShuffled): the stored bytes are the input's own order,
// so each block is unshuffled into place.
func (e *Encoder) appendUnshuffled(dst, src []byte, flags byte, c Compressor, ts, bs int) []byte {
	start := len(dst)
	dst = dst[:start+HeaderSize+len(src)]
	putHeader(dst[start:], flags|flagMemcpyed, c, ts, len(src), bs, len(src)+HeaderSize)
	out := dst[start+HeaderSize:]
	for off := 0; off < len(src); off += bs {
		end := min(off+bs, len(src))
		unshuffle(out[off:end], src[off:end], ts)
	}
	return dst
}

// Header is a parsed blosc1 header.
type Header struct {
	Version   uint8
	VersionLZ uint8
	Flags     uint8
	TypeSize  int
	NBytes    int // decoded size
	BlockSize int
	CBytes    int // whole buffer size, header included
}

// Memcpyed reports whether the data follows the header uncompressed.
func (h Header) Memcpyed() bool { return h.Flags&flagMemcpyed != 0 }

// Shuffle is the filter recorded in the flags.
func (h Header) Shuffle() Shuffle {
	// c-blosc's decoder tests the byte-shuffle bit first.
	switch {
	case h.Flags&flagShuffle != 0:
		return ByteShuffle
	case h.Flags&flagBitShuffle != 0:
		return BitShuffle
	}
	return NoShuffle
}

// Split reports whether the header allows full blocks to be stored as
// TypeSize streams (the DONT_SPLIT bit is clear). Whether a given block is
// split also depends on its size: see the decoder.
func (h Header) Split() bool { return h.Flags&flagDontSplit == 0 }

// CompressorName is the compressor recorded in flags bits 5-7.
func (h Header) CompressorName() string {
	names := []string{"blosclz", "lz4", "snappy", "zlib", "zstd"}
	if c := int(h.Flags >> formatShift); c < len(names) {
		return names[c]
	}
	return fmt.Sprintf("compressor(%d)", h.Flags>>formatShift)
}

// Compressor is the compressor recorded in the flags; ok is false for one
// this package does not read.
func (h Header) Compressor() (c Compressor, ok bool) { return compressorOf(h.Flags >> formatShift) }

// ErrNotSupported marks valid-looking buffers this package cannot decode
// (another compressor than LZ4 or zstd).
var ErrNotSupported = errors.New("not supported")

// ParseHeader reads and checks the 16-byte header at the start of src.
func ParseHeader(src []byte) (Header, error) {
	if len(src) < HeaderSize {
		return Header{}, fmt.Errorf("blosc: %d bytes is shorter than the 16-byte header", len(src))
	}
	h := Header{
		Version:   src[0],
		VersionLZ: src[1],
		Flags:     src[2],
		TypeSize:  int(src[3]),
		NBytes:    int(binary.LittleEndian.Uint32(src[4:])),
		BlockSize: int(binary.LittleEndian.Uint32(src[8:])),
		CBytes:    int(binary.LittleEndian.Uint32(src[12:])),
	}
	switch {
	case h.Version == 0 || h.Version > versionFormat:
		return h, fmt.Errorf("blosc: format version %d not supported (want 1 or 2)", h.Version)
	case h.TypeSize == 0:
		return h, fmt.Errorf("blosc: typesize 0 in header")
	case h.Flags&flagReserved != 0:
		return h, fmt.Errorf("blosc: reserved flag bit 3 set (flags %#02x)", h.Flags)
	case h.CBytes < HeaderSize:
		return h, fmt.Errorf("blosc: header says %d bytes in all, less than the header", h.CBytes)
	case h.NBytes > maxBlosc1Buffer:
		return h, fmt.Errorf("blosc: decoded size %d exceeds the blosc1 limit", h.NBytes)
	case h.NBytes > 0 && h.BlockSize <= 0 && !h.Memcpyed():
		return h, fmt.Errorf("blosc: block size 0 for %d bytes", h.NBytes)
	case h.BlockSize > maxBlosc1Buffer:
		return h, fmt.Errorf("blosc: block size %d out of range", h.BlockSize)
	}
	return h, nil
}

// maxExpansion bounds how many bytes one compressed byte can decode to,
// so a forged header cannot make Decode allocate more than its input
// could plausibly hold. LZ4: a match of 255 more bytes per length byte
// (just under 255:1). zstd: an RLE block is 4 bytes (3 header, 1 value)
// for up to 128 KiB (Block_Maximum_Size), so 32768:1.
func maxExpansion(c Compressor) int {
	if c == Zstd {
		return 1 << 15
	}
	return 256
}

// Decoder decodes blosc1 buffers, keeping its scratch block and its zstd
// decoder between calls. Not safe for concurrent use. The zero value is
// ready to use and holds no resources beyond memory.
type Decoder struct {
	tmp []byte
	zs  zstdDecoder
}

// Decode decodes the blosc1 buffer src (exactly one buffer, nothing after
// it) into dst[:nbytes] when dst has the capacity, else into a new slice,
// and returns it. See Decoder.Decode.
func Decode(dst, src []byte) ([]byte, error) {
	var d Decoder
	return d.Decode(dst, src)
}

// DecodeN is Decode for a buffer that must decode to exactly n bytes: a
// header that says otherwise is an error before anything is allocated or
// decoded.
func (d *Decoder) DecodeN(dst, src []byte, n int) ([]byte, error) {
	h, err := ParseHeader(src)
	if err != nil {
		return nil, err
	}
	if h.NBytes != n {
		return nil, fmt.Errorf("blosc: buffer decodes to %d bytes, want %d", h.NBytes, n)
	}
	return d.decode(dst, src, h)
}

// Decode decodes src strictly: every size, offset and stream is checked,
// and each stream must decode to exactly its expected length (a zstd
// stream is decoded into a buffer capped at that length, so it can never
// write more), so a corrupt buffer is an error, never a panic. The output
// size comes from the header but is bounded by what src could plausibly
// expand to (maxExpansion), so a forged header cannot force a huge
// allocation. Supported: LZ4 and zstd with no shuffle, byte shuffle or bit
// shuffle, and memcpyed buffers.
func (d *Decoder) Decode(dst, src []byte) ([]byte, error) {
	h, err := ParseHeader(src)
	if err != nil {
		return nil, err
	}
	return d.decode(dst, src, h)
}

func (d *Decoder) decode(dst, src []byte, h Header) ([]byte, error) {
	if h.CBytes != len(src) {
		return nil, fmt.Errorf("blosc: header says %d bytes, buffer has %d", h.CBytes, len(src))
	}
	nbytes := h.NBytes
	if h.Memcpyed() {
		if h.CBytes != nbytes+HeaderSize {
			return nil, fmt.Errorf("blosc: memcpyed buffer of %d bytes for %d data bytes (want %d)", h.CBytes, nbytes, nbytes+HeaderSize)
		}
		return append(dst[:0], src[HeaderSize:]...), nil
	}
	comp, ok := h.Compressor()
	if !ok {
		return nil, fmt.Errorf("blosc: compressor %s: %w (zwrite reads lz4 and zstd)", h.CompressorName(), ErrNotSupported)
	}
	if h.VersionLZ != comp.version() {
		return nil, fmt.Errorf("blosc: %v format version %d (want %d)", comp, h.VersionLZ, comp.version())
	}
	if nbytes == 0 {
		// c-blosc stores empty input memcpyed; anything else is malformed.
		return nil, fmt.Errorf("blosc: compressed buffer for 0 bytes")
	}
	if nbytes/maxExpansion(comp) > h.CBytes {
		return nil, fmt.Errorf("blosc: %d bytes cannot come from a %d-byte %v buffer", nbytes, h.CBytes, comp)
	}
	bs := h.BlockSize
	if bs > nbytes {
		bs = nbytes // c-blosc never writes this, but the one short block is then the leftover
	}
	nblocks := (nbytes + bs - 1) / bs
	leftover := nbytes % bs
	bstartsEnd := HeaderSize + 4*nblocks
	if bstartsEnd > len(src) {
		return nil, fmt.Errorf("blosc: %d block offsets do not fit in %d bytes", nblocks, len(src))
	}
	ts := h.TypeSize
	sh := h.Shuffle()
	doShuffle := (sh == ByteShuffle && ts > 1) || sh == BitShuffle
	if doShuffle && len(d.tmp) < bs {
		d.tmp = make([]byte, bs)
	}
	out := dst[:0]
	if cap(out) < nbytes {
		out = make([]byte, nbytes)
	}
	out = out[:nbytes]
	for b := 0; b < nblocks; b++ {
		p := int(binary.LittleEndian.Uint32(src[HeaderSize+4*b:]))
		if p < bstartsEnd || p >= len(src) {
			return nil, fmt.Errorf("blosc: block %d starts at %d, outside [%d, %d)", b, p, bstartsEnd, len(src))
		}
		isLeftover := leftover > 0 && b == nblocks-1
		bsize := bs
		if isLeftover {
			bsize = leftover
		}
		block := out[b*bs : b*bs+bsize]
		// c-blosc bit-unshuffles only blocks of at least one element.
		unshuf := doShuffle && (sh == ByteShuffle || bsize >= ts)
		if unshuf {
			block = d.tmp[:bsize]
		}
		// c-blosc 1.x blosc_d: a block is split unless DONT_SPLIT is set,
		// it is the leftover, or (as buffers from before the flag existed
		// were written) typesize > 16 or fewer than 128 elements.
		nsplits := 1
		if h.Split() && !isLeftover && ts <= maxSplits && bsize/ts >= minBufferSize {
			nsplits = ts
		}
		neblock := bsize / nsplits
		if neblock*nsplits != bsize {
			// A forged block size that is not a multiple of the typesize:
			// the streams would not cover the block.
			return nil, fmt.Errorf("blosc: block %d of %d bytes does not split into %d streams", b, bsize, nsplits)
		}
		for j := 0; j < nsplits; j++ {
			if len(src)-p < 4 {
				return nil, fmt.Errorf("blosc: block %d stream %d: size field past the end", b, j)
			}
			cs := int(int32(binary.LittleEndian.Uint32(src[p:])))
			p += 4
			if cs <= 0 || cs > len(src)-p {
				return nil, fmt.Errorf("blosc: block %d stream %d: %d compressed bytes, %d left in buffer", b, j, cs, len(src)-p)
			}
			s := block[j*neblock : (j+1)*neblock]
			if cs == neblock {
				copy(s, src[p:p+cs])
			} else if err := d.stream(comp, s, src[p:p+cs]); err != nil {
				return nil, fmt.Errorf("blosc: block %d stream %d: %w", b, j, err)
			}
			p += cs
		}
		if unshuf {
			if sh == ByteShuffle {
				unshuffle(out[b*bs:b*bs+bsize], block, ts)
			} else {
				bitTranspose(out[b*bs:b*bs+bsize], block, ts, true)
			}
		}
	}
	return out, nil
}

// stream decompresses one compressed stream into exactly len(s) bytes.
func (d *Decoder) stream(c Compressor, s, src []byte) error {
	var n int
	if c == Zstd {
		var err error
		if n, err = d.zs.decode(s, src); err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
	} else {
		var err error
		if n, err = lz4.UncompressBlock(src, s); err != nil {
			return fmt.Errorf("lz4: %w", err)
		}
	}
	// As c-blosc: a stream that decodes to fewer bytes than its share of
	// the block is corrupt (the rest of the block would be left as it was).
	if n != len(s) {
		return fmt.Errorf("%v gave %d bytes, want %d", c, n, len(s))
	}
	return nil
}

// zstdDecoder decodes blosc's zstd streams (each a whole zstd frame, as
// c-blosc's ZSTD_compressCCtx writes them) with klauspost's decoder, made
// on first use.
type zstdDecoder struct {
	dec *zstd.Decoder
}

// decode decodes src into s[:0:len(s)] and returns the bytes decoded.
// WithDecodeAllCapLimit makes klauspost refuse a frame whose content size
// exceeds the capacity, and stop a frame without one at the capacity, so
// nothing is ever written past s or allocated. (Should klauspost ever
// hand back another array of the right length, the bytes are copied.)
func (z *zstdDecoder) decode(s, src []byte) (int, error) {
	if z.dec == nil {
		// One goroutine-free decoder (concurrency 1, DecodeAll only).
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			// Only invalid options fail, and these are fixed and valid.
			panic(fmt.Sprintf("blosc: zstd decoder: %v", err))
		}
		z.dec = dec
	}
	out, err := z.dec.DecodeAll(src, s[:0:len(s)])
	if err != nil {
		return 0, err
	}
	if len(out) > 0 && len(out) <= len(s) && &out[0] != &s[0] {
		copy(s, out)
	}
	return len(out), nil
}
