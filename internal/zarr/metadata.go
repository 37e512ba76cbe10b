package zarr

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/zwrite/zwrite/internal/blosc"
)

// The structs below fix the field order of the zarr.json we write: Go's
// encoding/json emits struct fields in declaration order, so the output is
// byte-for-byte deterministic (golden files in testdata/ pin it).

type arrayJSON struct {
	ZarrFormat       int           `json:"zarr_format"`
	NodeType         string        `json:"node_type"`
	Shape            []int64       `json:"shape"`
	DataType         string        `json:"data_type"`
	ChunkGrid        namedConfig   `json:"chunk_grid"`
	ChunkKeyEncoding namedConfig   `json:"chunk_key_encoding"`
	FillValue        int           `json:"fill_value"`
	Codecs           []namedConfig `json:"codecs"`
	Attributes       struct{}      `json:"attributes"`
	DimensionNames   []string      `json:"dimension_names,omitempty"`
}

type namedConfig struct {
	Name          string `json:"name"`
	Configuration any    `json:"configuration,omitempty"`
}

type chunkShapeConfig struct {
	ChunkShape []int64 `json:"chunk_shape"`
}

type separatorConfig struct {
	Separator string `json:"separator"`
}

type shardingConfig struct {
	ChunkShape    []int64       `json:"chunk_shape"`
	Codecs        []namedConfig `json:"codecs"`
	IndexCodecs   []namedConfig `json:"index_codecs"`
	IndexLocation string        `json:"index_location"`
}

type endianConfig struct {
	Endian string `json:"endian"`
}

type zstdConfig struct {
	Level    int  `json:"level"`
	Checksum bool `json:"checksum"`
}

type bloscConfig struct {
	CName     string `json:"cname"`
	CLevel    int    `json:"clevel"`
	Shuffle   string `json:"shuffle"`
	TypeSize  int    `json:"typesize"`
	BlockSize int    `json:"blocksize"`
}

// MarshalArray returns the array zarr.json for s with shape[0] replaced by
// shape0, the frames delivered so far: pretty-printed (two-space indent),
// fields in a fixed order, trailing newline. The layout is the one
// shared/DESIGN.md "Store format" fixes: one sharding_indexed codec whose
// inner chain is bytes(little) then the compressor, index at the end with
// crc32c.
func MarshalArray(s *Spec, shape0 int64) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("marshal zarr.json: %w", err)
	}
	if shape0 < 0 {
		return nil, fmt.Errorf("marshal zarr.json: shape[0] = %d is negative", shape0)
	}
	if !s.Growing() && shape0 > s.Shape[0] {
		return nil, fmt.Errorf("marshal zarr.json: %d frames exceed the fixed shape[0] = %d", shape0, s.Shape[0])
	}
	shape := append([]int64{shape0}, s.Shape[1:]...)
	inner := []namedConfig{{Name: "bytes", Configuration: endianConfig{"little"}}}
	switch s.Codec {
	case CodecZstd:
		inner = append(inner, namedConfig{Name: "zstd", Configuration: zstdConfig{Level: s.Level}})
	case CodecLZ4, CodecBloscZstd:
		inner = append(inner, namedConfig{Name: "blosc", Configuration: bloscConfig{
			CName: s.Codec.BloscCName(), CLevel: s.Level, Shuffle: s.Shuffle.String(),
			TypeSize: s.DType.Size(), BlockSize: 0,
		}})
	}
	a := arrayJSON{
		ZarrFormat:       3,
		NodeType:         "array",
		Shape:            shape,
		DataType:         s.DType.String(),
		ChunkGrid:        namedConfig{Name: "regular", Configuration: chunkShapeConfig{s.Shard}},
		ChunkKeyEncoding: namedConfig{Name: "default", Configuration: separatorConfig{"/"}},
		FillValue:        0,
		Codecs: []namedConfig{{Name: "sharding_indexed", Configuration: shardingConfig{
			ChunkShape: s.Chunk,
			Codecs:     inner,
			IndexCodecs: []namedConfig{
				{Name: "bytes", Configuration: endianConfig{"little"}},
				{Name: "crc32c"},
			},
			IndexLocation: "end",
		}}},
		DimensionNames: s.DimNames,
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal zarr.json: %w", err)
	}
	return append(b, '\n'), nil
}

