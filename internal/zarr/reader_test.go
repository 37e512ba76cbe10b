package zarr

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
	fixturepkg "github.com/zwrite/zwrite/internal/zarr/fixture"
)

// fixture reads the tensorstore tarball into one in-memory file system
// per store, plus ref/a.raw.
func fixture(t testing.TB) (stores map[string]fstest.MapFS, raw []byte) {
	t.Helper()
	files, err := fixturepkg.Files("../../" + fixturepkg.Tensorstore)
	if err != nil {
		t.Fatal(err)
	}
	stores = map[string]fstest.MapFS{}
	for name, b := range files {
		if name == "a.raw" {
			raw = b
			continue
		}
		store, rest, _ := strings.Cut(name, "/")
		if stores[store] == nil {
			stores[store] = fstest.MapFS{}
		}
		stores[store][rest] = &fstest.MapFile{Data: b}
	}
	return stores, raw
}

// openAndRead opens the store in fsys and checks that ReadAll gives want.
// The caller closes the array.
func openAndRead(t *testing.T, fsys fs.FS, want []byte) *Array {
	t.Helper()
	a, err := Open(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := a.ReadAll(&out); err != nil {
		a.Close()
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		a.Close()
		t.Fatalf("ReadAll differs from the data written (%d vs %d bytes)", out.Len(), len(want))
	}
	return a
}

func TestReadTensorstoreFixture(t *testing.T) {
	stores, raw := fixture(t)
	if len(raw) != 23*5*71*33*2 {
		t.Fatalf("a.raw has %d bytes", len(raw))
	}
	for _, name := range []string{"a-none.zarr", "a-zstd.zarr", "a-lz4.zarr"} {
		t.Run(name, func(t *testing.T) {
			a := openAndRead(t, stores[name], raw)
			defer a.Close()
			rep, err := a.Verify(VerifyOptions{})
			if err != nil {
				t.Fatalf("%v\n%+v", err, rep)
			}
			if rep.Frames != 23 || rep.Chunks != 600 || rep.ChunksWritten != 600 || rep.Shards != 4*2*3*3 || rep.ShardsMissing != 0 || len(rep.Stray) != 0 {
				t.Errorf("report %+v", rep)
			}
			if rep.BytesRaw != int64(len(raw)) || rep.Ratio <= 0 {
				t.Errorf("bytes %d ratio %v", rep.BytesRaw, rep.Ratio)
			}
			rep, err = a.Verify(VerifyOptions{Raw: bytes.NewReader(raw)})
			if err != nil || !rep.RawCompared {
				t.Fatalf("verify --raw: %v %+v", err, rep)
			}
			bad := append([]byte(nil), raw...)
			bad[123457] ^= 1
			if _, err := a.Verify(VerifyOptions{Raw: bytes.NewReader(bad)}); err == nil || !strings.Contains(err.Error(), "byte 123457") {
				t.Errorf("verify against altered raw: %v", err)
			}
			if _, err := a.Verify(VerifyOptions{Raw: bytes.NewReader(raw[:1000])}); err == nil || !strings.Contains(err.Error(), "ended at byte 1000") {
				t.Errorf("verify against short raw: %v", err)
			}
			if _, err := a.Verify(VerifyOptions{Raw: io.MultiReader(bytes.NewReader(raw), strings.NewReader("x"))}); err == nil || !strings.Contains(err.Error(), "longer") {
				t.Errorf("verify against long raw: %v", err)
			}
			// One chunk by coordinates: chunk (1,0,2,3) starts at (3,0,32,24).
			c, err := a.ReadChunk(nil, []int64{1, 0, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			at := ((3*5+0)*71+32)*33 + 24
			if got, want := binary.LittleEndian.Uint16(c), binary.LittleEndian.Uint16(raw[2*at:]); got != want {
				t.Errorf("chunk first element %d, want %d", got, want)
			}
		})
	}
}

// storeOpts are the layout variants the test writer can produce.
type storeOpts struct {
	indexStart bool
	noCRC      bool
	unsharded  bool // plain chunks, one file each (chunk grid = Chunk)
	bitshuffle bool // blosc with bit shuffle (zarr-python's default for 1-byte types)
	skip       func(coords []int64) bool
}

// writeStore is a small reference writer for reader tests: it tiles data
// (frames of s, shape0 of them) element by element into padded inner
// chunks, encodes them with the spec's codec and lays out shard files with
// the index. It shares no code with the reader's scatter.
func writeStore(t testing.TB, s Spec, shape0 int64, data []byte, o storeOpts) fstest.MapFS {
	t.Helper()
	meta, err := MarshalArray(&s, shape0)
	if err != nil {
		t.Fatal(err)
	}
	js := string(meta)
	if o.indexStart {
		js = strings.Replace(js, `"index_location": "end"`, `"index_location": "start"`, 1)
	}
	if o.bitshuffle {
		js = strings.Replace(js, `"shuffle": "shuffle"`, `"shuffle": "bitshuffle"`, 1)
	}
	if o.noCRC {
		js = strings.Replace(js, `,
          {
            "name": "crc32c"
          }`, "", 1)
	}
	shape := append([]int64{shape0}, s.Shape[1:]...)
	n := len(shape)
	size := int64(s.DType.Size())
	chunkGrid := make([]int64, n)
	for d := range shape {
		chunkGrid[d] = ceilDiv(shape[d], s.Chunk[d])
	}
	encode := encoder(t, s, o.bitshuffle)
	chunkAt := func(cc []int64) []byte {
		out := make([]byte, s.ChunkBytes())
		var local [MaxRank]int64
		for e := int64(0); e < s.ChunkElems(); e++ {
			rem, g, inside := e, int64(0), true
			for d := n - 1; d >= 0; d-- {
				local[d] = rem % s.Chunk[d]
				rem /= s.Chunk[d]
			}
			for d := 0; d < n; d++ {
				x := cc[d]*s.Chunk[d] + local[d]
				if x >= shape[d] {
					inside = false
				}
				g = g*shape[d] + x
			}
			if inside {
				copy(out[e*size:(e+1)*size], data[g*size:(g+1)*size])
			}
		}
		return out
	}
	fsys := fstest.MapFS{"zarr.json": {Data: []byte(js)}}
	if o.unsharded {
		// Rewrite the metadata as a plain chunked array.
		js = plainArrayJSON(t, s, shape0)
		fsys["zarr.json"] = &fstest.MapFile{Data: []byte(js)}
		cc := make([]int64, n)
		if prod(chunkGrid) == 0 {
			return fsys
		}
		for {
			if o.skip == nil || !o.skip(cc) {
				fsys[ShardKey(cc)] = &fstest.MapFile{Data: encode(chunkAt(cc))}
			}
			if !nextCoords(cc, chunkGrid) {
				break
			}
		}
		return fsys
	}
	per := s.ShardChunks()
	sgrid := make([]int64, n)
	for d := range sgrid {
		sgrid[d] = ceilDiv(shape[d], s.Shard[d])
	}
	if prod(sgrid) == 0 {
		return fsys
	}
	sc := make([]int64, n)
	for {
		var body []byte
		entries := make([]IndexEntry, s.ChunksPerShard())
		ic := make([]int64, n)
		base := uint64(0)
		if o.indexStart {
			base = uint64(16 * len(entries))
			if !o.noCRC {
				base += 4
			}
		}
		for i := range entries {
			entries[i] = IndexEntry{EmptyEntry, EmptyEntry}
			cc := make([]int64, n)
			inside := true
			for d := 0; d < n; d++ {
				cc[d] = sc[d]*per[d] + ic[d]
				if cc[d] >= chunkGrid[d] {
					inside = false
				}
			}
			if inside && (o.skip == nil || !o.skip(cc)) {
				enc := encode(chunkAt(cc))
				entries[i] = IndexEntry{base + uint64(len(body)), uint64(len(enc))}
				body = append(body, enc...)
			}
			nextCoords(ic, per)
		}
		idx := AppendIndex(nil, entries)
		if o.noCRC {
			idx = idx[:len(idx)-4]
		}
		var file []byte
		if o.indexStart {
			file = append(idx, body...)
		} else {
			file = append(body, idx...)
		}
		fsys[ShardKey(sc)] = &fstest.MapFile{Data: file}
		if !nextCoords(sc, sgrid) {
			break
		}
	}
	return fsys
}

// plainArrayJSON is an unsharded zarr.json in zarr-python's style.
func plainArrayJSON(t testing.TB, s Spec, shape0 int64) string {
	shape := append([]int64{shape0}, s.Shape[1:]...)
	comp := ""
	switch s.Codec {
	case CodecZstd:
		comp = fmt.Sprintf(`,{"name":"zstd","configuration":{"level":%d,"checksum":true}}`, s.Level)
	case CodecLZ4, CodecBloscZstd:
		comp = fmt.Sprintf(`,{"name":"blosc","configuration":{"cname":"%s","clevel":%d,"shuffle":"shuffle","typesize":%d,"blocksize":0}}`, s.Codec.BloscCName(), s.Level, s.DType.Size())
	}
	js := func(v []int64) string { return strings.ReplaceAll(fmt.Sprint(v), " ", ",") }
	return fmt.Sprintf(`{"zarr_format":3,"node_type":"array","shape":%s,"data_type":"%s",
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":%s}},
"chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
"codecs":[{"name":"bytes","configuration":{"endian":"little"}}%s],"attributes":{},"storage_transformers":[]}`,
		js(shape), s.DType, js(s.Chunk), comp)
}

func encoder(t testing.TB, s Spec, bitshuffle bool) func([]byte) []byte {
	switch s.Codec {
	case CodecZstd:
		z, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
		if err != nil {
			t.Fatal(err)
		}
		return func(b []byte) []byte { return z.EncodeAll(b, nil) }
	case CodecLZ4, CodecBloscZstd:
		var e blosc.Encoder
		sh := blosc.ByteShuffle
		if bitshuffle {
			sh = blosc.BitShuffle
		}
		comp := blosc.LZ4
		if s.Codec == CodecBloscZstd {
			comp = blosc.Zstd
		}
		return func(b []byte) []byte {
			return e.Encode(nil, b, blosc.Options{TypeSize: s.DType.Size(), CLevel: s.Level, Shuffle: sh, BlockSize: 256, Compressor: comp})
		}
	}
	return func(b []byte) []byte { return append([]byte(nil), b...) }
}

func randData(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(7)) // compressible but not constant
	}
	return b
}

func TestReadRoundTrip(t *testing.T) {
	shapes := []struct {
		name                string
		shape, chunk, shard []int64
	}{
		{"rank1", []int64{0}, []int64{5}, []int64{15}},
		{"rank2 ragged", []int64{0, 13}, []int64{3, 4}, []int64{6, 8}},
		{"rank3", []int64{0, 3, 129}, []int64{2, 2, 32}, []int64{4, 2, 64}},
		{"rank4 issue", []int64{0, 3, 29, 17}, []int64{4, 2, 8, 8}, []int64{8, 2, 16, 16}},
		{"rank5", []int64{0, 2, 3, 5, 7}, []int64{2, 1, 2, 2, 4}, []int64{2, 2, 2, 4, 4}},
	}
	variants := []struct {
		name string
		o    storeOpts
	}{
		{"ours", storeOpts{}},
		{"index-start", storeOpts{indexStart: true}},
		{"no-crc", storeOpts{noCRC: true}},
		{"unsharded", storeOpts{unsharded: true}},
		{"bitshuffle", storeOpts{bitshuffle: true}},
	}
	seed := uint64(0)
	for _, sh := range shapes {
		for _, d := range []DType{Uint8, Uint16, Float32, Int64} {
			for _, c := range Codecs {
				for _, v := range variants {
					for _, frames := range []int64{0, 1, 7} {
						seed++
						name := fmt.Sprintf("%s/%s/%s/%s/f%d", sh.name, d, c, v.name, frames)
						t.Run(name, func(t *testing.T) {
							s := Spec{Shape: append([]int64(nil), sh.shape...), DType: d, Chunk: sh.chunk, Shard: sh.shard, Codec: c, Level: c.DefaultLevel()}
							s.Shape[0] = 0
							full := append([]int64{frames}, s.Shape[1:]...)
							data := randData(prod(full)*int64(d.Size()), seed)
							fsys := writeStore(t, s, frames, data, v.o)
							a := openAndRead(t, fsys, data)
							defer a.Close()
							rep, err := a.Verify(VerifyOptions{Raw: bytes.NewReader(data)})
							if err != nil || !rep.RawCompared {
								t.Fatalf("verify: %v %+v", err, rep)
							}
							if rep, err = a.Verify(VerifyOptions{}); err != nil || rep.ChunksWritten != rep.Chunks {
								t.Fatalf("verify: %v %+v", err, rep)
							}
						})
					}
				}
			}
		}
	}
}

// TestReadMissing: never-written chunks and missing shard files read as
// the fill value, and Verify counts them.
func TestReadMissing(t *testing.T) {
	s := Spec{Shape: []int64{0, 10}, DType: Uint16, Chunk: []int64{2, 5}, Shard: []int64{4, 5}, Codec: CodecZstd, Level: 1}
	data := randData(9*10*2, 1)
	skip := func(c []int64) bool { return c[0] == 1 && c[1] == 1 }
	fsys := writeStore(t, s, 9, data, storeOpts{skip: skip})
	delete(fsys, "c/2/0") // the last shard row's first shard
	want := append([]byte(nil), data...)
	zero := func(f0, f1, x0, x1 int) {
		for f := f0; f < f1; f++ {
			for x := x0; x < x1; x++ {
				want[2*(f*10+x)], want[2*(f*10+x)+1] = 0, 0
			}
		}
	}
	zero(2, 4, 5, 10)
	zero(8, 9, 0, 5)
	a := openAndRead(t, fsys, want) // missing chunks read as zero
	rep, err := a.Verify(VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Chunks != 10 || rep.ChunksWritten != 8 || rep.ChunksEmpty != 2 || rep.ShardsMissing != 1 || rep.Shards != 5 {
		t.Errorf("report %+v", rep)
	}
}

// TestVerifyProblems corrupts a good store one way at a time.
func TestVerifyProblems(t *testing.T) {
	s := Spec{Shape: []int64{0, 10}, DType: Uint16, Chunk: []int64{2, 5}, Shard: []int64{4, 10}, Codec: CodecLZ4, Level: 1}
	data := randData(7*10*2, 3)
	good := func() fstest.MapFS { return writeStore(t, s, 7, data, storeOpts{}) }
	edit := func(key string, f func(b []byte) []byte) fstest.MapFS {
		fs := good()
		fs[key] = &fstest.MapFile{Data: f(append([]byte(nil), fs[key].Data...))}
		return fs
	}
	// Rewrite the index of c/0/0 through f and re-checksum it.
	editIndex := func(f func(e []IndexEntry)) fstest.MapFS {
		return edit("c/0/0", func(b []byte) []byte {
			n := 4
			at := len(b) - IndexSize(n)
			e, err := DecodeIndex(b[at:], n)
			if err != nil {
				t.Fatal(err)
			}
			f(e)
			return AppendIndex(b[:at], e)
		})
	}
	// data with frames [f0, f1) read as the fill value (zero).
	filled := func(f0, f1 int) []byte {
		b := append([]byte(nil), data...)
		clear(b[f0*10*2 : f1*10*2])
		return b
	}
	// Each case says what Verify must find (want) and what ReadAll must
	// then do: fail with read, or give readWant (what is stored, or the
	// fill value where the damage leaves nothing to read).
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		want     string
		read     string
		readWant []byte
	}{
		{name: "crc", fsys: edit("c/0/0", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
			want: "crc32c mismatch", read: "shard c/0/0: shard index: crc32c mismatch"},
		{name: "short", fsys: edit("c/0/0", func(b []byte) []byte { return b[:20] }),
			want: "shorter than its", read: "shard c/0/0: 20 bytes is shorter than its 68-byte index"},
		{name: "truncated index", fsys: edit("c/0/0", func(b []byte) []byte { return b[:len(b)-3] }),
			want: "crc32c", read: "shard c/0/0: shard index: crc32c mismatch"},
		{name: "outside", fsys: editIndex(func(e []IndexEntry) { e[1].Nbytes += 1000 }),
			want: "outside the chunk data", read: "read chunk [0 1] (c/0/0): index entry 1 (offset 36, 1036 bytes) lies outside the chunk data"},
		{name: "overlap", fsys: editIndex(func(e []IndexEntry) { e[1].Offset = e[0].Offset + 1 }),
			want: "overlap", read: "read chunk [0 1] (c/0/0): blosc header says the chunk decodes to"},
		{name: "half empty", fsys: editIndex(func(e []IndexEntry) { e[2].Offset = EmptyEntry }),
			want: "half empty", read: "shard c/0/0: shard index: entry 2 is half empty"},
		{name: "bad chunk", fsys: edit("c/0/0", func(b []byte) []byte { b[2] = 0x08; return b }),
			want: "inner chunk 0", read: "read chunk [0 0] (c/0/0): blosc: reserved flag bit 3 set"},
		{name: "wrong size", fsys: editIndex(func(e []IndexEntry) { e[1].Nbytes-- }),
			want: "inner chunk 1", read: "read chunk [0 1] (c/0/0): blosc: header says 36 bytes, buffer has 35"},
		{name: "broken link", fsys: func() fstest.MapFS {
			m := good()
			m["c/0/0"] = &fstest.MapFile{Data: []byte("gone"), Mode: fs.ModeSymlink}
			return m
		}(), want: "c/0/0: broken symbolic link", readWant: filled(0, 4)},
		{name: "beyond shape file", fsys: func() fstest.MapFS {
			// Past the shape in a frame dimension: no writer leaves that.
			fs := good()
			fs["c/0/5"] = fs["c/0/0"]
			return fs
		}(), want: "beyond the shape", readWant: data},
		{name: "beyond shape inner chunk", fsys: func() fstest.MapFS {
			// Shape 2 ends inside shard c/0/0: its second chunk row (frames
			// 2 and 3) lies beyond it.
			fs := good()
			m, _ := MarshalArray(&s, 2)
			fs["zarr.json"] = &fstest.MapFile{Data: m}
			return fs
		}(), want: "shard c/0/0: inner chunk 2 [1 0] holds data beyond the shape", readWant: data[:2*10*2]},
	}
	// Whole shard rows past shape[0] are what a writer leaves when it
	// stops between committing a row and naming it in zarr.json: listed,
	// not a problem, and never read.
	t.Run("rows beyond shape[0]", func(t *testing.T) {
		fs := good()
		m, _ := MarshalArray(&s, 4) // shard row 1 (frames 4..7) is past it
		fs["zarr.json"] = &fstest.MapFile{Data: m}
		a, err := Open(fs)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		rep, err := a.Verify(VerifyOptions{})
		if err != nil || len(rep.Beyond) != 1 || rep.Beyond[0] != "c/1/0" || rep.BytesBeyond != int64(len(fs["c/1/0"].Data)) {
			t.Fatalf("verify: %v, beyond %v (%d bytes)", err, rep.Beyond, rep.BytesBeyond)
		}
		var out bytes.Buffer
		if err := a.ReadAll(&out); err != nil || !bytes.Equal(out.Bytes(), data[:4*10*2]) {
			t.Fatalf("ReadAll: %v", err)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Open(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			rep, err := a.Verify(VerifyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q\nproblems %q", err, tc.want, rep.Problems)
			}
			var out bytes.Buffer
			err = a.ReadAll(&out)
			switch {
			case tc.read != "" && (err == nil || !strings.Contains(err.Error(), tc.read)):
				t.Errorf("ReadAll = %v, want an error containing %q", err, tc.read)
			case tc.read == "" && err != nil:
				t.Errorf("ReadAll = %v, want what is stored", err)
			case tc.read == "" && !bytes.Equal(out.Bytes(), tc.readWant):
				t.Errorf("ReadAll gave %d bytes differing from the %d expected", out.Len(), len(tc.readWant))
			}
		})
	}
}

func TestVerifyStrayAndUsage(t *testing.T) {
	s := Spec{Shape: []int64{0, 4}, DType: Uint8, Chunk: []int64{2, 4}, Shard: []int64{2, 4}, Codec: CodecNone}
	fsys := writeStore(t, s, 4, randData(16, 1), storeOpts{})
	fsys["c/0/.c-0.tmp123"] = &fstest.MapFile{Data: []byte("x")}
	a, err := Open(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Stray) != 1 || rep.Stray[0] != "c/0/.c-0.tmp123" {
		t.Errorf("stray %q", rep.Stray)
	}
	u, err := a.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.BytesStored != rep.BytesStored || u.Shards != 2 || u.BytesRaw != 16 || u.Frames != 4 {
		t.Errorf("usage %+v vs %+v", u, rep)
	}
	if want := int64(2 * (8 + IndexSize(1))); u.BytesStored != want {
		t.Errorf("stored %d, want %d", u.BytesStored, want)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "zarr.json") {
		t.Errorf("empty store: %v", err)
	}
	if _, err := Open(fstest.MapFS{"zarr.json": {Data: []byte(`{"zarr_format":3,"node_type":"group"}`)}}); err == nil {
		t.Error("group opened as array")
	}
	a, err := Open(writeStore(t, testSpec(CodecNone), 5, make([]byte, 5*3*129*67*2), storeOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadChunk(nil, []int64{2, 0, 0, 0}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("chunk outside grid: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
}

// FuzzReadShard feeds arbitrary bytes as the one shard of a small store:
// Verify and ReadAll must report errors, never panic, and agree: a store
// Verify passes reads back in full.
func FuzzReadShard(f *testing.F) {
	specs := map[Codec]Spec{}
	for _, c := range Codecs {
		s := Spec{Shape: []int64{0, 6}, DType: Uint16, Chunk: []int64{2, 3}, Shard: []int64{4, 6}, Codec: c, Level: 1}
		specs[c] = s
		fs := writeStore(f, s, 4, randData(4*6*2, uint64(c)), storeOpts{})
		f.Add(fs["c/0/0"].Data, uint8(c))
	}
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, shard []byte, c uint8) {
		s, ok := specs[Codec(c)]
		if !ok {
			return
		}
		m, err := MarshalArray(&s, 4)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Open(fstest.MapFS{"zarr.json": {Data: m}, "c/0/0": {Data: shard}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		_, verr := a.Verify(VerifyOptions{})
		rerr := a.ReadAll(io.Discard)
		if verr == nil && rerr != nil {
			t.Fatalf("verify passed but ReadAll failed: %v", rerr)
		}
	})
}

// TestReadFrames: any frame range reads the bytes ReadAll gives for it.
func TestReadFrames(t *testing.T) {
	s := Spec{Shape: []int64{11, 5, 7}, DType: Uint16, Chunk: []int64{3, 2, 4}, Shard: []int64{6, 4, 4}, Codec: CodecZstd, Level: 1}
	data := make([]byte, 11*s.FrameBytes())
	for i := range data {
		data[i] = byte(i*7 + i/13)
	}
	a, err := Open(writeStore(t, s, 11, data, storeOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fb := s.FrameBytes()
	for lo := int64(0); lo <= 11; lo++ {
		for hi := lo; hi <= 11; hi++ {
			var buf bytes.Buffer
			if err := a.ReadFramesContext(context.Background(), &buf, lo, hi); err != nil {
				t.Fatalf("[%d, %d): %v", lo, hi, err)
			}
			if !bytes.Equal(buf.Bytes(), data[lo*fb:hi*fb]) {
				t.Fatalf("[%d, %d): differs", lo, hi)
			}
		}
	}
	if err := a.ReadFramesContext(context.Background(), io.Discard, 3, 12); err == nil {
		t.Error("a range past the array read without error")
	}
}
