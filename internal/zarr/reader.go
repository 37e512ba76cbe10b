package zarr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
)

// Array reads a Zarr v3 array store through an fs.FS (os.DirFS for a
// directory). It decodes none, zstd and blosc-lz4 chunks, sharded or not.
// An Array is not safe for concurrent use; Close releases its decoder.
//
// Every size it reads from the store is checked before it is used: the
// metadata is size-capped before it is parsed, an index only read when the
// file holds it, an encoded chunk only read when it is no larger than the
// codec can make one chunk and lies inside its file, and no decoder writes
// more than the chunk size. Memory therefore stays within one epoch of
// frames, a few chunks and the indexes of one shard row, whatever the
// files say.
type Array struct {
	// Meta is the parsed zarr.json.
	Meta *Meta

	fsys  fs.FS
	s     *Spec   // &Meta.Spec
	sgrid []int64 // storage files along every dimension (ceil(shape/shard))
	cb    int     // ChunkBytes
	zdec  *zstd.Decoder
	bdec  blosc.Decoder
	enc   []byte // encoded chunk scratch
	shard shardCache
}

// MaxMetadataBytes is the largest zarr.json Open reads. Real array
// metadata is a few KiB even with long attributes; 16 MiB leaves room for
// any of them while a store cannot make the reader load a huge (or
// endless) file as JSON.
const MaxMetadataBytes = 16 << 20

// Open reads STORE/zarr.json from fsys (rooted at the store) and prepares
// to read chunks. zarr.json must be a regular file of at most
// MaxMetadataBytes. fsys decides where symbolic links may lead and whether
// opening a named pipe blocks (os.DirFS follows links anywhere and blocks;
// the zwrite CLI hands in a file system that refuses both).
func Open(fsys fs.FS) (*Array, error) {
	b, err := readMetadata(fsys)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	m, err := ParseArray(b)
	if err != nil {
		return nil, err
	}
	a := &Array{Meta: m, fsys: fsys, s: &m.Spec}
	a.sgrid = make([]int64, len(m.Spec.Shape))
	for d := range a.sgrid {
		a.sgrid[d] = ceilDiv(m.Spec.Shape[d], m.Spec.Shard[d])
	}
	// ParseArray caps a chunk below 2 GiB, so this fits an int.
	cb := m.Spec.ChunkBytes()
	a.cb = int(cb)
	if m.Spec.Codec == CodecZstd {
		// One goroutine; output capped at the chunk size (DecodeAllCapLimit
		// with cap(dst) = chunk size), so a corrupt frame cannot make the
		// reader allocate more than a chunk. The window limit only has to
		// admit what writers declare: encoders may round the window up past
		// the content size.
		a.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(max(4*cb, 8<<20))), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, fmt.Errorf("open store: zstd: %w", err)
		}
	}
	return a, nil
}

// readMetadata reads zarr.json, refusing anything but a regular file of at
// most MaxMetadataBytes before reading a byte of it.
func readMetadata(fsys fs.FS) ([]byte, error) {
	return readMetadataAt(fsys, "zarr.json")
}

// readMetadataAt is readMetadata of the file name (a zarr.json anywhere
// in the store), naming it in its messages.
func readMetadataAt(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (it is a %s)", name, ModeName(st.Mode()))
	}
	if st.Size() > MaxMetadataBytes {
		return nil, fmt.Errorf("%s is %d bytes; metadata over %d MiB is refused", name, st.Size(), MaxMetadataBytes>>20)
	}
	// The limit also holds when the size Stat gave was wrong (a file still
	// growing, a file system that does not know).
	b, err := io.ReadAll(io.LimitReader(f, MaxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > MaxMetadataBytes {
		return nil, fmt.Errorf("%s is more than %d MiB; metadata that large is refused", name, MaxMetadataBytes>>20)
	}
	return b, nil
}

// ModeName names the kind of file a mode describes, for messages that
// refuse one: "named pipe", "device", "directory".
func ModeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "irregular file"
}