// Shuffle is the blosc shuffle filter named in zarr.json: blosc's own type,
// whose String is the name zarr.json uses, so that the two cannot drift.
type Shuffle = blosc.Shuffle

const (
	NoShuffle   = blosc.NoShuffle
	ByteShuffle = blosc.ByteShuffle
	BitShuffle  = blosc.BitShuffle
)

// Shuffles lists every filter, for tests and help texts.
var Shuffles = blosc.Shuffles

// Meta is a parsed array zarr.json, written by us or by another Zarr v3
// writer (tensorstore, zarr-python, zarrita). It holds what a reader needs
// beyond the Spec.
type Meta struct {
	// Spec is the array as zwrite models it. Shape is the stored shape
	// (Shape[0] == 0 means an empty array here, not "growing"); Shard is the
	// chunk_grid shape (the storage unit, one file per key); Chunk is the
	// inner chunk shape for a sharded array and equals Shard otherwise.
	// Level is the zstd level or the blosc clevel. Spec.Validate may reject
	// a Meta.Spec from another writer (e.g. chunks larger than the shape):
	// readers must not call it.
	Spec Spec

	// Sharded is true when codecs[0] is sharding_indexed.
	Sharded bool
	// IndexAtStart is index_location "start"; the default is "end".
	IndexAtStart bool
	// IndexCRC is true when the index codecs end in crc32c (4 more bytes
	// after the entries).
	IndexCRC bool

	// ZstdChecksum is the zstd codec's checksum flag (the frames then carry
	// an XXH64 content checksum, which the zstd decoder verifies).
	ZstdChecksum bool
	// Blosc settings as written in the codec configuration; the blosc
	// header of every chunk is authoritative for decoding.
	BloscCName     string
	BloscShuffle   Shuffle
	BloscTypeSize  int
	BloscBlockSize int

	// Fill is the fill value as one little-endian element of DType.
	Fill []byte

	// Separator and V2Keys describe chunk_key_encoding: default ("c/0/1",
	// separator "/" or ".") or v2 ("0.1").
	Separator string
	V2Keys    bool

	// Attributes is the raw attributes object (nil when absent).
	Attributes json.RawMessage
}

// ChunkKey is the store key of the storage unit (shard, or chunk when not
// sharded) at grid coordinates coords.
func (m *Meta) ChunkKey(coords []int64) string {
	var b strings.Builder
	if !m.V2Keys {
		b.WriteString("c")
	}
	for i, c := range coords {
		if i > 0 || !m.V2Keys {
			b.WriteString(m.Separator)
		}
		b.WriteString(strconv.FormatInt(c, 10))
	}
	if m.V2Keys && len(coords) == 0 {
		b.WriteString("0")
	}
	return b.String()
}

// CompressorString describes the chunk codec for humans (zwrite info):
// "none", "zstd level 1 checksum", "blosc lz4 clevel 1 shuffle".
func (m *Meta) CompressorString() string {
	switch m.Spec.Codec {
	case CodecZstd:
		s := fmt.Sprintf("zstd level %d", m.Spec.Level)
		if m.ZstdChecksum {
			s += " checksum"
		}
		return s
	case CodecLZ4, CodecBloscZstd:
		return fmt.Sprintf("blosc %s clevel %d %s", m.BloscCName, m.Spec.Level, m.BloscShuffle)
	}
	return "none"
}

// FillIsZero reports whether the fill value is all zero bytes.
func (m *Meta) FillIsZero() bool {
	for _, c := range m.Fill {
		if c != 0 {
			return false
		}
	}
	return true
}

type rawNamed struct {
	Name          string          `json:"name"`
	Configuration json.RawMessage `json:"configuration"`
}

