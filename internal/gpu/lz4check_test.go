package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pierrec/lz4/v4"

	"github.com/zwrite/zwrite/internal/blosc"
)

// This file is an independent, strict reader of blosc1-LZ4 buffers and a
// reference CPU encoder with the same geometry, used to check what the GPU
// kernels (or their host emulation) produce. It deliberately shares no code
// with the encoder.

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
	g.split = !dontSplit && typesize <= 16 && blocksize/typesize >= 128
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
		if ip+lit > len(src) {
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

// decodeBloscLZ4 decodes one blosc1 buffer strictly: every size must add
// up exactly, as c-blosc requires.
func decodeBloscLZ4(buf []byte) ([]byte, error) {
	if len(buf) < 16 {
		return nil, fmt.Errorf("buffer of %d bytes is shorter than the header", len(buf))
	}
	if buf[0] != 2 || buf[1] != 1 {
		return nil, fmt.Errorf("versions %d/%d, want 2/1", buf[0], buf[1])
	}
	flags := buf[2]
	if flags>>5 != 1 {
		return nil, fmt.Errorf("compressor code %d, want 1 (lz4)", flags>>5)
	}
	if flags&0x01 == 0 || flags&0x04 != 0 || flags&0x08 != 0 {
		return nil, fmt.Errorf("flags %#x: want byte shuffle only", flags)
	}
	typesize := int(buf[3])
	nbytes := int(binary.LittleEndian.Uint32(buf[4:]))
	blocksize := int(binary.LittleEndian.Uint32(buf[8:]))
	cbytes := int(binary.LittleEndian.Uint32(buf[12:]))
	if cbytes != len(buf) {
		return nil, fmt.Errorf("cbytes %d but buffer has %d", cbytes, len(buf))
	}
	out := make([]byte, nbytes)
	if flags&0x02 != 0 {
		if cbytes != nbytes+16 {
			return nil, fmt.Errorf("memcpyed with cbytes %d, nbytes %d", cbytes, nbytes)
		}
		copy(out, buf[16:])
		return out, nil
	}
	if nbytes < 128 {
		return nil, fmt.Errorf("%d bytes compressed; c-blosc memcpys buffers under 128 bytes", nbytes)
	}
	if blocksize <= 0 || blocksize%typesize != 0 || blocksize > nbytes {
		return nil, fmt.Errorf("blocksize %d for nbytes %d typesize %d", blocksize, nbytes, typesize)
	}
	g := newBloscGeom(nbytes, typesize, blocksize, flags&0x10 != 0)
	pos := 16 + 4*g.nblocks
	if pos > len(buf) {
		return nil, errors.New("bstarts run past the end")
	}
	shuf := make([]byte, blocksize)
	for b := 0; b < g.nblocks; b++ {
		bs := int(binary.LittleEndian.Uint32(buf[16+4*b:]))
		if bs != pos {
			return nil, fmt.Errorf("bstarts[%d] = %d, blocks are packed so want %d", b, bs, pos)
		}
		bsize := 0
		for _, st := range g.streams(b) {
			neblock := st[1]
			if pos+4 > len(buf) {
				return nil, fmt.Errorf("block %d: stream size runs past the end", b)
			}
			cs := int(int32(binary.LittleEndian.Uint32(buf[pos:])))
			pos += 4
			if cs <= 0 || cs > neblock || pos+cs > len(buf) {
				return nil, fmt.Errorf("block %d: stream size %d of %d", b, cs, neblock)
			}
			dst := shuf[bsize : bsize+neblock]
			if cs == neblock {
				copy(dst, buf[pos:pos+cs])
			} else {
				if err := checkLZ4Block(buf[pos:pos+cs], neblock); err != nil {
					return nil, fmt.Errorf("block %d stream at %d: %w", b, st[0], err)
				}
				n, err := lz4.UncompressBlock(buf[pos:pos+cs], dst)
				if err != nil || n != neblock {
					return nil, fmt.Errorf("block %d: lz4 gave %d of %d bytes: %v", b, n, neblock, err)
				}
			}
			pos += cs
			bsize += neblock
		}
		// unshuffle: shuffled[j*nelem+i] = plain[i*T+j]
		nelem := bsize / typesize
		dst := out[b*blocksize : b*blocksize+bsize]
		for j := 0; j < typesize; j++ {
			for i := 0; i < nelem; i++ {
				dst[i*typesize+j] = shuf[j*nelem+i]
			}
		}
	}
	if pos != len(buf) {
		return nil, fmt.Errorf("streams end at %d, buffer at %d", pos, len(buf))
	}
	return out, nil
}

// refBloscLZ4Size is the size the CPU backend's encoder (internal/blosc,
// c-blosc's algorithm) gives a chunk with the same block size: the
// baseline for the GPU ratio.
func refBloscLZ4Size(chunk []byte, typesize, clevel int) int {
	var e blosc.Encoder
	return len(e.Encode(nil, chunk, blosc.Options{TypeSize: typesize, CLevel: clevel, Shuffle: blosc.ByteShuffle, BlockSize: lz4BlockSize}))
}
