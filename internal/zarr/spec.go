package zarr

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// DType is an array element type. The zero value is invalid so that a
// forgotten field is caught by Validate.
type DType int

const (
	Uint8 DType = iota + 1
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	Float32
	Float64
)

// DTypes lists every supported type, for tests and help texts.
var DTypes = []DType{Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Float32, Float64}

var dtypeNames = map[DType]string{
	Uint8: "uint8", Uint16: "uint16", Uint32: "uint32", Uint64: "uint64",
	Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64",
	Float32: "float32", Float64: "float64",
}

// String returns the Zarr v3 data_type name.
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64:
		return 8
	}
	return 0
}

// ParseDType accepts Zarr names (uint16), numpy-style short forms (u16, i8,
// f32) and numpy dtype strings (<u2), case-insensitively.
func ParseDType(s string) (DType, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.TrimPrefix(k, "<")
	for d, n := range dtypeNames {
		if k == n {
			return d, nil
		}
	}
	short := map[string]DType{
		"u8": Uint8, "u16": Uint16, "u32": Uint32, "u64": Uint64,
		"i8": Int8, "i16": Int16, "i32": Int32, "i64": Int64,
		"f32": Float32, "f64": Float64,
		"u1": Uint8, "u2": Uint16, "u4": Uint32,
		"i1": Int8, "i2": Int16, "i4": Int32,
		"f4": Float32, "f8": Float64,
	}
	if d, ok := short[k]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want one of uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32, float64; short forms u16, i32, f32 work too)", s)
}

// Codec is the compressor applied to each inner chunk.
type Codec int

const (
	CodecNone Codec = iota + 1
	CodecZstd
	// CodecLZ4 is LZ4 inside blosc1 framing (Spec.Shuffle picks the
	// filter), stored as the Zarr "blosc" codec with cname lz4 so that every
	// reader can open it.
	CodecLZ4
	// CodecBloscZstd is zstd inside blosc1 framing: the Zarr "blosc" codec
	// with cname zstd. The shuffle filter in front of zstd is what makes
	// noisy sensor data compress well.
	CodecBloscZstd
)

// Codecs lists every supported codec, for tests and help texts.
var Codecs = []Codec{CodecNone, CodecZstd, CodecLZ4, CodecBloscZstd}

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	case CodecLZ4:
		return "lz4"
	case CodecBloscZstd:
		return "blosc-zstd"
	}
	return fmt.Sprintf("codec(%d)", int(c))
}

// Blosc reports whether the codec is stored as the Zarr "blosc" codec,
// where Spec.Shuffle applies.
func (c Codec) Blosc() bool { return c == CodecLZ4 || c == CodecBloscZstd }

// BloscCName is the blosc compressor name of a blosc codec ("" otherwise).
func (c Codec) BloscCName() string {
	switch c {
	case CodecLZ4:
		return "lz4"
	case CodecBloscZstd:
		return "zstd"
	}
	return ""
}

// ParseCodec accepts none, zstd, lz4 (also blosc-lz4) and blosc-zstd,
// case-insensitively.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "raw":
		return CodecNone, nil
	case "zstd":
		return CodecZstd, nil
	case "lz4", "blosc-lz4", "blosc":
		return CodecLZ4, nil
	case "blosc-zstd":
		return CodecBloscZstd, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want none, zstd, lz4 or blosc-zstd)", s)
}

// DefaultLevel is the compression level used when the user gives none:
// zstd 1 and blosc clevel 1 are what live acquisition wants (speed first).
func (c Codec) DefaultLevel() int {
	switch c {
	case CodecZstd, CodecLZ4, CodecBloscZstd:
		return 1
	}
	return 0
}

// ParseShuffle accepts the blosc shuffle filter by its short name (byte,
// bit, none) or its Zarr name (shuffle, bitshuffle, noshuffle),
// case-insensitively.
func ParseShuffle(s string) (Shuffle, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "byte", "shuffle":
		return ByteShuffle, nil
	case "bit", "bitshuffle":
		return BitShuffle, nil
	case "none", "noshuffle":
		return NoShuffle, nil
	}
	return 0, fmt.Errorf("unknown shuffle %q (want byte, bit or none)", s)
}

// ShuffleName is the short name ParseShuffle takes and help texts show.
func ShuffleName(s Shuffle) string {
	switch s {
	case ByteShuffle:
		return "byte"
	case BitShuffle:
		return "bit"
	case NoShuffle:
		return "none"
	}
	return s.String()
}

// MaxRank bounds the number of dimensions; the GPU tile kernel relies on it.
const MaxRank = 8

// Spec describes one array as the writer sees it. Shape[0] == 0 means dim 0
// is unbounded: it grows with the input and zarr.json records what arrived.
// A non-zero Shape[0] is an upper bound the input must not exceed.
type Spec struct {
	Shape []int64
	DType DType
	Chunk []int64 // inner chunk shape
	Shard []int64 // shard shape, a multiple of Chunk in every dim
	Codec Codec
	Level int
	// Shuffle is the blosc filter for the blosc codecs (ignored by the
	// others); the zero value is ByteShuffle.
	Shuffle  Shuffle
	DimNames []string // optional dimension_names, len == rank when set
}