// parseNamed reads a codec or grid entry: an object {name, configuration}
// or, as the v3 spec allows, a bare string naming it.
func parseNamed(raw json.RawMessage, field string) (rawNamed, error) {
	var n rawNamed
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &n.Name); err != nil {
			return n, fmt.Errorf("%s: %w", field, err)
		}
		return n, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return n, fmt.Errorf("%s: want an object with name and configuration: %w", field, err)
	}
	for k, v := range m {
		switch k {
		case "name":
			if err := json.Unmarshal(v, &n.Name); err != nil {
				return n, fmt.Errorf("%s.name: %w", field, err)
			}
		case "configuration":
			n.Configuration = v
		case "must_understand":
			// only meaningful for extensions; the names we accept are core
		default:
			return n, fmt.Errorf("%s: unknown key %q", field, k)
		}
	}
	if n.Name == "" {
		return n, fmt.Errorf("%s: name is missing", field)
	}
	return n, nil
}

// decodeConfig unmarshals a configuration object strictly into v (unknown
// keys are an error, so a setting we would silently ignore is reported).
func decodeConfig(raw json.RawMessage, v any, field string) error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s.configuration: %w", field, err)
	}
	return nil
}

func parseShape(raw json.RawMessage, field string, zeroOK bool) ([]int64, error) {
	var v []int64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: want a list of integers: %w", field, err)
	}
	for i, x := range v {
		if x < 0 || (!zeroOK && x == 0) {
			return nil, fmt.Errorf("%s[%d] = %d is out of range", field, i, x)
		}
	}
	return v, nil
}

// ParseArray reads an array zarr.json. It accepts what zwrite writes and
// what other v3 writers commonly write: sharded (sharding_indexed, index at
// start or end, with or without crc32c) or not; a bytes codec with or
// without endian (1-byte types); zstd with or without checksum; blosc with
// any shuffle; dimension_names; numeric and special fill values. Anything a
// reader here cannot decode is an error naming the field.
func ParseArray(b []byte) (*Meta, error) {
	m, err := parseArray(b)
	if err != nil {
		return nil, fmt.Errorf("parse zarr.json: %w", err)
	}
	return m, nil
}

