package zarr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
)

// hostileMeta is a sharded zarr.json in zwrite's layout for any geometry,
// valid or not: what a hostile store can claim in a few hundred bytes.
func hostileMeta(shape, chunk, shard []int64, dtype string, c Codec) []byte {
	js := func(v []int64) string { return strings.ReplaceAll(fmt.Sprint(v), " ", ",") }
	comp := ""
	switch c {
	case CodecZstd:
		comp = `,{"name":"zstd","configuration":{"level":1,"checksum":false}}`
	case CodecLZ4:
		comp = `,{"name":"blosc","configuration":{"cname":"lz4","clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":0}}`
	}
	return fmt.Appendf(nil, `{"zarr_format":3,"node_type":"array","shape":%s,"data_type":%q,
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":%s}},
"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
"codecs":[{"name":"sharding_indexed","configuration":{"chunk_shape":%s,
"codecs":[{"name":"bytes","configuration":{"endian":"little"}}%s],
"index_codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],
"index_location":"end"}}]}`, js(shape), dtype, js(shard), js(chunk), comp)
}

// buildShard lays out encoded chunks (nil: never written) back to back,
// then their index with its crc32c.
func buildShard(chunks [][]byte) []byte {
	var body []byte
	e := make([]IndexEntry, len(chunks))
	for i, c := range chunks {
		if c == nil {
			e[i] = IndexEntry{EmptyEntry, EmptyEntry}
			continue
		}
		e[i] = IndexEntry{uint64(len(body)), uint64(len(c))}
		body = append(body, c...)
	}
	return AppendIndex(body, e)
}

// sparseShard writes a shard file of claim+index bytes whose index says
// its first chunk is claim bytes long at offset 0. The file is sparse: it
// costs no disk, but a reader that believes the entry allocates claim.
func sparseShard(t *testing.T, path string, claim uint64, entries int) {
	t.Helper()
	e := make([]IndexEntry, entries)
	for i := range e {
		e[i] = IndexEntry{EmptyEntry, EmptyEntry}
	}
	e[0] = IndexEntry{0, claim}
	sparseFile(t, path, int64(claim), AppendIndex(nil, e))
}

// sparseFile writes tail at offset at of a sparse file.
func sparseFile(t *testing.T, path string, at int64, tail []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(at + int64(len(tail))); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	if _, err := f.WriteAt(tail, at); err != nil {
		t.Fatal(err)
	}
}

// dirStore writes files into a fresh directory and returns it as an
// os.DirFS.
func dirStore(t *testing.T, files map[string][]byte) (fs.FS, string) {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return os.DirFS(dir), dir
}

// allocated returns the bytes fn allocates on the heap (all goroutines;
// the tests here run one at a time).
func allocated(fn func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	fn()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// hangLimit fails a test whose reader does not come back at all. It is no
// speed requirement: a correct run takes milliseconds.
const hangLimit = 2 * time.Minute

// noHang runs fn and fails t if it has not returned after hangLimit.
func noHang(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(hangLimit):
		t.Fatalf("%s did not return within %v: the reader hangs", what, hangLimit)
	}
}

var errEnough = errors.New("enough output")

// limitWriter keeps the first n bytes written and then fails, for arrays
// too large (or endless) to read to the end.
type limitWriter struct {
	n   int64
	buf bytes.Buffer
}

func (w *limitWriter) Write(p []byte) (int, error) {
	room := w.n - int64(w.buf.Len())
	if int64(len(p)) > room {
		w.buf.Write(p[:room])
		return int(room), errEnough
	}
	return w.buf.Write(p)
}

// hostileResult is what one pass of every reader entry point gave.
type hostileResult struct {
	openErr, verifyErr, usageErr, readErr error
	rep, usage                            Report
	out                                   []byte
}