// Close releases the decoder and open shard files. Safe to call twice.
func (a *Array) Close() error {
	err := a.shard.reset()
	if a.zdec != nil {
		a.zdec.Close()
		a.zdec = nil
	}
	return err
}

// ChunkGridAll is the number of inner chunks along every dimension,
// dim 0 included (ceil(shape/chunk)).
func (a *Array) ChunkGridAll() []int64 {
	g := make([]int64, len(a.s.Shape))
	for d := range g {
		g[d] = ceilDiv(a.s.Shape[d], a.s.Chunk[d])
	}
	return g
}

// shardCache holds the open shard files and decoded indexes of the shards
// of one shard row (the reader's working set), so that reading an epoch
// opens and indexes each shard once. Entries are keyed by the shard's
// C-order position within the row, so a lookup builds no key string.
type shardCache struct {
	row     int64
	entries map[int64]*openShard
}

type openShard struct {
	f       fs.File // nil when the shard file does not exist
	r       io.ReaderAt
	size    int64
	index   []IndexEntry
	dataLo  uint64
	dataHi  uint64
	missing bool
}

// missingShard stands for every absent shard file: the cache then costs a
// map slot per absent shard, not an allocation.
var missingShard = &openShard{missing: true}

func (c *shardCache) reset() error {
	var first error
	for _, s := range c.entries {
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	c.entries = nil
	return first
}

// seekReaderAt gives random access to an fs.File that is only a Seeker.
type seekReaderAt struct{ f io.ReadSeeker }

func (s seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.f, p)
}

// openShardFile opens the shard with storage key key and decodes its index.
// An absent file is missingShard.
func (a *Array) openShardFile(key string) (*openShard, error) {
	f, err := a.fsys.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return missingShard, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open shard %s: %w", key, err)
	}
	s := &openShard{f: f}
	fail := func(err error) (*openShard, error) {
		f.Close()
		return nil, fmt.Errorf("shard %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file (it is a %s)", ModeName(st.Mode())))
	}
	s.size = st.Size()
	switch r := f.(type) {
	case io.ReaderAt:
		s.r = r
	case io.ReadSeeker:
		s.r = seekReaderAt{r}
	default:
		return fail(fmt.Errorf("file system gives no random access"))
	}
	if !a.Meta.Sharded {
		return s, nil
	}
	// ParseArray caps the entries per shard at 2^27, so isz fits easily;
	// it is allocated only once the file is known to hold it.
	n := int(a.s.ChunksPerShard())
	isz := int64(16 * n)
	if a.Meta.IndexCRC {
		isz += 4
	}
	if s.size < isz {
		return fail(fmt.Errorf("%d bytes is shorter than its %d-byte index", s.size, isz))
	}
	off := s.size - isz
	s.dataLo, s.dataHi = 0, uint64(off)
	if a.Meta.IndexAtStart {
		off = 0
		s.dataLo, s.dataHi = uint64(isz), uint64(s.size)
	}
	buf := make([]byte, isz)
	if n, err := s.r.ReadAt(buf, off); n != len(buf) {
		return fail(fmt.Errorf("read index: %w", err))
	}
	if s.index, err = DecodeIndexInto(nil, buf, n, a.Meta.IndexCRC); err != nil {
		return fail(err)
	}
	return s, nil
}

