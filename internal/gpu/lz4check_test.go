package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// This file is an independent, strict reader of blosc1 buffers (LZ4 or
// zstd streams; byte, bit or no shuffle), used to check what the GPU
// kernels (or their CPU emulation) produce. It deliberately shares no code
// with the encoders: its unshuffles go bit by bit, and its block rules are
// written out again from c-blosc's blosc_d.

// bloscGeom mirrors c-blosc's block and split rules for a buffer header.
type bloscGeom struct {
	nbytes, typesize, blocksize int
	nblocks, leftover           int
	split                       bool
}

func newBloscGeom(nbytes, typesize, blocksize int, dontSplit bool) bloscGeom {
	g := bloscGeom{nbytes: nbytes, typesize: typesize, blocksize: blocksize}
	g.nblocks = nbytes / blocksize
	g.leftover = nbytes % blocksize
	if g.leftover > 0 {
		g.nblocks++
	}
	g.split = !dontSplit
	return g
}

// streams returns (offset, length) of every stream of block b.
func (g bloscGeom) streams(b int) [][2]int {
	bsize := g.blocksize
	leftoverBlock := b == g.nblocks-1 && g.leftover > 0
	if leftoverBlock {
		bsize = g.leftover
	}
	ns := 1
	if g.split && !leftoverBlock {
		ns = g.typesize
	}
	out := make([][2]int, ns)
	for j := range out {
		out[j] = [2]int{b*g.blocksize + j*(bsize/ns), bsize / ns}
	}
	return out
}

// checkLZ4Block validates the end-of-block rules of the LZ4 block format
// (last sequence literal-only, matches start >= 12 bytes and end >= 5
// bytes before the end, offsets inside the produced output) and returns
// the decoded size.
func checkLZ4Block(src []byte, n int) error {
	ip, op := 0, 0
	readLen := func(v int) (int, error) {
		if v < 15 {
			return v, nil
		}
		for {
			if ip >= len(src) {
				return 0, errors.New("length runs past the end")
			}
			b := int(src[ip])
			ip++
			v += b
			if b != 255 {
				return v, nil
			}
		}
	}
	for {
		if ip >= len(src) {
			return errors.New("missing final sequence")
		}
		tok := int(src[ip])
		ip++
		lit, err := readLen(tok >> 4)
		if err != nil {
			return err
		}
		if lit > len(src)-ip {
			return errors.New("literals run past the end")
		}
		ip += lit
		op += lit
		if ip == len(src) {
			if tok&15 != 0 {
				return errors.New("last sequence has a match nibble")
			}
			if op != n {
				return fmt.Errorf("decodes to %d bytes, want %d", op, n)
			}
			return nil
		}
		if ip+2 > len(src) {
			return errors.New("offset runs past the end")
		}
		off := int(binary.LittleEndian.Uint16(src[ip:]))
		ip += 2
		if off == 0 || off > op {
			return fmt.Errorf("offset %d at output %d", off, op)
		}
		ml, err := readLen(tok & 15)
		if err != nil {
			return err
		}
		ml += 4
		if op > n-12 {
			return fmt.Errorf("match starts at %d, within 12 bytes of the end %d", op, n)
		}
		op += ml
		if op > n-5 {
			return fmt.Errorf("match ends at %d, within the last 5 bytes of %d", op, n)
		}
	}
}

// strictZstd decodes the zstd streams of blosc-zstd buffers.
var strictZstd, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))

// checkZstdStream decodes one zstd stream of a blosc block: exactly one
// frame that states its content size, n bytes.
func checkZstdStream(src, dst []byte) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return fmt.Errorf("zstd frame header: %w", err)
	}
	if !h.HasFCS || h.FrameContentSize != uint64(len(dst)) || h.HasCheckSum || h.DictionaryID != 0 {
		return fmt.Errorf("zstd frame header %+v; want content size %d, no checksum, no dictionary", h, len(dst))
	}
	got, err := strictZstd.DecodeAll(src, dst[:0])
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if len(got) != len(dst) || &got[0] != &dst[0] {
		return fmt.Errorf("zstd stream decodes to %d bytes, want %d", len(got), len(dst))
	}
	return nil
}

// bloscHeader is what decodeBloscStrict read from a header.
type bloscHeader struct {
	flags      byte
	compressor int // 1 lz4, 4 zstd
	shuffle    int // shufNone, shufByte, shufBit
	typesize   int
	nbytes     int
	blocksize  int
	memcpyed   bool
}