func parseArray(b []byte) (*Meta, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	m := &Meta{Separator: "/"}
	var zf int
	if err := json.Unmarshal(top["zarr_format"], &zf); err != nil || zf != 3 {
		return nil, fmt.Errorf("zarr_format: want 3, got %s", orMissing(top["zarr_format"]))
	}
	var nt string
	if err := json.Unmarshal(top["node_type"], &nt); err != nil || nt != "array" {
		return nil, fmt.Errorf("node_type: want \"array\", got %s (a group is not an array)", orMissing(top["node_type"]))
	}
	for k, v := range top {
		switch k {
		case "zarr_format", "node_type", "shape", "data_type", "chunk_grid",
			"chunk_key_encoding", "fill_value", "codecs", "attributes", "dimension_names":
		case "consolidated_metadata":
			// zarr-python may record it (null) on any node; nothing to read.
		case "storage_transformers":
			var st []json.RawMessage
			if err := json.Unmarshal(v, &st); err != nil || len(st) != 0 {
				return nil, fmt.Errorf("storage_transformers: not supported (want none)")
			}
		default:
			// Extension fields must be understood unless they say otherwise.
			var ext struct {
				MustUnderstand *bool `json:"must_understand"`
			}
			if json.Unmarshal(v, &ext) == nil && ext.MustUnderstand != nil && !*ext.MustUnderstand {
				continue
			}
			return nil, fmt.Errorf("%s: unknown field (not supported)", k)
		}
	}

	shape, err := parseShape(top["shape"], "shape", true)
	if err != nil {
		return nil, err
	}
	n := len(shape)
	if n == 0 || n > MaxRank {
		return nil, fmt.Errorf("shape: %d dimensions not supported (want 1 to %d)", n, MaxRank)
	}
	m.Spec.Shape = shape

	var dt string
	if err := json.Unmarshal(top["data_type"], &dt); err != nil {
		return nil, fmt.Errorf("data_type: want a string, got %s", orMissing(top["data_type"]))
	}
	if m.Spec.DType, err = dtypeByName(dt); err != nil {
		return nil, err
	}

	// chunk_grid
	g, err := parseNamed(top["chunk_grid"], "chunk_grid")
	if err != nil {
		return nil, err
	}
	if g.Name != "regular" {
		return nil, fmt.Errorf("chunk_grid.name: %q not supported (want regular)", g.Name)
	}
	var gc struct {
		ChunkShape json.RawMessage `json:"chunk_shape"`
	}
	if err := decodeConfig(g.Configuration, &gc, "chunk_grid"); err != nil {
		return nil, err
	}
	if m.Spec.Shard, err = parseShape(gc.ChunkShape, "chunk_grid.configuration.chunk_shape", false); err != nil {
		return nil, err
	}
	if len(m.Spec.Shard) != n {
		return nil, fmt.Errorf("chunk_grid.configuration.chunk_shape: %d dimensions for shape of %d", len(m.Spec.Shard), n)
	}

	// chunk_key_encoding
	if raw, ok := top["chunk_key_encoding"]; ok {
		k, err := parseNamed(raw, "chunk_key_encoding")
		if err != nil {
			return nil, err
		}
		var kc struct {
			Separator *string `json:"separator"`
		}
		if err := decodeConfig(k.Configuration, &kc, "chunk_key_encoding"); err != nil {
			return nil, err
		}
		switch k.Name {
		case "default":
		case "v2":
			m.V2Keys = true
			m.Separator = "."
		default:
			return nil, fmt.Errorf("chunk_key_encoding.name: %q not supported (want default or v2)", k.Name)
		}
		if kc.Separator != nil {
			if *kc.Separator != "/" && *kc.Separator != "." {
				return nil, fmt.Errorf("chunk_key_encoding.configuration.separator: %q not supported (want \"/\" or \".\")", *kc.Separator)
			}
			m.Separator = *kc.Separator
		}
	} else {
		return nil, fmt.Errorf("chunk_key_encoding: missing")
	}

	// codecs
	var codecs []json.RawMessage
	if err := json.Unmarshal(top["codecs"], &codecs); err != nil {
		return nil, fmt.Errorf("codecs: want a list: %w", err)
	}
	if len(codecs) == 0 {
		return nil, fmt.Errorf("codecs: empty (a bytes or sharding_indexed codec is required)")
	}
	first, err := parseNamed(codecs[0], "codecs[0]")
	if err != nil {
		return nil, err
	}
	if first.Name == "sharding_indexed" {
		if len(codecs) != 1 {
			return nil, fmt.Errorf("codecs[1]: codecs after sharding_indexed are not supported")
		}
		m.Sharded = true
		var sc struct {
			ChunkShape    json.RawMessage   `json:"chunk_shape"`
			Codecs        []json.RawMessage `json:"codecs"`
			IndexCodecs   []json.RawMessage `json:"index_codecs"`
			IndexLocation *string           `json:"index_location"`
		}
		if err := decodeConfig(first.Configuration, &sc, "codecs[0]"); err != nil {
			return nil, err
		}
		const f = "codecs[0].configuration"
		if m.Spec.Chunk, err = parseShape(sc.ChunkShape, f+".chunk_shape", false); err != nil {
			return nil, err
		}
		if len(m.Spec.Chunk) != n {
			return nil, fmt.Errorf("%s.chunk_shape: %d dimensions for shape of %d", f, len(m.Spec.Chunk), n)
		}
		for d := range m.Spec.Chunk {
			if m.Spec.Shard[d]%m.Spec.Chunk[d] != 0 {
				return nil, fmt.Errorf("%s.chunk_shape[%d] = %d does not divide the shard shape %d", f, d, m.Spec.Chunk[d], m.Spec.Shard[d])
			}
		}
		if sc.IndexLocation != nil {
			switch *sc.IndexLocation {
			case "end":
			case "start":
				m.IndexAtStart = true
			default:
				return nil, fmt.Errorf("%s.index_location: %q (want start or end)", f, *sc.IndexLocation)
			}
		}
		if err := m.parseIndexCodecs(sc.IndexCodecs, f+".index_codecs"); err != nil {
			return nil, err
		}
		if err := m.parseChain(sc.Codecs, f+".codecs"); err != nil {
			return nil, err
		}
		if _, ok := prodLimit(m.Spec.ShardChunks(), 1<<27); !ok {
			return nil, fmt.Errorf("%s.chunk_shape: more than 2^27 inner chunks per shard (a 2 GiB index) is not supported", f)
		}
	} else {
		m.Spec.Chunk = append([]int64(nil), m.Spec.Shard...)
		if err := m.parseChain(codecs, "codecs"); err != nil {
			return nil, err
		}
	}
	if _, ok := prodLimit(append([]int64{int64(m.Spec.DType.Size())}, m.Spec.Chunk...), 1<<31-1); !ok {
		return nil, fmt.Errorf("chunk of %v elements is too large (limit 2 GiB)", m.Spec.Chunk)
	}
	// An empty dimension counts as 1 here: the product with a 0 in it is 0,
	// and would let the other dimensions (and so the frame size, the grid
	// and every offset a reader computes from them) overflow int64.
	nonEmpty := []int64{int64(m.Spec.DType.Size())}
	for _, x := range m.Spec.Shape {
		nonEmpty = append(nonEmpty, max(x, 1))
	}
	if _, ok := prodLimit(nonEmpty, 1<<62); !ok {
		return nil, fmt.Errorf("shape: %v is too large (more than 2^62 bytes, counting an empty dimension as 1)", m.Spec.Shape)
	}
	if _, ok := prodLimit(append(append([]int64(nil), m.Spec.Shard...), int64(m.Spec.DType.Size())), 1<<62); !ok {
		return nil, fmt.Errorf("chunk_grid.configuration.chunk_shape: %v is too large", m.Spec.Shard)
	}

	// fill_value
	if m.Fill, err = parseFill(top["fill_value"], m.Spec.DType); err != nil {
		return nil, err
	}

	if raw, ok := top["dimension_names"]; ok && string(raw) != "null" {
		var names []*string
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, fmt.Errorf("dimension_names: want a list of strings or nulls: %w", err)
		}
		if len(names) != n {
			return nil, fmt.Errorf("dimension_names: %d names for %d dimensions", len(names), n)
		}
		m.Spec.DimNames = make([]string, n)
		for i, s := range names {
			if s != nil {
				m.Spec.DimNames[i] = *s
			}
		}
	}
	if raw, ok := top["attributes"]; ok {
		var a map[string]json.RawMessage
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("attributes: want an object: %w", err)
		}
		m.Attributes = append(json.RawMessage(nil), raw...)
	}
	return m, nil
}