// shardFor returns the open shard holding inner chunk coords and the
// C-order position of the chunk inside it.
func (a *Array) shardFor(coords []int64) (*openShard, int, error) {
	n := len(coords)
	var sc [MaxRank]int64
	inner, col := int64(0), int64(0)
	for d := 0; d < n; d++ {
		per := a.s.Shard[d] / a.s.Chunk[d]
		sc[d] = coords[d] / per
		inner = inner*per + coords[d]%per
		if d > 0 {
			col = col*a.sgrid[d] + sc[d]
		}
	}
	if a.shard.entries == nil || a.shard.row != sc[0] {
		if err := a.shard.reset(); err != nil {
			return nil, 0, err
		}
		a.shard.row = sc[0]
		a.shard.entries = map[int64]*openShard{}
	}
	s, ok := a.shard.entries[col]
	if !ok {
		var err error
		if s, err = a.openShardFile(a.Meta.ChunkKey(sc[:n])); err != nil {
			return nil, 0, err
		}
		a.shard.entries[col] = s
	}
	return s, int(inner), nil
}

// ReadChunk returns inner chunk coords (indices in the inner-chunk grid, all
// dims) decoded: ChunkBytes() bytes, edge chunks padded as stored. It reuses
// dst when it has the capacity. A chunk never written, or in a missing shard
// file, reads as the fill value.
func (a *Array) ReadChunk(dst []byte, coords []int64) ([]byte, error) {
	if len(coords) != len(a.s.Shape) {
		return nil, fmt.Errorf("read chunk %v: want %d coordinates", coords, len(a.s.Shape))
	}
	for d, c := range coords {
		if c < 0 || c >= ceilDiv(a.s.Shape[d], a.s.Chunk[d]) {
			return nil, fmt.Errorf("read chunk %v: outside the chunk grid %v", coords, a.ChunkGridAll())
		}
	}
	s, inner, err := a.shardFor(coords)
	if err != nil {
		return nil, err
	}
	out, err := a.readInner(dst, s, inner)
	if err != nil {
		return nil, fmt.Errorf("read chunk %v (%s): %w", coords, a.keyOf(coords), err)
	}
	return out, nil
}

// keyOf is the storage key of the file holding inner chunk coords.
func (a *Array) keyOf(coords []int64) string {
	sc := make([]int64, len(coords))
	for d := range sc {
		sc[d] = coords[d] / (a.s.Shard[d] / a.s.Chunk[d])
	}
	return a.Meta.ChunkKey(sc)
}

// fillChunk returns one chunk of the fill value in dst's storage when it
// has the capacity. Built on demand, so that a store whose metadata names
// a huge chunk costs nothing until a chunk is read.
func (a *Array) fillChunk(dst []byte) []byte {
	if cap(dst) < a.cb {
		dst = make([]byte, a.cb)
	}
	dst = dst[:a.cb]
	if a.Meta.FillIsZero() {
		clear(dst)
		return dst
	}
	// Repeat the element by doubling copies (the chunk is whole elements).
	n := copy(dst, a.Meta.Fill)
	for n < len(dst) {
		n += copy(dst[n:], dst[:n])
	}
	return dst
}

// Decoding bounds (see maxEncoded and checkEncoded).
const (
	// zstdFrameSlack covers what ZSTD_compressBound leaves out of a frame:
	// the largest frame header (magic 4 + descriptor 1 + window 1 +
	// dictionary id 4 + content size 8 bytes, RFC 8878 3.1.1) and the
	// 4-byte content checksum.
	zstdFrameSlack = 18 + 4
	// zstdMaxExpansion bounds what one encoded byte of a zstd frame can
	// decode to: the smallest block that regenerates anything is an RLE
	// block (3-byte header, 1 byte) of at most 128 KiB (RFC 8878 3.1.1.2).
	zstdMaxExpansion = (128 << 10) / 4
)

// zstdCompressBound is libzstd's ZSTD_COMPRESSBOUND (zstd.h): the largest
// single-pass frame of n input bytes.
func zstdCompressBound(n int64) int64 {
	b := n + n>>8
	if n < 128<<10 {
		b += (128<<10 - n) >> 11
	}
	return b
}