// readEverything opens fsys and runs Verify, Usage and ReadAll (keeping at
// most limit bytes of output when limit > 0).
func readEverything(fsys fs.FS, limit int64, noRead bool) (r hostileResult) {
	a, err := Open(fsys)
	if err != nil {
		r.openErr = err
		return r
	}
	defer a.Close()
	r.rep, r.verifyErr = a.Verify(VerifyOptions{})
	r.usage, r.usageErr = a.Usage()
	if noRead {
		return r
	}
	w := &limitWriter{n: limit}
	if limit <= 0 {
		w.n = 1 << 40
	}
	r.readErr = a.ReadAll(w)
	r.out = w.buf.Bytes()
	return r
}

// wantErr checks err against a message fragment ("" = no error).
func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want no error", what, err)
	case want != "" && err == nil:
		t.Errorf("%s succeeded, want an error containing %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: %v, want an error containing %q", what, err, want)
	}
}

// TestHostileStores opens stores built to make a reader crash, hang or
// exhaust memory, and checks that every entry point (Open, Verify, Usage,
// ReadAll) refuses them with a message saying what is wrong, or reads what
// is there, within a memory bound that the metadata and the file sizes
// justify.
func TestHostileStores(t *testing.T) {
	small := func(c Codec) Spec {
		return Spec{Shape: []int64{0, 6}, DType: Uint16, Chunk: []int64{2, 3}, Shard: []int64{4, 6}, Codec: c, Level: 1}
	}
	data := randData(8*6*2, 11)
	good := func(c Codec) fstest.MapFS { return writeStore(t, small(c), 8, data, storeOpts{}) }
	with := func(c Codec, key string, f *fstest.MapFile) fstest.MapFS {
		fsys := good(c)
		if f == nil {
			delete(fsys, key)
		} else {
			fsys[key] = f
		}
		return fsys
	}
	// data with shard c/0/0 (frames 0..3) read as the fill value.
	firstRowFill := append(make([]byte, 4*6*2), data[4*6*2:]...)
	// Two identical shard rows, so that a link from one to the other reads
	// back as the data.
	twice := append(append([]byte(nil), data[:4*6*2]...), data[:4*6*2]...)

	// Chunks whose headers claim far more than the 64 KiB chunk of
	// shape [1, 32768] uint16: blosc buffers and zstd frames of 8 MiB of
	// zeros, a few KiB each.
	const wide, claim = 32768, 8 << 20
	var be blosc.Encoder
	bloscClaim := be.Encode(nil, make([]byte, claim), blosc.Options{TypeSize: 2, CLevel: 1})
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zstdClaim := zenc.EncodeAll(make([]byte, claim), nil)
	if len(bloscClaim) > 2*wide || len(zstdClaim) < 100 {
		t.Fatalf("claim buffers of %d (blosc) and %d (zstd) bytes do not fit the cases", len(bloscClaim), len(zstdClaim))
	}
	var zs bytes.Buffer // a streamed frame: no content size in its header
	zw, err := zstd.NewWriter(&zs, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(make([]byte, claim)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	wideStore := func(c Codec, chunk []byte) fstest.MapFS {
		return fstest.MapFS{
			"zarr.json": {Data: hostileMeta([]int64{1, wide}, []int64{1, wide}, []int64{1, wide}, "uint16", c)},
			"c/0/0":     {Data: buildShard([][]byte{chunk})},
		}
	}

	const gib64 = 64 << 30
	sizeless := &sizelessFS{}
	tests := []struct {
		name  string
		fsys  func(t *testing.T) fs.FS
		open  string // Open fails with this
		verif string // Verify fails with this ("" = passes)
		usage string // Usage fails with this ("" = passes)
		read  string // ReadAll fails with this ("" = gives want)
		want  []byte // ReadAll output (its first limit bytes when limit > 0); nil: not compared
		limit int64
		skip  bool   // ReadAll not run (it would rightly allocate the epoch)
		alloc uint64 // all four together allocate at most this (default 8 MiB)
		check func(t *testing.T, r hostileResult)
	}{
		{name: "zarr.json is a named pipe",
			fsys: func(t *testing.T) fs.FS {
				return with(CodecNone, "zarr.json", &fstest.MapFile{Data: good(CodecNone)["zarr.json"].Data, Mode: fs.ModeNamedPipe})
			},
			open: "zarr.json is not a regular file (it is a named pipe)"},
		{name: "zarr.json is a device",
			fsys: func(t *testing.T) fs.FS {
				return with(CodecNone, "zarr.json", &fstest.MapFile{Data: make([]byte, 100), Mode: fs.ModeDevice | fs.ModeCharDevice})
			},
			open: "zarr.json is not a regular file (it is a character device)"},
		{name: "zarr.json over 16 MiB",
			fsys: func(t *testing.T) fs.FS {
				js := append(good(CodecNone)["zarr.json"].Data, bytes.Repeat([]byte(" "), MaxMetadataBytes)...)
				return with(CodecNone, "zarr.json", &fstest.MapFile{Data: js})
			},
			open: "over 16 MiB is refused", alloc: 1 << 20},
		{name: "zarr.json over 16 MiB where the size is unknown",
			// The read stops at the limit even when Stat says nothing.
			fsys: func(t *testing.T) fs.FS {
				js := append(good(CodecNone)["zarr.json"].Data, bytes.Repeat([]byte(" "), 3*MaxMetadataBytes)...)
				sizeless.read = 0
				return sizeless.wrap(with(CodecNone, "zarr.json", &fstest.MapFile{Data: js}))
			},
			open: "zarr.json is more than 16 MiB", alloc: 10 * MaxMetadataBytes,
			check: func(t *testing.T, r hostileResult) {
				if sizeless.read > MaxMetadataBytes+1 {
					t.Errorf("read %d bytes of zarr.json, want at most %d", sizeless.read, MaxMetadataBytes+1)
				}
			}},
		{name: "frame bytes overflow behind an empty dim 0",
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{0, 1 << 62, 4}, []int64{1, 1, 1}, []int64{1, 1, 1}, "uint16", CodecNone)}}
			},
			open: "too large"},
		{name: "epoch of a chunk taller than the array overflows int64",
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{1, 1 << 61}, []int64{1 << 30, 1}, []int64{1 << 30, 1}, "uint8", CodecNone)}}
			},
			read: "too large to buffer", alloc: 1 << 20,
			check: func(t *testing.T, r hostileResult) {
				if r.rep.ShardsMissing != 1<<61 || r.rep.Chunks != 1<<61 {
					t.Errorf("report %+v, want 2^61 chunks in 2^61 missing shards", r.rep)
				}
			}},
		{name: "chunk taller than the array",
			// Only the frames that exist are buffered, not the chunk's 4096.
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{2, 1 << 20}, []int64{1 << 12, 1 << 8}, []int64{1 << 12, 1 << 8}, "uint8", CodecNone)}}
			},
			want: make([]byte, 2<<20), alloc: 16 << 20},
		{name: "epoch over 16 GiB",
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{4, 1 << 33}, []int64{4, 1}, []int64{4, 1}, "uint8", CodecNone)}}
			},
			read: "too large to buffer", alloc: 1 << 20},
		{name: "shape 1e17 with one shard",
			// Verify must count the missing shards, not look each one up.
			fsys: func(t *testing.T) fs.FS {
				fsys := good(CodecZstd)
				delete(fsys, "c/1/0")
				fsys["zarr.json"] = &fstest.MapFile{Data: hostileMeta([]int64{1e17, 6}, []int64{2, 3}, []int64{4, 6}, "uint16", CodecZstd)}
				return fsys
			},
			read: "enough output", limit: int64(len(data)), want: append(append([]byte(nil), data[:4*6*2]...), make([]byte, 4*6*2)...),
			check: func(t *testing.T, r hostileResult) {
				if r.rep.ShardsMissing != 1e17/4-1 || r.rep.Chunks != 1e17 || r.rep.ChunksWritten != 4 || r.rep.Shards != 1 {
					t.Errorf("report %+v, want 1e17 chunks, 4 written, 1 shard, 1e17/4-1 missing", r.rep)
				}
			}},
		{name: "huge chunk in the metadata, no files",
			// Open, Verify and Usage touch no chunk: they must not allocate one.
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{1, 1 << 30}, []int64{1, 1 << 29}, []int64{1, 1 << 29}, "uint16", CodecZstd)}}
			},
			skip: true, alloc: 1 << 20},
		{name: "index claims more entries than the file holds",
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{
					"zarr.json": {Data: hostileMeta([]int64{1 << 27}, []int64{1}, []int64{1 << 27}, "uint8", CodecNone)},
					"c/0":       {Data: make([]byte, 100)},
				}
			},
			verif: "shorter than its 2147483652-byte index", read: "shorter than its", alloc: 1 << 20},
		{name: "index entry claims 64 GiB (none)",
			fsys: func(t *testing.T) fs.FS {
				fsys, dir := dirStore(t, map[string][]byte{"zarr.json": good(CodecNone)["zarr.json"].Data})
				sparseShard(t, filepath.Join(dir, "c", "0", "0"), gib64, 4)
				return fsys
			},
			verif: "claims 68719476736 bytes; a 12-byte chunk encodes to at most 12 with none", read: "claims 68719476736 bytes", alloc: 1 << 20},
		{name: "index entry claims 64 GiB (zstd)",
			fsys: func(t *testing.T) fs.FS {
				fsys, dir := dirStore(t, map[string][]byte{"zarr.json": good(CodecZstd)["zarr.json"].Data})
				sparseShard(t, filepath.Join(dir, "c", "0", "0"), gib64, 4)
				return fsys
			},
			verif: "claims 68719476736 bytes; a 12-byte chunk encodes to at most 97 with zstd", read: "claims", alloc: 1 << 20},
		{name: "index entry claims 64 GiB (lz4)",
			fsys: func(t *testing.T) fs.FS {
				fsys, dir := dirStore(t, map[string][]byte{"zarr.json": good(CodecLZ4)["zarr.json"].Data})
				sparseShard(t, filepath.Join(dir, "c", "0", "0"), gib64, 4)
				return fsys
			},
			verif: "at most 28 with lz4", read: "claims", alloc: 1 << 20},
		{name: "unsharded chunk file of 64 GiB",
			fsys: func(t *testing.T) fs.FS {
				s := small(CodecNone)
				fsys, dir := dirStore(t, map[string][]byte{"zarr.json": []byte(plainArrayJSON(t, s, 8))})
				sparseFile(t, filepath.Join(dir, "c", "0", "0"), gib64, nil)
				return fsys
			},
			verif: "chunk file is 68719476736 bytes", read: "chunk file is 68719476736 bytes", alloc: 1 << 20},
		{name: "blosc header claims more than the chunk",
			fsys:  func(t *testing.T) fs.FS { return wideStore(CodecLZ4, bloscClaim) },
			verif: "blosc header says the chunk decodes to 8388608 bytes, want 65536", read: "blosc header says",
			alloc: 1 << 20},
		{name: "zstd frame claims more than the chunk",
			fsys:  func(t *testing.T) fs.FS { return wideStore(CodecZstd, zstdClaim) },
			verif: "zstd: decompressed size exceeds", read: "zstd: decompressed size exceeds",
			alloc: 2 << 20},
		{name: "zstd frame without a size decodes past the chunk",
			fsys:  func(t *testing.T) fs.FS { return wideStore(CodecZstd, zs.Bytes()) },
			verif: "zstd: decompressed size exceeds", read: "zstd: decompressed size exceeds",
			alloc: 2 << 20},
		{name: "zstd chunk too short for the chunk size",
			fsys: func(t *testing.T) fs.FS {
				return fstest.MapFS{
					"zarr.json": {Data: hostileMeta([]int64{1, 1 << 25}, []int64{1, 1 << 25}, []int64{1, 1 << 25}, "uint16", CodecZstd)},
					"c/0/0":     {Data: buildShard([][]byte{zstdClaim[:100]})},
				}
			},
			// ReadAll holds the 64 MiB frame; the chunk itself is never allocated.
			verif: "zstd: 100 bytes cannot decode to a 67108864-byte chunk", read: "cannot decode", alloc: 64<<20 + 1<<20},
		{name: "shard is a named pipe",
			fsys: func(t *testing.T) fs.FS {
				return with(CodecZstd, "c/0/0", &fstest.MapFile{Data: good(CodecZstd)["c/0/0"].Data, Mode: fs.ModeNamedPipe})
			},
			verif: "c/0/0: not a regular file (it is a named pipe)", usage: "c/0/0: not a regular file (it is a named pipe)",
			read: "shard c/0/0: not a regular file (it is a named pipe)"},
		{name: "shard is a device",
			fsys: func(t *testing.T) fs.FS {
				return with(CodecZstd, "c/1/0", &fstest.MapFile{Data: make([]byte, 1000), Mode: fs.ModeDevice})
			},
			verif: "c/1/0: not a regular file (it is a device)", usage: "not a regular file", read: "shard c/1/0: not a regular file"},
		{name: "shard key is a directory",
			fsys: func(t *testing.T) fs.FS {
				fsys := with(CodecZstd, "c/0/0", nil)
				fsys["c/0/0/x"] = &fstest.MapFile{Data: []byte("x")}
				return fsys
			},
			verif: "c/0/0: not a regular file (it is a directory)", usage: "it is a directory", read: "shard c/0/0: not a regular file (it is a directory)"},
		{name: "broken symbolic link as a shard",
			// Damage, which Verify reports; what it names is absent, so
			// the chunks read as the fill value.
			fsys: func(t *testing.T) fs.FS {
				return with(CodecZstd, "c/0/0", &fstest.MapFile{Data: []byte("nowhere"), Mode: fs.ModeSymlink})
			},
			verif: "c/0/0: broken symbolic link", usage: "broken symbolic link", want: firstRowFill},
		{name: "symbolic link to another shard",
			fsys: func(t *testing.T) fs.FS {
				fsys := writeStore(t, small(CodecLZ4), 8, twice, storeOpts{})
				fsys["c/1/0"] = &fstest.MapFile{Data: []byte("../0/0"), Mode: fs.ModeSymlink}
				return fsys
			},
			want: twice},
		{name: "missing shard reads as the fill value",
			fsys: func(t *testing.T) fs.FS { return with(CodecZstd, "c/0/0", nil) },
			want: firstRowFill,
			check: func(t *testing.T, r hostileResult) {
				if r.rep.ShardsMissing != 1 || r.rep.ChunksWritten != 4 || r.rep.ChunksEmpty != 4 {
					t.Errorf("report %+v, want 1 missing shard, 4 chunks written, 4 fill value", r.rep)
				}
			}},
		{name: "missing shard reads as a non-zero fill value",
			fsys: func(t *testing.T) fs.FS {
				fsys := with(CodecZstd, "c/0/0", nil)
				js := bytes.Replace(fsys["zarr.json"].Data, []byte(`"fill_value": 0`), []byte(`"fill_value": 258`), 1)
				fsys["zarr.json"] = &fstest.MapFile{Data: js}
				return fsys
			},
			want: append(bytes.Repeat([]byte{2, 1}, 4*6), data[4*6*2:]...)},
		{name: "stray named pipe is never opened",
			fsys: func(t *testing.T) fs.FS {
				return with(CodecNone, "c/notes", &fstest.MapFile{Mode: fs.ModeNamedPipe})
			},
			want: data,
			check: func(t *testing.T, r hostileResult) {
				if len(r.rep.Stray) != 1 || r.rep.Stray[0] != "c/notes" {
					t.Errorf("stray %q, want [c/notes]", r.rep.Stray)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := tc.fsys(t)
			var r hostileResult
			var alloc uint64
			noHang(t, "reading the store", func() {
				alloc = allocated(func() { r = readEverything(fsys, tc.limit, tc.skip) })
			})
			limit := tc.alloc
			if limit == 0 {
				limit = 8 << 20
			}
			if alloc > limit {
				t.Errorf("reading allocated %d bytes, want at most %d", alloc, limit)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			wantErr(t, "Open", r.openErr, tc.open)
			if r.openErr != nil {
				return
			}
			wantErr(t, "Verify", r.verifyErr, tc.verif)
			wantErr(t, "Usage", r.usageErr, tc.usage)
			if !tc.skip {
				wantErr(t, "ReadAll", r.readErr, tc.read)
				if tc.want != nil && !bytes.Equal(r.out, tc.want) {
					t.Errorf("ReadAll gave %d bytes, want %d (%x... vs %x...)", len(r.out), len(tc.want), head(r.out), head(tc.want))
				}
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// sizelessFS is a file system whose files do not know their size (Stat
// says 0), as files still being written or some network file systems. It
// counts the bytes read from them.
type sizelessFS struct {
	fs.FS
	read int64
}

func (s *sizelessFS) wrap(fsys fs.FS) *sizelessFS {
	s.FS = fsys
	return s
}

func (s *sizelessFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return sizelessFile{f, s}, nil
}

type sizelessFile struct {
	fs.File
	fsys *sizelessFS
}

func (f sizelessFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.fsys.read += int64(n)
	return n, err
}

func (f sizelessFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return sizelessInfo{fi}, nil
}

type sizelessInfo struct{ fs.FileInfo }

func (sizelessInfo) Size() int64 { return 0 }

// TestReadAllStopsOnCancel: ReadAll checks its context between chunks and
// between the pieces of a large epoch, so an interrupt stops it before
// the next write.
func TestReadAllStopsOnCancel(t *testing.T) {
	// Two epochs of 5 MiB, each written as two pieces (4 MiB, 1 MiB). A
	// chunk spans whole frames, so it is the frames' bytes as they are.
	const fb, frames = 1 << 20, 5
	fsys := fstest.MapFS{"zarr.json": {Data: hostileMeta([]int64{2 * frames, fb}, []int64{frames, fb}, []int64{frames, fb}, "uint8", CodecNone)}}
	for row := 0; row < 2; row++ {
		fsys[fmt.Sprintf("c/%d/0", row)] = &fstest.MapFile{Data: buildShard([][]byte{make([]byte, frames*fb)})}
	}
	tests := []struct {
		name       string
		cancelAt   int // cancel during this write (1-based); 0: before reading
		wantWrites int
	}{
		{"before the first chunk", 0, 0},
		{"between the pieces of an epoch", 1, 1},
		{"between epochs", 2, 2},
		{"never", -1, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Open(fsys)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAt == 0 {
				cancel()
			}
			w := &countWriter{at: tc.cancelAt, cancel: cancel}
			err = a.ReadAllContext(ctx, w)
			if tc.cancelAt < 0 {
				if err != nil {
					t.Fatalf("ReadAllContext = %v", err)
				}
			} else if !errors.Is(err, context.Canceled) {
				t.Fatalf("ReadAllContext = %v, want context.Canceled", err)
			}
			if w.writes != tc.wantWrites {
				t.Errorf("%d writes, want %d: the read went on after the cancel", w.writes, tc.wantWrites)
			}
		})
	}
}

// TestReadAllStopsBetweenChunks: an interrupt while an epoch is being
// gathered stops ReadAll at the next chunk, before it opens another shard.
func TestReadAllStopsBetweenChunks(t *testing.T) {
	s := Spec{Shape: []int64{0, 9}, DType: Uint16, Chunk: []int64{2, 3}, Shard: []int64{2, 3}, Codec: CodecLZ4, Level: 1}
	fsys := writeStore(t, s, 4, randData(4*9*2, 3), storeOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opened []string
	a, err := Open(openHook{FS: fsys, hook: func(name string) {
		opened = append(opened, name)
		if name == "c/0/1" {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := &countWriter{}
	if err := a.ReadAllContext(ctx, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAllContext = %v, want context.Canceled", err)
	}
	if want := []string{"zarr.json", "c/0/0", "c/0/1"}; fmt.Sprint(opened) != fmt.Sprint(want) || w.writes != 0 {
		t.Errorf("opened %q and wrote %d times, want %q and no write: the read went on after the cancel", opened, w.writes, want)
	}
}

// countWriter counts writes and cancels during write number at.
type countWriter struct {
	writes, at int
	cancel     func()
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes == w.at {
		w.cancel()
	}
	return len(p), nil
}

// openHook is a file system that calls hook before each Open, so that a
// test can act at the moment the reader reaches a file.
type openHook struct {
	fs.FS
	hook func(name string)
}

func (h openHook) Open(name string) (fs.File, error) {
	h.hook(name)
	return h.FS.Open(name)
}

// TestVerifyStopsOnCancel: Verify and Usage check their context per file,
// and Verify per chunk inside a shard.
func TestVerifyStopsOnCancel(t *testing.T) {
	s := Spec{Shape: []int64{0, 64}, DType: Uint16, Chunk: []int64{1, 4}, Shard: []int64{4, 64}, Codec: CodecZstd, Level: 1}
	fsys := writeStore(t, s, 12, randData(12*64*2, 9), storeOpts{})
	t.Run("before the walk", func(t *testing.T) {
		a, err := Open(fsys)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rep, err := a.VerifyContext(ctx, VerifyOptions{})
		if !errors.Is(err, context.Canceled) || rep.Shards != 0 {
			t.Errorf("VerifyContext = %v with %d shards seen, want context.Canceled before any", err, rep.Shards)
		}
		u, err := a.UsageContext(ctx)
		if !errors.Is(err, context.Canceled) || u.Shards != 0 {
			t.Errorf("UsageContext = %v with %d shards seen, want context.Canceled before any", err, u.Shards)
		}
	})
	t.Run("inside a shard", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hooked := openHook{FS: fsys, hook: func(name string) {
			if name == "c/0/0" {
				cancel()
			}
		}}
		a, err := Open(hooked)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		rep, err := a.VerifyContext(ctx, VerifyOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("VerifyContext = %v, want context.Canceled", err)
		}
		if rep.ChunksWritten != 0 {
			t.Errorf("%d chunks of the shard checked after the cancel, want 0", rep.ChunksWritten)
		}
	})
	t.Run("comparing with raw", func(t *testing.T) {
		a, err := Open(fsys)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		raw := &cancelReader{r: bytes.NewReader(randData(12*64*2, 9)), cancel: cancel}
		if _, err := a.VerifyContext(ctx, VerifyOptions{Raw: raw}); !errors.Is(err, context.Canceled) {
			t.Fatalf("VerifyContext = %v, want context.Canceled", err)
		}
		if raw.reads != 1 {
			t.Errorf("raw input read %d times, want 1: the comparison went on after the cancel", raw.reads)
		}
	})
}

// cancelReader cancels on its first read.
type cancelReader struct {
	r      io.Reader
	reads  int
	cancel func()
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.reads++
	c.cancel()
	return c.r.Read(p)
}

// TestEncodedBounds pins the codec worst cases the reader allows an
// encoded chunk: each must admit what its encoder writes for data that
// does not compress, and nothing beyond the formula.
func TestEncodedBounds(t *testing.T) {
	for _, n := range []int{1, 100, 4095, 128 << 10, 1<<20 + 3} {
		noise := randBytes(n)
		z, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
		if err != nil {
			t.Fatal(err)
		}
		var be blosc.Encoder
		for _, tc := range []struct {
			c   Codec
			enc []byte
		}{
			{CodecNone, noise},
			{CodecZstd, z.EncodeAll(noise, nil)},
			{CodecLZ4, be.Encode(nil, noise, blosc.Options{TypeSize: 1, CLevel: 9})},
		} {
			t.Run(fmt.Sprintf("%s/%d", tc.c, n), func(t *testing.T) {
				if got := int64(len(tc.enc)); got > maxEncoded(tc.c, int64(n)) {
					t.Errorf("%s encodes %d noise bytes to %d, beyond the bound %d", tc.c, n, got, maxEncoded(tc.c, int64(n)))
				}
			})
		}
	}
	// ZSTD_COMPRESSBOUND values from zstd.h's formula, worked by hand.
	for _, tc := range []struct{ n, want int64 }{
		{0, 64}, {1, 64}, {2048, 2048 + 8 + 63}, {128 << 10, 128<<10 + 512}, {1 << 20, 1<<20 + 4096},
	} {
		if got := zstdCompressBound(tc.n); got != tc.want {
			t.Errorf("zstdCompressBound(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