// decodeBloscStrict decodes one blosc1 buffer strictly: every size must add
// up exactly, as c-blosc requires, and blocks are packed in order.
func decodeBloscStrict(buf []byte) ([]byte, bloscHeader, error) {
	var h bloscHeader
	if len(buf) < 16 {
		return nil, h, fmt.Errorf("buffer of %d bytes is shorter than the header", len(buf))
	}
	if buf[0] != 2 || buf[1] != 1 {
		return nil, h, fmt.Errorf("versions %d/%d, want 2/1", buf[0], buf[1])
	}
	h.flags = buf[2]
	h.compressor = int(h.flags >> 5)
	if h.compressor != bloscFormatLZ4 && h.compressor != bloscFormatZstd {
		return nil, h, fmt.Errorf("compressor code %d, want 1 (lz4) or 4 (zstd)", h.compressor)
	}
	switch h.flags & 0x05 {
	case 0:
		h.shuffle = shufNone
	case 0x01:
		h.shuffle = shufByte
	case 0x04:
		h.shuffle = shufBit
	default:
		return nil, h, fmt.Errorf("flags %#x: both shuffles", h.flags)
	}
	if h.flags&0x08 != 0 {
		return nil, h, fmt.Errorf("flags %#x: reserved bit set", h.flags)
	}
	h.memcpyed = h.flags&0x02 != 0
	h.typesize = int(buf[3])
	h.nbytes = int(binary.LittleEndian.Uint32(buf[4:]))
	h.blocksize = int(binary.LittleEndian.Uint32(buf[8:]))
	cbytes := int(binary.LittleEndian.Uint32(buf[12:]))
	if cbytes != len(buf) {
		return nil, h, fmt.Errorf("cbytes %d but buffer has %d", cbytes, len(buf))
	}
	if h.typesize == 0 {
		return nil, h, errors.New("typesize 0")
	}
	// Encoders write a block size of at most nbytes even for MEMCPYED
	// buffers (c-blosc's compute_blocksize, blosc.Geometry).
	if h.blocksize > h.nbytes || (h.nbytes > 0 && h.blocksize <= 0) {
		return nil, h, fmt.Errorf("blocksize %d for nbytes %d", h.blocksize, h.nbytes)
	}
	if h.memcpyed {
		if cbytes != h.nbytes+16 {
			return nil, h, fmt.Errorf("memcpyed with cbytes %d, nbytes %d", cbytes, h.nbytes)
		}
		return append([]byte(nil), buf[16:]...), h, nil
	}
	if h.nbytes < 128 {
		return nil, h, fmt.Errorf("%d bytes compressed; c-blosc memcpys buffers under 128 bytes", h.nbytes)
	}
	if h.blocksize <= 0 || h.blocksize%h.typesize != 0 || h.blocksize > h.nbytes {
		return nil, h, fmt.Errorf("blocksize %d for nbytes %d typesize %d", h.blocksize, h.nbytes, h.typesize)
	}
	dontSplit := h.flags&0x10 != 0
	if h.compressor == bloscFormatZstd && !dontSplit {
		return nil, h, errors.New("zstd blocks split into streams; c-blosc 1.x never splits zstd")
	}
	g := newBloscGeom(h.nbytes, h.typesize, h.blocksize, dontSplit)
	if len(buf) < 16 || (len(buf)-16)/4 < g.nblocks {
		return nil, h, errors.New("bstarts run past the end")
	}
	pos := 16 + 4*g.nblocks
	out := make([]byte, h.nbytes)
	shuf := make([]byte, h.blocksize)
	for b := 0; b < g.nblocks; b++ {
		bs := int(binary.LittleEndian.Uint32(buf[16+4*b:]))
		if bs != pos {
			return nil, h, fmt.Errorf("bstarts[%d] = %d, blocks are packed so want %d", b, bs, pos)
		}
		bsize := 0
		for _, st := range g.streams(b) {
			neblock := st[1]
			if pos+4 > len(buf) {
				return nil, h, fmt.Errorf("block %d: stream size runs past the end", b)
			}
			cs := int(int32(binary.LittleEndian.Uint32(buf[pos:])))
			pos += 4
			if cs <= 0 || cs > neblock || cs > len(buf)-pos {
				return nil, h, fmt.Errorf("block %d: stream size %d of %d", b, cs, neblock)
			}
			dst := shuf[bsize : bsize+neblock]
			switch {
			case cs == neblock:
				copy(dst, buf[pos:pos+cs])
			case h.compressor == bloscFormatZstd:
				if err := checkZstdStream(buf[pos:pos+cs], dst); err != nil {
					return nil, h, fmt.Errorf("block %d: %w", b, err)
				}
			default:
				if err := checkLZ4Block(buf[pos:pos+cs], neblock); err != nil {
					return nil, h, fmt.Errorf("block %d stream at %d: %w", b, st[0], err)
				}
				n, err := lz4.UncompressBlock(buf[pos:pos+cs], dst)
				if err != nil || n != neblock {
					return nil, h, fmt.Errorf("block %d: lz4 gave %d of %d bytes: %v", b, n, neblock, err)
				}
			}
			pos += cs
			bsize += neblock
		}
		refUnshuffle(out[b*h.blocksize:b*h.blocksize+bsize], shuf[:bsize], h.typesize, h.shuffle)
	}
	if pos != len(buf) {
		return nil, h, fmt.Errorf("streams end at %d, buffer at %d", pos, len(buf))
	}
	return out, h, nil
}

// refUnshuffle undoes one block's shuffle the slow way: element by element
// (byte) or bit by bit (bit), with blosc's rules for the trailing bytes
// and for bit shuffle blocks whose element count is not a multiple of 8.
func refUnshuffle(dst, src []byte, ts, mode int) {
	ne := len(src) / ts
	copy(dst, src) // noshuffle, and the trailing len%ts bytes of the others
	switch mode {
	case shufByte:
		for i := 0; i < ne; i++ {
			for j := 0; j < ts; j++ {
				dst[i*ts+j] = src[j*ne+i]
			}
		}
	case shufBit:
		if ne%8 != 0 {
			return
		}
		for i := 0; i < ne*ts; i++ {
			dst[i] = 0
		}
		for i := 0; i < ne; i++ {
			for j := 0; j < ts; j++ {
				for k := 0; k < 8; k++ {
					row := j*8 + k
					bit := src[row*ne/8+i/8] >> (i % 8) & 1
					dst[i*ts+j] |= bit << k
				}
			}
		}
	}
}