// prodLimit multiplies v (all >= 0) and reports false when the product
// exceeds limit, without overflowing on the way.
func prodLimit(v []int64, limit int64) (int64, bool) {
	p := int64(1)
	for _, x := range v {
		if x == 0 {
			return 0, true
		}
	}
	for _, x := range v {
		if x > limit/p {
			return 0, false
		}
		p *= x
	}
	return p, true
}

func orMissing(raw json.RawMessage) string {
	if raw == nil {
		return "nothing (missing)"
	}
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}

func dtypeByName(s string) (DType, error) {
	for d, name := range dtypeNames {
		if s == name {
			return d, nil
		}
	}
	return 0, fmt.Errorf("data_type: %q not supported (want one of uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32, float64)", s)
}

// parseBytesCodec checks a bytes codec: little endian, or no endian at all
// for 1-byte types (where it is optional).
func parseBytesCodec(c rawNamed, size int, field string) error {
	var bc struct {
		Endian *string `json:"endian"`
	}
	if err := decodeConfig(c.Configuration, &bc, field); err != nil {
		return err
	}
	switch {
	case bc.Endian == nil:
		if size > 1 {
			return fmt.Errorf("%s.configuration.endian: missing (required for %d-byte types)", field, size)
		}
	case *bc.Endian == "little":
	case *bc.Endian == "big":
		if size > 1 {
			return fmt.Errorf("%s.configuration.endian: \"big\" not supported (zwrite reads little endian only)", field)
		}
	default:
		return fmt.Errorf("%s.configuration.endian: %q (want little or big)", field, *bc.Endian)
	}
	return nil
}

