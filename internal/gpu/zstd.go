package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/zwrite/zwrite/internal/zarr"
)

// The zstd codec: kernels/zstd.cu turns every chunk into one standard zstd
// frame (RFC 8878: Single_Segment, Frame_Content_Size set, no checksum).
// zstd_blocks finds the matches and codes the literals of each 128 KiB block
// of each chunk in its own CTA, into a scratch slot; zstd_seqs then codes
// every block's sequences (one thread per block: the FSE state chain is
// serial, so many blocks run side by side) and picks compressed or raw;
// zstd_assemble writes each chunk's frame header and copies its blocks
// behind it, raw ones straight from the input.

func init() { RegisterCodec(zarr.CodecZstd, "zstd", newZstd) }

// These mirror the #defines of kernels/zstd.cu (TestZstdConstantsMatchSource
// keeps them in step).
const (
	zstdBlock      = 128 << 10 // ZS_BLOCK
	zstdThreads    = 32        // ZS_NT
	zstdSegSeq     = zstdBlock/zstdThreads/4 + 1
	zstdBlkScratch = zstdBlock + zstdThreads*zstdSegSeq*8 + zstdBlock + 1024 // ZS_BLKSCR
	zstdSmemFast   = 27648                                                   // ZS_SMEM_FAST
	zstdSmemLazy   = 68608                                                   // ZS_SMEM_LAZY
	zstdSeqThreads = 8                                                       // ZS_SEQ_NT
	zstdAsmThreads = 256
	zstdSegMin     = 1024    // ZS_SEGMIN
	zstdMinPlane   = 8 << 10 // ZS_MINPLANE
	zstdBitShuf    = 1 << 16 // ZS_BITSHUF
)

// zstdFrames mirrors zsGeo's sizes for frames of frameBytes (lastBytes
// for a chunk's last) cut at planes byte planes (planes as zstd_blocks
// takes it; see ZsGeo in zstd.cu): the block slots per frame and the
// scratch bytes of one slot.
func zstdFrames(frameBytes, lastBytes int64, planes uint32) (nbf, stride int64) {
	if planes == 0 {
		return zstdBlocks(frameBytes), zstdBlkScratch
	}
	blockLen := func(n int64) int64 {
		p := int64(planes & 0xFFFF)
		if p > 1 && planes&zstdBitShuf != 0 && (n < p || (n/p)%8 != 0) {
			p = 1
		}
		if p > 1 && n/p >= zstdMinPlane {
			return n / p
		}
		return zstdBlock
	}
	blocksOf := func(n, bl int64) int64 {
		if n == 0 {
			return 1
		}
		return (n + bl - 1) / bl
	}
	bf, bl := blockLen(frameBytes), blockLen(lastBytes)
	nbf = max(blocksOf(frameBytes, bf), blocksOf(lastBytes, bl))
	big := max(min(bf, frameBytes), min(bl, lastBytes))
	seg := int64(zstdBlock / zstdThreads)
	if big < zstdBlock {
		seg = max(zstdSegMin, ((big+zstdThreads-1)/zstdThreads+15)&^15)
	}
	segseq := seg/4 + 1
	r16 := func(v int64) int64 { return (v + 15) &^ 15 }
	return nbf, r16(max(big, 512)) + zstdThreads*segseq*8 + r16(big+1024)
}

// GPU parses: the match finders of zstd_blocks (ZS_PARSE_* in zstd.cu).
// The zstd level (and a blosc clevel through c-blosc's mapping) picks one;
// a level between them runs as the one at or below it.
const (
	// zstdParseFast: each thread greedy-parses its 4 KiB segment with a
	// small table (one candidate per hash, the block-wide first-occurrence
	// table, the last offset) and skips ahead faster after misses: a
	// zstd level-1 class parser. Levels up to 2 (negative ones too).
	zstdParseFast = 0
	// zstdParseLazy: tables of two positions per 4-byte hash, a longer
	// window, a 4x block-wide table, hardly any skipping, and lazy
	// matching (a match is given up for a better one at the next
	// position, scored as zstd's lazy strategies do): zstd's lazy class
	// (its levels 5-7), at 2.5x the shared memory per CTA. Levels 3 and
	// up.
	zstdParseLazy = 1
)

// zstdParseLevels lists each parse with the lowest level that runs it.
var zstdParseLevels = []struct {
	parse uint32
	name  string
	from  int
}{{zstdParseFast, "fast", math.MinInt}, {zstdParseLazy, "lazy", 3}}

// zstdParse is the GPU parse a zstd level runs as.
func zstdParse(level int) (parse uint32, name string, from int) {
	p := zstdParseLevels[0]
	for _, q := range zstdParseLevels {
		if level >= q.from {
			p = q
		}
	}
	return p.parse, p.name, p.from
}

// zstdParseNote says what a level means on the GPU, for --verbose.
func zstdParseNote(what string, level int) string {
	_, name, from := zstdParse(level)
	rng := fmt.Sprintf("levels >= %d", from)
	if from == math.MinInt {
		rng = fmt.Sprintf("levels <= %d", zstdParseLevels[1].from-1)
	}
	return fmt.Sprintf("%s runs as GPU parse '%s' (%s)", what, name, rng)
}

type zstdCodec struct {
	k        zstdKern
	assemble *Function
	note     string
}

// zstdSmem is the dynamic shared memory zstd_blocks needs for a parse.
func zstdSmem(parse uint32) int {
	if parse == zstdParseLazy {
		return zstdSmemLazy
	}
	return zstdSmemFast
}

// zstdKern is zstd_blocks and zstd_seqs set up for one parse: both zstd
// codecs run them.
type zstdKern struct {
	blocks, seqs *Function
	parse        uint32
	smem         int // dynamic shared memory per zstd_blocks CTA
}