// Rank is the number of dimensions.
func (s *Spec) Rank() int { return len(s.Shape) }

// Validate reports the first problem with s as a user-facing message.
func (s *Spec) Validate() error {
	n := len(s.Shape)
	if n == 0 || n > MaxRank {
		return fmt.Errorf("shape has %d dimensions; want 1 to %d", n, MaxRank)
	}
	if len(s.Chunk) != n {
		return fmt.Errorf("chunk has %d dimensions but shape has %d", len(s.Chunk), n)
	}
	if len(s.Shard) != n {
		return fmt.Errorf("shard has %d dimensions but shape has %d", len(s.Shard), n)
	}
	if s.DType.Size() == 0 {
		return fmt.Errorf("dtype is not set")
	}
	switch s.Codec {
	case CodecNone, CodecZstd, CodecLZ4, CodecBloscZstd:
	default:
		return fmt.Errorf("codec is not set")
	}
	if s.Shuffle < ByteShuffle || s.Shuffle > BitShuffle {
		return fmt.Errorf("shuffle %d is not a blosc filter", int(s.Shuffle))
	}
	for d := 0; d < n; d++ {
		if s.Shape[d] < 0 || (d > 0 && s.Shape[d] == 0) {
			return fmt.Errorf("shape[%d] = %d; every dimension but the first must be > 0 (the first may be 0 = grows with the input)", d, s.Shape[d])
		}
		if s.Chunk[d] <= 0 {
			return fmt.Errorf("chunk[%d] = %d; must be > 0", d, s.Chunk[d])
		}
		if s.Shard[d] <= 0 || s.Shard[d]%s.Chunk[d] != 0 {
			return fmt.Errorf("shard[%d] = %d is not a positive multiple of chunk[%d] = %d", d, s.Shard[d], d, s.Chunk[d])
		}
		if s.Shape[d] > 0 && s.Chunk[d] > s.Shape[d] {
			return fmt.Errorf("chunk[%d] = %d is larger than shape[%d] = %d", d, s.Chunk[d], d, s.Shape[d])
		}
	}
	if s.DimNames != nil && len(s.DimNames) != n {
		return fmt.Errorf("%d dimension names for %d dimensions", len(s.DimNames), n)
	}
	if s.Codec == CodecZstd && (s.Level < -7 || s.Level > 22) {
		return fmt.Errorf("zstd level %d out of range -7..22", s.Level)
	}
	if s.Codec.Blosc() && (s.Level < 0 || s.Level > 9) {
		return fmt.Errorf("%s (blosc clevel) level %d out of range 0..9", s.Codec, s.Level)
	}
	return s.checkSizes()
}

// Size limits. The format has none, but a writer holds an epoch in memory
// and keeps per-chunk and per-shard bookkeeping, and the geometry helpers
// multiply in int64: a spec beyond these would overflow (and then divide by
// zero or allocate nonsense) or could never be allocated, so Validate
// refuses it with the reason.
const (
	maxBytes          = 1 << 47   // 128 TiB: frame, epoch and fixed array sizes
	maxChunkBytes     = 1<<31 - 1 // one inner chunk (blosc and the GPU codecs use int32 sizes)
	maxChunksPerShard = 1 << 24   // 16 Mi index entries = a 256 MiB shard index
	maxGridCells      = 1 << 26   // inner chunks per epoch, shards per shard row
)

// mulCap returns a*b and whether it neither overflowed nor exceeds limit
// (a, b and limit non-negative).
func mulCap(a, b, limit int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return int64(lo), hi == 0 && lo <= uint64(limit)
}

// checkSizes applies the size limits; every dimension is already known to
// be positive (dim 0 of the shape may be 0). Products are built with
// mulCap so that no step can wrap around.
func (s *Spec) checkSizes() error {
	var ok bool
	frame := int64(s.DType.Size())
	for _, d := range s.Shape[1:] {
		if frame, ok = mulCap(frame, d, maxBytes); !ok {
			return fmt.Errorf("shape %s: one frame (all dimensions but the first) would exceed 128 TiB", dims(s.Shape))
		}
	}
	if _, ok = mulCap(frame, s.Chunk[0], maxBytes); !ok {
		return fmt.Errorf("chunk %s: one epoch (chunk[0] = %d frames) would exceed 128 TiB; use a smaller chunk[0]", dims(s.Chunk), s.Chunk[0])
	}
	if _, ok = mulCap(frame, s.Shape[0], maxBytes); !ok {
		return fmt.Errorf("shape %s: the array would exceed 128 TiB; use 0 for dimension 0 to let it grow instead", dims(s.Shape))
	}
	chunk := int64(s.DType.Size())
	for _, d := range s.Chunk {
		if chunk, ok = mulCap(chunk, d, maxChunkBytes); !ok {
			return fmt.Errorf("chunk %s: an inner chunk would exceed 2 GiB; use a smaller chunk", dims(s.Chunk))
		}
	}
	perShard, perEpoch, perRow := int64(1), int64(1), int64(1)
	for d := range s.Shape {
		if perShard, ok = mulCap(perShard, s.Shard[d]/s.Chunk[d], maxChunksPerShard); !ok {
			return fmt.Errorf("shard %s: more than %d inner chunks per shard; use a smaller shard or a larger chunk", dims(s.Shard), maxChunksPerShard)
		}
		if d == 0 {
			continue
		}
		if perEpoch, ok = mulCap(perEpoch, ceilDiv(s.Shape[d], s.Chunk[d]), maxGridCells); !ok {
			return fmt.Errorf("chunk %s: more than %d inner chunks per epoch; use a larger chunk", dims(s.Chunk), maxGridCells)
		}
		if perRow, ok = mulCap(perRow, ceilDiv(s.Shape[d], s.Shard[d]), maxGridCells); !ok {
			return fmt.Errorf("shard %s: more than %d shards per shard row; use a larger shard", dims(s.Shard), maxGridCells)
		}
	}
	return nil
}

