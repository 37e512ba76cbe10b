package pipeline

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/zarr"
)

// storeDecode turns one stored inner chunk back into its raw bytes.
type chunkDecoder func(codec zarr.Codec, src []byte, size int64) ([]byte, error)

var zdec, _ = zstd.NewReader(nil)

// decodeChunk handles none and zstd here; lz4 (blosc) goes through the
// decoder installed by the stage tests (see extraDecoders).
func decodeChunk(codec zarr.Codec, src []byte, size int64) ([]byte, error) {
	switch codec {
	case zarr.CodecNone:
		return src, nil
	case zarr.CodecZstd:
		return zdec.DecodeAll(src, make([]byte, 0, size))
	}
	if d := extraDecoders[codec]; d != nil {
		return d(codec, src, size)
	}
	return nil, fmt.Errorf("no decoder for %v in the tests", codec)
}

var extraDecoders = map[zarr.Codec]chunkDecoder{
	zarr.CodecLZ4:       bloscDecode,
	zarr.CodecBloscZstd: bloscDecode,
}

func bloscDecode(_ zarr.Codec, src []byte, size int64) ([]byte, error) {
	return blosc.Decode(make([]byte, 0, size), src)
}

// shardKeyCoords parses "c/1/2/3" for a rank-n array.
func shardKeyCoords(key string, n int) ([]int64, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != n+1 || parts[0] != "c" {
		return nil, false
	}
	c := make([]int64, n)
	for i, p := range parts[1:] {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return nil, false
		}
		c[i] = v
	}
	return c, true
}

// readStore checks a store held as files (key → bytes) the way verify
// does and returns its array bytes in C order: zarr.json parses and
// matches spec; no temp files; every shard inside the grid, its index
// checksum right, its entries inside the data and not overlapping, every
// chunk decoding to the chunk size. Shards of rows past shape[0] are
// allowed (a writer that stopped between committing a row and naming it
// in zarr.json leaves them; readers never look there) but must be sound
// too.
func readStore(files map[string][]byte, spec *zarr.Spec) (shape0 int64, data []byte, err error) {
	mj, ok := files["zarr.json"]
	if !ok {
		return 0, nil, fmt.Errorf("no zarr.json")
	}
	m, err := zarr.ParseArray(mj)
	if err != nil {
		return 0, nil, err
	}
	shape0 = m.Spec.Shape[0]
	want, err := zarr.MarshalArray(spec, shape0)
	if err != nil {
		return 0, nil, err
	}
	if !bytes.Equal(want, mj) {
		return 0, nil, fmt.Errorf("zarr.json differs from the spec's:\n%s\nwant\n%s", mj, want)
	}
	n := spec.Rank()
	isz := int64(spec.DType.Size())
	frameElems := spec.FrameBytes() / isz
	data = make([]byte, shape0*spec.FrameBytes())
	rows := (shape0 + spec.Shard[0] - 1) / spec.Shard[0]
	scs := spec.ShardChunks()
	cps := int(spec.ChunksPerShard())
	fstr := make([]int64, n)
	fstr[n-1] = 1
	for d := n - 2; d >= 1; d-- {
		fstr[d] = fstr[d+1] * spec.Shape[d+1]
	}
	seen := 0
	for key := range files {
		if strings.Contains(key, ".tmp") {
			return 0, nil, fmt.Errorf("temp file %s left in the store", key)
		}
	}
	beyond := map[string][]byte{}
	maxRow := rows
	for key := range files {
		if c, ok := shardKeyCoords(key, n); ok && c[0] >= rows {
			maxRow = max(maxRow, c[0]+1)
		}
	}
	for row := int64(0); row < maxRow; row++ {
		for col := int64(0); col < spec.ShardsPerRow(); col++ {
			sc := spec.ShardCoords(row, col)
			key := zarr.ShardKey(sc)
			b, ok := files[key]
			if !ok {
				continue
			}
			seen++
			if row >= rows {
				beyond[key] = b
			}
			ixs := zarr.IndexSize(cps)
			if len(b) < ixs {
				return 0, nil, fmt.Errorf("%s: %d bytes, shorter than its index", key, len(b))
			}
			ents, err := zarr.DecodeIndex(b[len(b)-ixs:], cps)
			if err != nil {
				return 0, nil, fmt.Errorf("%s: %w", key, err)
			}
			if err := zarr.CheckEntries(ents, 0, uint64(len(b)-ixs)); err != nil {
				return 0, nil, fmt.Errorf("%s: %w", key, err)
			}
			for i, e := range ents {
				if e.Empty() {
					continue
				}
				raw, err := decodeChunk(spec.Codec, b[e.Offset:e.Offset+e.Nbytes], spec.ChunkBytes())
				if err != nil {
					return 0, nil, fmt.Errorf("%s chunk %d: %w", key, i, err)
				}
				if int64(len(raw)) != spec.ChunkBytes() {
					return 0, nil, fmt.Errorf("%s chunk %d: %d bytes decoded, want %d", key, i, len(raw), spec.ChunkBytes())
				}
				// chunk coords in the array
				cc := make([]int64, n)
				r := int64(i)
				for d := n - 1; d >= 0; d-- {
					cc[d] = sc[d]*scs[d] + r%scs[d]
					r /= scs[d]
				}
				el := make([]int64, n)
				for j := int64(0); j < spec.ChunkElems(); j++ {
					in := true
					src := int64(0)
					for d := 0; d < n; d++ {
						g := cc[d]*spec.Chunk[d] + el[d]
						lim := spec.Shape[d]
						if d == 0 {
							lim = shape0
							src += g * frameElems
						} else {
							src += g * fstr[d]
						}
						if g >= lim {
							in = false
						}
					}
					if in && row < rows {
						copy(data[src*isz:(src+1)*isz], raw[j*isz:(j+1)*isz])
					}
					for d := n - 1; d >= 0; d-- {
						el[d]++
						if el[d] < spec.Chunk[d] {
							break
						}
						el[d] = 0
					}
				}
			}
		}
	}
	if other := len(files) - 1 - seen; other != 0 {
		return 0, nil, fmt.Errorf("%d files in the store besides zarr.json and the shards inside shape[0] = %d", other, shape0)
	}
	// And zarr's own reader, as zwrite verify runs it, must agree.
	fsys := fstest.MapFS{}
	for k, v := range files {
		if _, ok := beyond[k]; !ok {
			fsys[k] = &fstest.MapFile{Data: v}
		}
	}
	a, err := zarr.Open(fsys)
	if err != nil {
		return 0, nil, fmt.Errorf("zarr.Open: %w", err)
	}
	defer a.Close()
	rep, err := a.Verify(zarr.VerifyOptions{Raw: bytes.NewReader(data)})
	if err != nil {
		return 0, nil, fmt.Errorf("zarr verify: %w", err)
	}
	if len(rep.Problems) > 0 || len(rep.Stray) > 0 || !rep.RawCompared || rep.Frames != shape0 {
		return 0, nil, fmt.Errorf("zarr verify: %+v", rep)
	}
	return shape0, data, nil
}