// zstdKernels looks up the zstd kernels both zstd codecs use, for a parse.
// The shared memory a parse needs is what the module says it was built
// with (zs_smem_need, so a kernel built with other table sizes for tuning
// launches with its own), else the constants of the committed source.
func zstdKernels(m *Module, parse uint32) (zstdKern, error) {
	k := zstdKern{parse: parse, smem: zstdSmem(parse)}
	var err error
	if k.blocks, err = m.Function("zstd_blocks"); err != nil {
		return k, err
	}
	if k.seqs, err = m.Function("zstd_seqs"); err != nil {
		return k, err
	}
	if !m.emulated {
		var need [8]byte
		if m.ReadGlobal("zs_smem_need", need[:]) == nil {
			k.smem = int(binary.LittleEndian.Uint32(need[4*min(parse, 1):]))
		}
	}
	if max := m.Device().MaxSharedPerBlock(); max > 0 && max < k.smem {
		return k, fmt.Errorf("needs %d bytes of shared memory per block, the GPU allows %d", k.smem, max)
	}
	if err := k.blocks.SetMaxDynamicShared(k.smem); err != nil {
		return k, err
	}
	return k, nil
}

func newZstd(m *Module, spec zarr.Spec) (CodecKernels, error) {
	// The level is informational for zstd readers: any parse gives a valid
	// frame. The GPU runs the parse nearest below it (zstdParse).
	parse, _, _ := zstdParse(spec.Level)
	k, err := zstdKernels(m, parse)
	if err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	a, err := m.Function("zstd_assemble")
	if err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	return &zstdCodec{k: k, assemble: a,
		note: zstdParseNote(fmt.Sprintf("zstd level %d", spec.Level), spec.Level)}, nil
}

// Note says which GPU parse runs the store's level (Noter).
func (c *zstdCodec) Note() string { return c.note }

// zstdBlocks is the number of zstd blocks of a chunk (an empty chunk is one
// empty raw block).
func zstdBlocks(chunkBytes int64) int64 {
	if chunkBytes <= 0 {
		return 1
	}
	return (chunkBytes + zstdBlock - 1) / zstdBlock
}

// zstdHeaderLen is the frame header length the kernel writes: magic, FHD
// and the smallest Frame_Content_Size field.
func zstdHeaderLen(chunkBytes int64) int64 {
	switch {
	case chunkBytes < 256:
		return 6
	case chunkBytes < 65536+256:
		return 7
	case chunkBytes <= 0xFFFFFFFF:
		return 9
	}
	return 13
}

// Bound: every block may end up stored raw (3-byte header + its bytes).
func (*zstdCodec) Bound(chunkBytes int64) int64 {
	return zstdHeaderLen(chunkBytes) + 3*zstdBlocks(chunkBytes) + chunkBytes
}

// zstdSizesBytes is the block-size table at the start of scratch, rounded
// so the per-block slots behind it stay aligned.
func zstdSizesBytes(chunkBytes int64, nChunks int) int64 {
	return (4*zstdBlocks(chunkBytes)*int64(nChunks) + 255) &^ 255
}

func (*zstdCodec) Scratch(chunkBytes int64, nChunks int) int64 {
	return zstdSizesBytes(chunkBytes, nChunks) + zstdBlocks(chunkBytes)*int64(nChunks)*zstdBlkScratch
}

func (c *zstdCodec) Encode(q Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error {
	if n <= 0 {
		return nil
	}
	if chunkBytes > 0xFFFFFFFF {
		return fmt.Errorf("zstd codec: chunks of %d bytes are too large for the GPU encoder (at most 4 GiB)", chunkBytes)
	}
	nb := zstdBlocks(chunkBytes) * int64(n)
	if nb > 1<<31-1 {
		return fmt.Errorf("zstd codec: %d blocks in one batch; at most %d", nb, 1<<31-1)
	}
	blkSize := scratch
	slots := scratch.Add(zstdSizesBytes(chunkBytes, n))
	// One frame per chunk: stride, frame and last-frame length are the
	// chunk's.
	cb := uint64(chunkBytes)
	if err := zstdRunBlocks(q, c.k, in, cb, cb, 1, cb, 0, nb, slots, blkSize); err != nil {
		return fmt.Errorf("zstd codec: %w", err)
	}
	if err := q.Launch(c.assemble, Dim3{X: uint32(n)}, Dim3{X: zstdAsmThreads}, 0,
		in, slots, blkSize, uint64(chunkBytes), uint32(n), out, uint64(stride), sizes); err != nil {
		return fmt.Errorf("zstd codec: %w", err)
	}
	return nil
}

// zstdRunBlocks enqueues zstd_blocks and zstd_seqs for nb zstd blocks of
// the frames described by (chunkStride, frameBytes, fpc, lastBytes; see
// ZsGeo in zstd.cu).
func zstdRunBlocks(q Queue, k zstdKern, in DevPtr, chunkStride, frameBytes uint64, fpc uint32, lastBytes uint64,
	planes uint32, nb int64, slots, blkSize DevPtr) error {
	if err := q.Launch(k.blocks, Dim3{X: uint32(nb)}, Dim3{X: zstdThreads}, k.smem,
		in, chunkStride, frameBytes, fpc, lastBytes, planes, uint32(nb), slots, blkSize, k.parse); err != nil {
		return err
	}
	return q.Launch(k.seqs, Dim3{X: uint32((nb + zstdSeqThreads - 1) / zstdSeqThreads)}, Dim3{X: zstdSeqThreads}, 0,
		chunkStride, frameBytes, fpc, lastBytes, planes, uint32(nb), slots, blkSize)
}