// maxEncoded is the largest encoded form one chunk of cb bytes can have:
// none stores it as is; blosc adds at most its 16-byte header (c-blosc's
// BLOSC_MAX_OVERHEAD: a buffer that would grow more is stored memcpyed);
// zstd writes at most ZSTD_compressBound plus header and checksum. An index
// entry or chunk file larger than this is damage, refused before anything
// that size is allocated.
func maxEncoded(c Codec, cb int64) int64 {
	switch {
	case c == CodecZstd:
		return zstdCompressBound(cb) + zstdFrameSlack
	case c.Blosc():
		return cb + blosc.HeaderSize
	}
	return cb
}

// readInner decodes entry inner of s (the whole file when unsharded).
func (a *Array) readInner(dst []byte, s *openShard, inner int) ([]byte, error) {
	if s.missing {
		return a.fillChunk(dst), nil
	}
	var off, nb uint64
	limit := uint64(maxEncoded(a.s.Codec, int64(a.cb)))
	if a.Meta.Sharded {
		e := s.index[inner]
		if e.Empty() {
			return a.fillChunk(dst), nil
		}
		if e.Offset < s.dataLo || e.Offset > s.dataHi || e.Nbytes > s.dataHi-e.Offset {
			return nil, fmt.Errorf("index entry %d (offset %d, %d bytes) lies outside the chunk data [%d, %d)", inner, e.Offset, e.Nbytes, s.dataLo, s.dataHi)
		}
		if e.Nbytes > limit {
			return nil, fmt.Errorf("index entry %d claims %d bytes; a %d-byte chunk encodes to at most %d with %s", inner, e.Nbytes, a.cb, limit, a.s.Codec)
		}
		off, nb = e.Offset, e.Nbytes
	} else {
		nb = uint64(s.size)
		if nb > limit {
			return nil, fmt.Errorf("chunk file is %d bytes; a %d-byte chunk encodes to at most %d with %s", nb, a.cb, limit, a.s.Codec)
		}
	}
	if cap(a.enc) < int(nb) {
		a.enc = make([]byte, nb)
	}
	enc := a.enc[:nb]
	if n, err := s.r.ReadAt(enc, int64(off)); n != len(enc) {
		return nil, fmt.Errorf("read %d bytes at %d: %w", nb, off, err)
	}
	if err := a.checkEncoded(enc); err != nil {
		return nil, err
	}
	return a.decode(dst, enc, a.cb)
}

// checkEncoded refuses an encoded chunk that cannot decode to exactly one
// chunk before the decoder sizes its output by it: a blosc header must
// state the chunk size (the decoder would otherwise allocate what the
// header says), and a zstd frame must be long enough to expand to it.
func (a *Array) checkEncoded(enc []byte) error {
	switch {
	case a.s.Codec.Blosc():
		h, err := blosc.ParseHeader(enc)
		if err != nil {
			return err
		}
		if h.NBytes != a.cb {
			return fmt.Errorf("blosc header says the chunk decodes to %d bytes, want %d", h.NBytes, a.cb)
		}
	case a.s.Codec == CodecZstd:
		if int64(len(enc))*zstdMaxExpansion < int64(a.cb) {
			return fmt.Errorf("zstd: %d bytes cannot decode to a %d-byte chunk", len(enc), a.cb)
		}
	}
	return nil
}

// decode turns one encoded chunk into exactly cb bytes.
func (a *Array) decode(dst, enc []byte, cb int) ([]byte, error) {
	var out []byte
	var err error
	switch a.s.Codec {
	case CodecNone:
		out = append(dst[:0], enc...)
	case CodecZstd:
		if cap(dst) < cb {
			dst = make([]byte, 0, cb)
		}
		out, err = a.zdec.DecodeAll(enc, dst[:0:cb])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
	case CodecLZ4, CodecBloscZstd:
		// The blosc header says which compressor each chunk uses; the
		// codec only names what the metadata promised. DecodeN refuses a
		// header that does not decode to exactly one chunk before it
		// allocates or decodes anything.
		out, err = a.bdec.DecodeN(dst, enc, cb)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("codec %v not supported", a.s.Codec)
	}
	if len(out) != cb {
		return nil, fmt.Errorf("chunk decodes to %d bytes, want %d", len(out), cb)
	}
	return out, nil
}

