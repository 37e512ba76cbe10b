package gpu

import (
	"fmt"

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
	zstdSmemBytes  = 27648                                                   // ZS_SMEM_BYTES
	zstdSeqThreads = 8                                                       // ZS_SEQ_NT
	zstdAsmThreads = 256
)

type zstdCodec struct {
	blocks   *Function
	seqs     *Function
	assemble *Function
}

func newZstd(m *Module, spec zarr.Spec) (CodecKernels, error) {
	// The level is informational for zstd readers; the GPU encoder has one
	// fixed parse (a level-1 class greedy matcher), so every level is taken.
	_ = spec
	b, err := m.Function("zstd_blocks")
	if err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	sq, err := m.Function("zstd_seqs")
	if err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	a, err := m.Function("zstd_assemble")
	if err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	if max := m.Device().MaxSharedPerBlock(); max > 0 && max < zstdSmemBytes {
		return nil, fmt.Errorf("zstd codec: needs %d bytes of shared memory per block, the GPU allows %d", zstdSmemBytes, max)
	}
	if err := b.SetMaxDynamicShared(zstdSmemBytes); err != nil {
		return nil, fmt.Errorf("zstd codec: %w", err)
	}
	return &zstdCodec{blocks: b, seqs: sq, assemble: a}, nil
}

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

func (c *zstdCodec) Encode(st Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error {
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
	if err := st.Launch(c.blocks, Dim3{X: uint32(nb)}, Dim3{X: zstdThreads}, zstdSmemBytes,
		in, uint64(chunkBytes), uint32(nb), slots, blkSize); err != nil {
		return fmt.Errorf("zstd codec: %w", err)
	}
	if err := st.Launch(c.seqs, Dim3{X: uint32((nb + zstdSeqThreads - 1) / zstdSeqThreads)}, Dim3{X: zstdSeqThreads}, 0,
		uint64(chunkBytes), uint32(nb), slots, blkSize); err != nil {
		return fmt.Errorf("zstd codec: %w", err)
	}
	if err := st.Launch(c.assemble, Dim3{X: uint32(n)}, Dim3{X: zstdAsmThreads}, 0,
		in, slots, blkSize, uint64(chunkBytes), uint32(n), out, uint64(stride), sizes); err != nil {
		return fmt.Errorf("zstd codec: %w", err)
	}
	return nil
}
