package zarr

import (
	"bytes"
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
type Array struct {
	// Meta is the parsed zarr.json.
	Meta *Meta

	fsys  fs.FS
	s     *Spec // &Meta.Spec
	zdec  *zstd.Decoder
	bdec  blosc.Decoder
	fill  []byte // one chunk of the fill value
	enc   []byte // encoded chunk scratch
	shard shardCache
}

// Open reads STORE/zarr.json from fsys (rooted at the store) and prepares
// to read chunks.
func Open(fsys fs.FS) (*Array, error) {
	b, err := fs.ReadFile(fsys, "zarr.json")
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	m, err := ParseArray(b)
	if err != nil {
		return nil, err
	}
	a := &Array{Meta: m, fsys: fsys, s: &m.Spec}
	cb := m.Spec.ChunkBytes()
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
	a.fill = make([]byte, cb)
	if !m.FillIsZero() {
		for i := 0; i < len(a.fill); i += len(m.Fill) {
			copy(a.fill[i:], m.Fill)
		}
	}
	return a, nil
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

// shardCache holds the open shard file and decoded index of the shards of
// one shard row (the reader's working set), so that reading an epoch opens
// and indexes each shard once.
type shardCache struct {
	row     int64
	entries map[string]*openShard
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

// fileReaderAt gives random access to an fs.File: directly for *os.File
// and fstest files, through Seek+Read otherwise.
type seekReaderAt struct{ f io.ReadSeeker }

func (s seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.f, p)
}

// openShardFile opens the shard with storage key key and decodes its index.
func (a *Array) openShardFile(key string) (*openShard, error) {
	f, err := a.fsys.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return &openShard{missing: true}, nil
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
		return fail(fmt.Errorf("not a regular file"))
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
func (a *Array) shardFor(coords []int64) (*openShard, string, int, error) {
	n := len(coords)
	var sc [MaxRank]int64
	inner := int64(0)
	for d := 0; d < n; d++ {
		per := a.s.Shard[d] / a.s.Chunk[d]
		sc[d] = coords[d] / per
		inner = inner*per + coords[d]%per
	}
	key := a.Meta.ChunkKey(sc[:n])
	if a.shard.entries == nil || a.shard.row != sc[0] {
		if err := a.shard.reset(); err != nil {
			return nil, key, 0, err
		}
		a.shard.row = sc[0]
		a.shard.entries = map[string]*openShard{}
	}
	s, ok := a.shard.entries[key]
	if !ok {
		var err error
		if s, err = a.openShardFile(key); err != nil {
			return nil, key, 0, err
		}
		a.shard.entries[key] = s
	}
	return s, key, int(inner), nil
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
	s, key, inner, err := a.shardFor(coords)
	if err != nil {
		return nil, err
	}
	out, err := a.readInner(dst, s, inner)
	if err != nil {
		return nil, fmt.Errorf("read chunk %v (%s): %w", coords, key, err)
	}
	return out, nil
}

// readInner decodes entry inner of s (the whole file when unsharded).
func (a *Array) readInner(dst []byte, s *openShard, inner int) ([]byte, error) {
	cb := int(a.s.ChunkBytes())
	if s.missing {
		return append(dst[:0], a.fill...), nil
	}
	var off, nb uint64
	if a.Meta.Sharded {
		e := s.index[inner]
		if e.Empty() {
			return append(dst[:0], a.fill...), nil
		}
		if e.Offset < s.dataLo || e.Offset > s.dataHi || e.Nbytes > s.dataHi-e.Offset {
			return nil, fmt.Errorf("index entry %d (offset %d, %d bytes) lies outside the chunk data [%d, %d)", inner, e.Offset, e.Nbytes, s.dataLo, s.dataHi)
		}
		off, nb = e.Offset, e.Nbytes
	} else {
		nb = uint64(s.size)
	}
	if cap(a.enc) < int(nb) {
		a.enc = make([]byte, nb)
	}
	enc := a.enc[:nb]
	if n, err := s.r.ReadAt(enc, int64(off)); n != len(enc) {
		return nil, fmt.Errorf("read %d bytes at %d: %w", nb, off, err)
	}
	return a.decode(dst, enc, cb)
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

// ReadAll writes the whole array to w in C order. It works one epoch
// (chunk[0] frames) at a time, so memory stays at one epoch of frames plus
// the index of each shard in the current shard row, whatever the shard size.
func (a *Array) ReadAll(w io.Writer) error {
	s := a.s
	n := len(s.Shape)
	fb := s.FrameBytes()
	ep := s.Chunk[0]
	if ep*fb > 1<<34 {
		return fmt.Errorf("read: an epoch of %d frames is %d bytes, too large to buffer", ep, ep*fb)
	}
	grid := a.ChunkGridAll()
	if prod(grid) == 0 {
		return nil // an empty array (some dimension is 0)
	}
	buf := make([]byte, ep*fb)
	var chunk []byte
	coords := make([]int64, n)
	for e := int64(0); e < grid[0]; e++ {
		frames := min(ep, s.Shape[0]-e*ep)
		coords[0] = e
		for d := 1; d < n; d++ {
			coords[d] = 0
		}
		for {
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
		if _, err := w.Write(buf[:frames*fb]); err != nil {
			return fmt.Errorf("read: write output: %w", err)
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
	Problems      []string // everything wrong, most important first; at most maxProblems
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
	var r Report
	err := a.walk(&r, nil)
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

// walk visits every file of the store, sums sizes and calls visit with the
// storage-grid coordinates of each file that is a chunk key of this array.
func (a *Array) walk(r *Report, visit func(key string, coords []int64, size int64)) error {
	sgrid := make([]int64, len(a.s.Shape))
	for d := range sgrid {
		sgrid[d] = ceilDiv(a.s.Shape[d], a.s.Shard[d])
	}
	return fs.WalkDir(a.fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("list store: %w", err)
		}
		if de.IsDir() || p == "zarr.json" {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return fmt.Errorf("list store: %w", err)
		}
		coords, ok := a.parseKey(p)
		if !ok {
			r.Stray = append(r.Stray, p)
			return nil
		}
		r.Shards++
		r.BytesStored += info.Size()
		for d, c := range coords {
			if c >= sgrid[d] {
				r.problem("%s: data beyond the shape %v", p, a.s.Shape)
				return nil
			}
		}
		if visit != nil {
			visit(p, coords, info.Size())
		}
		return nil
	})
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

// Verify checks the whole store: metadata (already parsed by Open), every
// storage file's index length and crc32c, index entries inside the file and
// not overlapping, every written chunk decoding to exactly the chunk size,
// no data beyond the shape; with opts.Raw, the array's bytes against Raw.
// The report is filled as far as the checks got; the error is non-nil when
// anything is wrong (the details are in Report.Problems) or the store could
// not be read.
func (a *Array) Verify(opts VerifyOptions) (Report, error) {
	var r Report
	s := a.s
	cps := s.ChunksPerShard()
	decode := opts.Raw == nil
	var chunk []byte
	present := map[string]bool{}
	err := a.walk(&r, func(key string, sc []int64, size int64) {
		present[key] = true
		sh, err := a.openShardFile(key)
		if err != nil {
			r.problem("%v", err)
			return
		}
		if sh.missing {
			return // removed while we looked
		}
		defer sh.f.Close()
		if !a.Meta.Sharded {
			r.ChunksWritten++
			if decode {
				if _, err := a.readInner(chunk, sh, 0); err != nil {
					r.problem("chunk %s: %v", key, err)
				}
			}
			return
		}
		if err := CheckEntries(sh.index, sh.dataLo, sh.dataHi); err != nil {
			r.problem("shard %s: %v", key, err)
			return
		}
		per := s.ShardChunks()
		var ic [MaxRank]int64
		for i := int64(0); i < cps; i++ {
			// Global chunk coordinates of inner chunk i (C order in the shard).
			rem := i
			beyond := false
			for d := len(per) - 1; d >= 0; d-- {
				ic[d] = sc[d]*per[d] + rem%per[d]
				rem /= per[d]
				if ic[d]*s.Chunk[d] >= s.Shape[d] {
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
	})
	if err != nil {
		return r, err
	}
	// Chunks in storage files that do not exist read as fill value.
	grid := a.ChunkGridAll()
	r.Chunks = prod(grid)
	if r.Chunks > 0 {
		sgrid := make([]int64, len(grid))
		for d := range sgrid {
			sgrid[d] = ceilDiv(s.Shape[d], s.Shard[d])
		}
		sc := make([]int64, len(grid))
		for {
			if !present[a.Meta.ChunkKey(sc)] {
				r.ShardsMissing++
			}
			if !nextCoords(sc, sgrid) {
				break
			}
		}
	}
	r.ChunksEmpty = r.Chunks - r.ChunksWritten
	if opts.Raw != nil && len(r.Problems) == 0 {
		cw := &compareWriter{raw: opts.Raw, frame: s.FrameBytes()}
		if err := a.ReadAll(cw); err != nil {
			if cw.diff != "" {
				r.problem("%s", cw.diff)
			} else {
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