// ReadAll writes the whole array to w in C order: ReadAllContext without
// a way to stop it.
func (a *Array) ReadAll(w io.Writer) error {
	return a.ReadAllContext(context.Background(), w)
}

// Reading limits.
const (
	// maxEpochBuffer bounds the frames ReadAll holds at once (one epoch).
	// Real epochs are MiB to a few GiB; 16 GiB admits all of them.
	maxEpochBuffer = 1 << 34
	// writePiece is the most ReadAll hands w in one call, so that an
	// interrupt is noticed between pieces of a large epoch.
	writePiece = 4 << 20
)

// ReadAllContext writes the whole array to w in C order. It works one epoch
// (chunk[0] frames, or shape[0] when the chunk is taller than the array) at
// a time, so memory stays at one epoch of frames plus the index of each
// shard in the current shard row, whatever the shard size. It checks ctx
// before every chunk and every write and returns the context's error once
// ctx is done.
func (a *Array) ReadAllContext(ctx context.Context, w io.Writer) error {
	return a.ReadFramesContext(ctx, w, 0, a.s.Shape[0])
}

// ReadFramesContext writes frames [lo, hi) of the array to w in C order,
// like ReadAllContext (one epoch buffered at a time). A resume reads the
// frames of the last, partial shard row back with it.
func (a *Array) ReadFramesContext(ctx context.Context, w io.Writer, lo, hi int64) error {
	s := a.s
	n := len(s.Shape)
	if lo < 0 || hi > s.Shape[0] || lo > hi {
		return fmt.Errorf("read frames [%d, %d): outside the array's %d frames", lo, hi, s.Shape[0])
	}
	grid := a.ChunkGridAll()
	if prod(grid) == 0 || lo == hi {
		return nil // an empty array (some dimension is 0)
	}
	fb := s.FrameBytes() // ParseArray keeps it below 2^62
	ep := min(s.Chunk[0], s.Shape[0])
	size, ok := mulCap(ep, fb, maxEpochBuffer)
	if !ok {
		return fmt.Errorf("read: an epoch of %d frames of %d bytes is more than %d GiB, too large to buffer", ep, fb, maxEpochBuffer>>30)
	}
	buf := make([]byte, size)
	var chunk []byte
	coords := make([]int64, n)
	for e := lo / s.Chunk[0]; e*s.Chunk[0] < hi; e++ {
		frames := min(s.Chunk[0], s.Shape[0]-e*s.Chunk[0])
		coords[0] = e
		for d := 1; d < n; d++ {
			coords[d] = 0
		}
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read: %w", context.Cause(ctx))
			}
			var err error
			chunk, err = a.ReadChunk(chunk, coords)
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			a.scatter(buf, chunk, coords, frames)
			if !nextCoords(coords[1:], grid[1:]) {
				break
			}
		}
		first := max(lo-e*s.Chunk[0], 0)
		last := min(hi-e*s.Chunk[0], frames)
		for out := buf[first*fb : last*fb]; len(out) > 0; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read: %w", context.Cause(ctx))
			}
			k := min(len(out), writePiece)
			if _, err := w.Write(out[:k]); err != nil {
				return fmt.Errorf("read: write output: %w", err)
			}
			out = out[k:]
		}
	}
	return nil
}

// nextCoords advances c in C order within grid; false when done.
func nextCoords(c, grid []int64) bool {
	for d := len(c) - 1; d >= 0; d-- {
		c[d]++
		if c[d] < grid[d] {
			return true
		}
		c[d] = 0
	}
	return false
}