func (m *Meta) parseIndexCodecs(list []json.RawMessage, field string) error {
	if len(list) == 0 {
		return fmt.Errorf("%s: missing or empty", field)
	}
	c, err := parseNamed(list[0], field+"[0]")
	if err != nil {
		return err
	}
	if c.Name != "bytes" && c.Name != "endian" {
		return fmt.Errorf("%s[0].name: %q not supported (want bytes)", field, c.Name)
	}
	// The index is uint64: endian is required and must be little.
	if err := parseBytesCodec(c, 8, fmt.Sprintf("%s[0]", field)); err != nil {
		return err
	}
	for i := 1; i < len(list); i++ {
		f := fmt.Sprintf("%s[%d]", field, i)
		c, err := parseNamed(list[i], f)
		if err != nil {
			return err
		}
		if c.Name != "crc32c" || i != 1 {
			return fmt.Errorf("%s.name: %q not supported in index_codecs (want bytes, then optionally crc32c)", f, c.Name)
		}
		if err := decodeConfig(c.Configuration, &struct{}{}, f); err != nil {
			return err
		}
		m.IndexCRC = true
	}
	return nil
}

// parseChain reads the chunk codec chain: bytes, then at most one
// compressor (zstd or blosc).
func (m *Meta) parseChain(list []json.RawMessage, field string) error {
	m.Spec.Codec = CodecNone
	size := m.Spec.DType.Size()
	if len(list) == 0 {
		return fmt.Errorf("%s: empty (a bytes codec is required)", field)
	}
	c, err := parseNamed(list[0], field+"[0]")
	if err != nil {
		return err
	}
	switch c.Name {
	case "bytes", "endian":
	case "transpose":
		return fmt.Errorf("%s[0].name: \"transpose\" not supported", field)
	default:
		return fmt.Errorf("%s[0].name: %q not supported (want bytes)", field, c.Name)
	}
	if err := parseBytesCodec(c, size, field+"[0]"); err != nil {
		return err
	}
	if len(list) > 2 {
		return fmt.Errorf("%s[2]: more than one compressor is not supported", field)
	}
	if len(list) == 1 {
		return nil
	}
	f := field + "[1]"
	c, err = parseNamed(list[1], f)
	if err != nil {
		return err
	}
	switch c.Name {
	case "zstd":
		var zc struct {
			Level    *int  `json:"level"`
			Checksum *bool `json:"checksum"`
		}
		if err := decodeConfig(c.Configuration, &zc, f); err != nil {
			return err
		}
		m.Spec.Codec = CodecZstd
		if zc.Level != nil {
			m.Spec.Level = *zc.Level
		}
		if zc.Checksum != nil {
			m.ZstdChecksum = *zc.Checksum
		}
	case "blosc":
		var bc struct {
			CName     *string `json:"cname"`
			CLevel    *int    `json:"clevel"`
			Shuffle   *string `json:"shuffle"`
			TypeSize  *int    `json:"typesize"`
			BlockSize *int    `json:"blocksize"`
		}
		if err := decodeConfig(c.Configuration, &bc, f); err != nil {
			return err
		}
		if bc.CName == nil {
			return fmt.Errorf("%s.configuration.cname: missing", f)
		}
		switch *bc.CName {
		case "lz4":
			m.Spec.Codec = CodecLZ4
		case "zstd":
			m.Spec.Codec = CodecBloscZstd
		default:
			return fmt.Errorf("%s.configuration.cname: %q not supported (zwrite reads blosc with lz4 or zstd)", f, *bc.CName)
		}
		m.BloscCName = *bc.CName
		if bc.CLevel != nil {
			if *bc.CLevel < 0 || *bc.CLevel > 9 {
				return fmt.Errorf("%s.configuration.clevel: %d out of range 0..9", f, *bc.CLevel)
			}
			m.Spec.Level = *bc.CLevel
		}
		m.BloscShuffle = NoShuffle
		if bc.Shuffle != nil {
			ok := false
			for _, sh := range []Shuffle{NoShuffle, ByteShuffle, BitShuffle} {
				if *bc.Shuffle == sh.String() {
					m.BloscShuffle, ok = sh, true
				}
			}
			if !ok {
				return fmt.Errorf("%s.configuration.shuffle: %q (want noshuffle, shuffle or bitshuffle)", f, *bc.Shuffle)
			}
		}
		m.Spec.Shuffle = m.BloscShuffle
		// typesize and blocksize only describe how the chunks were made
		// (every blosc header records both), but they must be ones blosc
		// can have written: a typesize of 1..255 bytes, a block size >= 0.
		m.BloscTypeSize = size
		if bc.TypeSize != nil {
			if *bc.TypeSize < 1 || *bc.TypeSize > 255 {
				return fmt.Errorf("%s.configuration.typesize: %d out of range 1..255", f, *bc.TypeSize)
			}
			m.BloscTypeSize = *bc.TypeSize
		}
		if bc.BlockSize != nil {
			if *bc.BlockSize < 0 {
				return fmt.Errorf("%s.configuration.blocksize: %d is negative", f, *bc.BlockSize)
			}
			m.BloscBlockSize = *bc.BlockSize
		}
	case "crc32c", "gzip", "transpose", "sharding_indexed":
		return fmt.Errorf("%s.name: %q not supported here (zwrite reads none, zstd, blosc-lz4 and blosc-zstd chunks)", f, c.Name)
	default:
		return fmt.Errorf("%s.name: unknown codec %q", f, c.Name)
	}
	return nil
}