// dims formats a shape as the command line takes it: 0,2048,2304.
func dims(v []int64) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(x, 10))
	}
	return b.String()
}

// Growing reports whether dim 0 is unbounded.
func (s *Spec) Growing() bool { return s.Shape[0] == 0 }

func prod(v []int64) int64 {
	p := int64(1)
	for _, x := range v {
		p *= x
	}
	return p
}

// ceilDiv rounds a/b up for a >= 0, b > 0, without the overflow of
// (a+b-1)/b when a is near the int64 limit.
func ceilDiv(a, b int64) int64 {
	if a == 0 {
		return 0
	}
	return (a-1)/b + 1
}

// FrameBytes is the size of one index of dim 0.
func (s *Spec) FrameBytes() int64 { return prod(s.Shape[1:]) * int64(s.DType.Size()) }

// EpochFrames is chunk[0]: the frames that fill one row of chunks.
func (s *Spec) EpochFrames() int64 { return s.Chunk[0] }

// ChunkElems and ChunkBytes are the size of one (padded) inner chunk.
func (s *Spec) ChunkElems() int64 { return prod(s.Chunk) }
func (s *Spec) ChunkBytes() int64 { return s.ChunkElems() * int64(s.DType.Size()) }

// ChunkGrid is the number of inner chunks along each of dims 1.. (rank-1
// values); edge chunks count.
func (s *Spec) ChunkGrid() []int64 {
	g := make([]int64, len(s.Shape)-1)
	for d := 1; d < len(s.Shape); d++ {
		g[d-1] = ceilDiv(s.Shape[d], s.Chunk[d])
	}
	return g
}

// ChunksPerEpoch is the number of inner chunks one epoch fills.
func (s *Spec) ChunksPerEpoch() int64 { return prod(s.ChunkGrid()) }

// ShardChunks is the inner-chunk grid of one shard (rank values).
func (s *Spec) ShardChunks() []int64 {
	g := make([]int64, len(s.Shape))
	for d := range s.Shape {
		g[d] = s.Shard[d] / s.Chunk[d]
	}
	return g
}

// ChunksPerShard is the number of index entries in every shard.
func (s *Spec) ChunksPerShard() int64 { return prod(s.ShardChunks()) }

// EpochsPerShardRow is shard[0]/chunk[0].
func (s *Spec) EpochsPerShardRow() int64 { return s.Shard[0] / s.Chunk[0] }

// ShardGrid is the number of shards along each of dims 1.. (rank-1 values).
func (s *Spec) ShardGrid() []int64 {
	g := make([]int64, len(s.Shape)-1)
	for d := 1; d < len(s.Shape); d++ {
		g[d-1] = ceilDiv(s.Shape[d], s.Shard[d])
	}
	return g
}

// ShardsPerRow is the number of shards in one shard row along dim 0.
func (s *Spec) ShardsPerRow() int64 { return prod(s.ShardGrid()) }

// ShardKey is the store key of the shard at grid coordinates coords
// (rank values): "c/0/1/2" (default chunk key encoding, "/" separator).
func ShardKey(coords []int64) string {
	var b strings.Builder
	b.WriteString("c")
	for _, c := range coords {
		fmt.Fprintf(&b, "/%d", c)
	}
	return b.String()
}

// ShardCoords turns a shard row and a C-order shard index over dims 1..
// into grid coordinates.
func (s *Spec) ShardCoords(row int64, col int64) []int64 {
	g := s.ShardGrid()
	c := make([]int64, len(s.Shape))
	c[0] = row
	for d := len(g) - 1; d >= 0; d-- {
		c[d+1] = col % g[d]
		col /= g[d]
	}
	return c
}

// Clone returns a deep copy, so that callers can keep a Spec they were given.
func (s Spec) Clone() Spec {
	c := s
	c.Shape = append([]int64(nil), s.Shape...)
	c.Chunk = append([]int64(nil), s.Chunk...)
	c.Shard = append([]int64(nil), s.Shard...)
	if s.DimNames != nil {
		c.DimNames = append([]string(nil), s.DimNames...)
	}
	return c
}