// scatter copies the in-shape part of chunk (at chunk coords c) into the
// epoch buffer buf, shaped [chunk[0], shape[1], ..., shape[n-1]].
func (a *Array) scatter(buf, chunk []byte, c []int64, frames int64) {
	s := a.s
	n := len(s.Shape)
	size := int64(s.DType.Size())
	var ext, org, idx [MaxRank]int64
	ext[0], org[0] = frames, 0
	for d := 1; d < n; d++ {
		org[d] = c[d] * s.Chunk[d]
		ext[d] = min(s.Chunk[d], s.Shape[d]-org[d])
	}
	row := ext[n-1] * size // contiguous bytes per innermost run
	for {
		// Offsets of this run in the chunk and in the epoch buffer.
		var co, bo int64
		for d := 0; d < n; d++ {
			i := idx[d]
			if d == n-1 {
				i = 0
			}
			co = co*s.Chunk[d] + i
			bo = bo*epochDim(s, d) + org[d] + i
		}
		copy(buf[bo*size:bo*size+row], chunk[co*size:co*size+row])
		d := n - 2
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < ext[d] {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// epochDim is the extent of the epoch buffer along d.
func epochDim(s *Spec, d int) int64 {
	if d == 0 {
		return s.Chunk[0]
	}
	return s.Shape[d]
}

// Report is what Verify (and Usage, partly) found out about a store.
type Report struct {
	Frames        int64 // shape[0]
	Shards        int64 // storage files present (shards, or chunks when unsharded)
	ShardsMissing int64 // expected files that are absent (read as fill value)
	Chunks        int64 // inner chunks inside the shape
	ChunksWritten int64
	ChunksEmpty   int64 // never written (fill value)
	BytesStored   int64 // sum of storage file sizes, zarr.json excluded
	BytesRaw      int64 // prod(shape) * itemsize
	Ratio         float64
	RawCompared   bool     // the array equalled VerifyOptions.Raw
	Stray         []string // files that are no chunk key of this array (temp files of a crashed writer, say)
	// Beyond are chunk keys of whole shard rows past shape[0]: a writer
	// that stopped between committing a row and naming it in zarr.json
	// leaves them. Readers never look there (a resume rewrites them), so
	// they are no problem; BytesBeyond is their size, not in BytesStored.
	Beyond      []string
	BytesBeyond int64
	Problems    []string // everything wrong, most important first; at most maxProblems
}

const maxProblems = 20

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// VerifyOptions tune Verify. The zero value checks structure and decodes
// every chunk.
type VerifyOptions struct {
	// Raw, when set, is compared with the array's bytes in C order (zwrite
	// verify --raw FILE). The chunks are then decoded once, by that pass.
	Raw io.Reader
}

// Usage sums the storage files without reading them: enough for zwrite
// info. Problems and chunk counts stay empty.
func (a *Array) Usage() (Report, error) {
	return a.UsageContext(context.Background())
}

// UsageContext is Usage, stopped with the context's error once ctx is
// done. A chunk key that is not a regular file (a named pipe, a device, a
// link the file system will not follow) is an error: no reader could read
// it.
func (a *Array) UsageContext(ctx context.Context) (Report, error) {
	var r Report
	_, err := a.walk(ctx, &r, func(p string, err error) error {
		return fmt.Errorf("%s: %w", p, err)
	}, nil)
	if err != nil {
		err = fmt.Errorf("usage: %w", err)
	}
	a.finish(&r)
	return r, err
}

func (a *Array) finish(r *Report) {
	r.Frames = a.s.Shape[0]
	r.BytesRaw = prod(a.s.Shape) * int64(a.s.DType.Size())
	if r.BytesStored > 0 {
		r.Ratio = float64(r.BytesRaw) / float64(r.BytesStored)
	}
}

// walk visits every file of the store (checking ctx before each), sums
// sizes, lists strays and calls visit with the storage-grid coordinates of
// each regular file that is a chunk key of this array and lies inside the
// shape. A chunk key that is no regular file goes to bad, and walk stops
// when bad returns an error. It returns the number of chunk keys inside the
// storage grid, whatever their state: the files that are not missing.
func (a *Array) walk(ctx context.Context, r *Report, bad func(p string, err error) error,
	visit func(key string, coords []int64, size int64) error) (inGrid int64, err error) {
	err = fs.WalkDir(a.fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("list store: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if p == "." || p == "zarr.json" {
			return nil
		}
		coords, isKey := a.parseKey(p)
		if !isKey {
			if !de.IsDir() {
				r.Stray = append(r.Stray, p)
			}
			return nil
		}
		beyond, rowBeyond := false, coords[0] >= a.sgrid[0]
		for d, c := range coords {
			if c >= a.sgrid[d] {
				beyond = true
				if d > 0 {
					rowBeyond = false
				}
			}
		}
		if !beyond {
			inGrid++
		}
		info, err := a.keyInfo(p, de)
		if err != nil {
			if err := bad(p, err); err != nil {
				return err
			}
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if rowBeyond && !de.IsDir() {
			r.Beyond = append(r.Beyond, p)
			r.BytesBeyond += info.Size()
			return nil
		}
		r.Shards++
		r.BytesStored += info.Size()
		if beyond {
			r.problem("%s: data beyond the shape %v", p, a.s.Shape)
			return nil
		}
		if visit != nil {
			return visit(p, coords, info.Size())
		}
		return nil
	})
	return inGrid, err
}

// keyInfo describes the file at chunk key p, which must be a regular file.
// A symbolic link is followed through the file system, which decides where
// links may lead.
func (a *Array) keyInfo(p string, de fs.DirEntry) (fs.FileInfo, error) {
	info, err := de.Info()
	if err != nil {
		return nil, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		info, err = fs.Stat(a.fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("broken symbolic link")
		}
		if err != nil {
			return nil, err
		}
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (it is a %s)", ModeName(info.Mode()))
	}
	return info, nil
}

// parseKey turns a store path into storage-grid coordinates.
func (a *Array) parseKey(p string) ([]int64, bool) {
	m := a.Meta
	if m.Separator == "/" {
		p = path.Clean(p)
	}
	if !m.V2Keys {
		if !strings.HasPrefix(p, "c"+m.Separator) {
			return nil, false
		}
		p = p[2:]
	}
	parts := strings.Split(p, m.Separator)
	if len(parts) != len(a.s.Shape) {
		return nil, false
	}
	c := make([]int64, len(parts))
	for i, s := range parts {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 || strconv.FormatInt(v, 10) != s {
			return nil, false
		}
		c[i] = v
	}
	return c, true
}

// Verify checks the whole store: VerifyContext without a way to stop it.
func (a *Array) Verify(opts VerifyOptions) (Report, error) {
	return a.VerifyContext(context.Background(), opts)
}

// VerifyContext checks the whole store: metadata (already parsed by Open),
// every storage file's index length and crc32c, index entries inside the
// file and not overlapping, every written chunk decoding to exactly the
// chunk size, no data beyond the shape, every chunk key a regular file;
// with opts.Raw, the array's bytes against Raw. It opens only the files
// that exist (absent ones are counted, not looked up), so its time follows
// the store's files, not the shape its metadata claims. It checks ctx
// before every file and chunk and returns the context's error once ctx is
// done. The report is filled as far as the checks got; the error is
// non-nil when anything is wrong (the details are in Report.Problems) or
// the store could not be read.
func (a *Array) VerifyContext(ctx context.Context, opts VerifyOptions) (Report, error) {
	var r Report
	s := a.s
	cps := s.ChunksPerShard()
	per := s.ShardChunks()
	grid := a.ChunkGridAll()
	decode := opts.Raw == nil
	var chunk []byte
	problem := func(p string, err error) error {
		r.problem("%s: %v", p, err)
		return nil
	}
	present, err := a.walk(ctx, &r, problem, func(key string, sc []int64, size int64) error {
		sh, err := a.openShardFile(key)
		if err != nil {
			r.problem("%v", err)
			return nil
		}
		if sh.missing {
			return nil // removed while we looked
		}
		defer sh.f.Close()
		if !a.Meta.Sharded {
			r.ChunksWritten++
			if decode {
				if chunk, err = a.readInner(chunk, sh, 0); err != nil {
					r.problem("chunk %s: %v", key, err)
				}
			}
			return nil
		}
		if err := CheckEntries(sh.index, sh.dataLo, sh.dataHi); err != nil {
			r.problem("shard %s: %v", key, err)
			return nil
		}
		var ic [MaxRank]int64
		for i := int64(0); i < cps; i++ {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			// Global chunk coordinates of inner chunk i (C order in the
			// shard), compared with the grid rather than multiplied out.
			rem := i
			beyond := false
			for d := len(per) - 1; d >= 0; d-- {
				ic[d] = sc[d]*per[d] + rem%per[d]
				rem /= per[d]
				if ic[d] >= grid[d] {
					beyond = true
				}
			}
			e := sh.index[i]
			switch {
			case beyond && !e.Empty():
				r.problem("shard %s: inner chunk %d %v holds data beyond the shape %v", key, i, ic[:len(per)], s.Shape)
			case beyond:
			case e.Empty():
			default:
				r.ChunksWritten++
				if decode {
					var err error
					if chunk, err = a.readInner(chunk, sh, int(i)); err != nil {
						r.problem("shard %s: inner chunk %d %v: %v", key, i, ic[:len(per)], err)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	// Chunks in storage files that do not exist read as fill value. They are
	// counted, not looked up: the metadata may name far more files than
	// exist. ParseArray keeps both products below 2^62.
	r.Chunks = prod(grid)
	r.ShardsMissing = prod(a.sgrid) - present
	r.ChunksEmpty = r.Chunks - r.ChunksWritten
	if opts.Raw != nil && len(r.Problems) == 0 {
		cw := &compareWriter{raw: opts.Raw, frame: s.FrameBytes()}
		if err := a.ReadAllContext(ctx, cw); err != nil {
			switch {
			case ctx.Err() != nil:
				return r, fmt.Errorf("verify: %w", context.Cause(ctx))
			case cw.diff != "":
				r.problem("%s", cw.diff)
			default:
				r.problem("%v", err)
			}
		} else if extra := cw.trailing(); extra != "" {
			r.problem("%s", extra)
		} else {
			r.RawCompared = true
		}
	}
	a.finish(&r)
	if len(r.Problems) > 0 {
		return r, fmt.Errorf("verify: %d problem(s), first: %s", len(r.Problems), r.Problems[0])
	}
	return r, nil
}

// compareWriter checks what ReadAll writes against a raw reader.
type compareWriter struct {
	raw   io.Reader
	frame int64
	off   int64
	buf   []byte
	diff  string
}

var errDiffers = errors.New("array differs from the raw input")

func (c *compareWriter) Write(p []byte) (int, error) {
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	n, err := io.ReadFull(c.raw, b)
	if i := firstDiff(p[:n], b[:n]); i >= 0 {
		at := c.off + int64(i)
		c.diff = fmt.Sprintf("array differs from the raw input at byte %d (frame %d)", at, at/max(c.frame, 1))
		return 0, errDiffers
	}
	if err != nil {
		at := c.off + int64(n)
		c.diff = fmt.Sprintf("raw input ended at byte %d (frame %d), the array goes on", at, at/max(c.frame, 1))
		return n, errDiffers
	}
	c.off += int64(n)
	return n, nil
}

// trailing reports raw bytes beyond the end of the array.
func (c *compareWriter) trailing() string {
	var one [1]byte
	if n, _ := io.ReadFull(c.raw, one[:]); n > 0 {
		return fmt.Sprintf("raw input is longer than the array (%d bytes)", c.off)
	}
	return ""
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