// parseFill turns fill_value into one little-endian element: an integer
// for integer types; a number, "NaN", "Infinity", "-Infinity" or a hex bit
// pattern "0x7fc00000" for floats. null is read as 0 (zarr v2 habit).
func parseFill(raw json.RawMessage, d DType) ([]byte, error) {
	out := make([]byte, d.Size())
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("fill_value: missing")
	}
	if string(raw) == "null" {
		return out, nil
	}
	isFloat := d == Float32 || d == Float64
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("fill_value: %w", err)
		}
		if !isFloat {
			return nil, fmt.Errorf("fill_value: string %q is not valid for %s", s, d)
		}
		var f float64
		switch {
		case s == "NaN":
			f = math.NaN()
		case s == "Infinity":
			f = math.Inf(1)
		case s == "-Infinity":
			f = math.Inf(-1)
		case strings.HasPrefix(s, "0x"):
			bits, err := strconv.ParseUint(s[2:], 16, d.Size()*8)
			if err != nil || len(s) != 2+2*d.Size() {
				return nil, fmt.Errorf("fill_value: %q is not a %d-byte hex pattern", s, d.Size())
			}
			if d == Float32 {
				binary.LittleEndian.PutUint32(out, uint32(bits))
			} else {
				binary.LittleEndian.PutUint64(out, bits)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("fill_value: %q not understood (want a number, NaN, Infinity, -Infinity or 0x hex)", s)
		}
		putFloat(out, d, f)
		return out, nil
	}
	if string(raw) == "true" || string(raw) == "false" {
		return nil, fmt.Errorf("fill_value: %s is not valid for %s", raw, d)
	}
	num := string(raw)
	if isFloat {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return nil, fmt.Errorf("fill_value: %s is not a number", orMissing(raw))
		}
		putFloat(out, d, f)
		return out, nil
	}
	// Integers: accept 5 and 5.0, reject 5.5 and out-of-range values.
	var u uint64
	neg := strings.HasPrefix(num, "-")
	if v, err := strconv.ParseInt(num, 10, 64); err == nil {
		u = uint64(v)
	} else if v, err := strconv.ParseUint(num, 10, 64); err == nil {
		u = v
	} else if f, err := strconv.ParseFloat(num, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		u = uint64(int64(f))
	} else {
		return nil, fmt.Errorf("fill_value: %s is not an integer", orMissing(raw))
	}
	bits := uint(d.Size() * 8)
	signed := d == Int8 || d == Int16 || d == Int32 || d == Int64
	if bits < 64 {
		if signed {
			v := int64(u)
			if v < -(1<<(bits-1)) || v >= 1<<(bits-1) {
				return nil, fmt.Errorf("fill_value: %s out of range for %s", raw, d)
			}
		} else if neg || u >= 1<<bits {
			return nil, fmt.Errorf("fill_value: %s out of range for %s", raw, d)
		}
	} else if !signed && neg {
		return nil, fmt.Errorf("fill_value: %s out of range for %s", raw, d)
	}
	for i := range out {
		out[i] = byte(u >> (8 * i))
	}
	return out, nil
}

func putFloat(out []byte, d DType, f float64) {
	if d == Float32 {
		binary.LittleEndian.PutUint32(out, math.Float32bits(float32(f)))
	} else {
		binary.LittleEndian.PutUint64(out, math.Float64bits(f))
	}
}
