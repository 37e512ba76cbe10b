package zarr

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name; -update rewrites it, a mismatch
// writes name.got beside it for diffing.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		_ = os.WriteFile(path+".got", got, 0o644)
		t.Errorf("%s differs from golden; wrote %s.got\ngot:\n%s", name, path, got)
	}
}

func testSpec(c Codec) Spec {
	return Spec{
		Shape: []int64{0, 3, 129, 67}, DType: Uint16,
		Chunk: []int64{4, 2, 32, 32}, Shard: []int64{8, 2, 64, 64},
		Codec: c, Level: c.DefaultLevel(),
	}
}

func TestMarshalArrayGolden(t *testing.T) {
	named := testSpec(CodecZstd)
	named.DimNames = []string{"t", "c", "y", "x"}
	u8 := Spec{Shape: []int64{10, 7}, DType: Uint8, Chunk: []int64{5, 7}, Shard: []int64{10, 7}, Codec: CodecLZ4, Level: 5}
	withShuffle := func(c Codec, sh Shuffle) Spec { s := testSpec(c); s.Shuffle = sh; return s }
	i32 := Spec{Shape: []int64{0, 9}, DType: Int32, Chunk: []int64{3, 9}, Shard: []int64{6, 9}, Codec: CodecBloscZstd, Level: 9, Shuffle: BitShuffle}
	tests := []struct {
		name   string
		spec   Spec
		shape0 int64
	}{
		{"none", testSpec(CodecNone), 37},
		{"zstd", testSpec(CodecZstd), 37},
		{"lz4", testSpec(CodecLZ4), 37},
		{"zstd-empty", testSpec(CodecZstd), 0},
		{"zstd-grown", testSpec(CodecZstd), 1000},
		{"zstd-dimnames", named, 8},
		{"lz4-uint8-fixed", u8, 10},
		{"lz4-bitshuffle", withShuffle(CodecLZ4, BitShuffle), 37},
		{"lz4-noshuffle", withShuffle(CodecLZ4, NoShuffle), 37},
		{"blosc-zstd", testSpec(CodecBloscZstd), 37},
		{"blosc-zstd-noshuffle", withShuffle(CodecBloscZstd, NoShuffle), 37},
		{"blosc-zstd-bitshuffle-int32", i32, 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalArray(&tc.spec, tc.shape0)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "array-"+tc.name+".json", b)
		})
	}
}

func TestMarshalArrayErrors(t *testing.T) {
	fixed := testSpec(CodecZstd)
	fixed.Shape[0] = 10
	bad := testSpec(CodecZstd)
	bad.DType = 0
	tests := []struct {
		name   string
		spec   Spec
		shape0 int64
		want   string
	}{
		{"over fixed", fixed, 11, "exceed"},
		{"negative", testSpec(CodecNone), -1, "negative"},
		{"invalid spec", bad, 1, "dtype"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MarshalArray(&tc.spec, tc.shape0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestMarshalParseRoundTrip covers every dtype and codec, and every
// shuffle of the blosc codecs.
func TestMarshalParseRoundTrip(t *testing.T) {
	for i, d := range DTypes {
		for _, c := range Codecs {
			var sh Shuffle
			if c.Blosc() {
				sh = Shuffles[i%len(Shuffles)]
			}
			t.Run(d.String()+"/"+c.String()+"/"+sh.String(), func(t *testing.T) {
				s := Spec{
					Shape: []int64{0, 5, 9}, DType: d,
					Chunk: []int64{2, 2, 4}, Shard: []int64{4, 4, 8},
					Codec: c, Level: c.DefaultLevel(), DimNames: []string{"z", "y", "x"}, Shuffle: sh,
				}
				b, err := MarshalArray(&s, 17)
				if err != nil {
					t.Fatal(err)
				}
				m, err := ParseArray(b)
				if err != nil {
					t.Fatalf("%v\n%s", err, b)
				}
				want := s.Clone()
				want.Shape[0] = 17
				if !reflect.DeepEqual(m.Spec, want) {
					t.Errorf("spec = %+v, want %+v", m.Spec, want)
				}
				if !m.Sharded || m.IndexAtStart || !m.IndexCRC || m.ZstdChecksum {
					t.Errorf("sharding details = %+v", m)
				}
				if len(m.Fill) != d.Size() || !m.FillIsZero() {
					t.Errorf("fill = %v", m.Fill)
				}
				if c.Blosc() && (m.BloscShuffle != sh || m.BloscTypeSize != d.Size() || m.BloscCName != c.BloscCName()) {
					t.Errorf("blosc = %q %v %d", m.BloscCName, m.BloscShuffle, m.BloscTypeSize)
				}
				want0 := map[Codec]string{CodecNone: "none", CodecZstd: "zstd level 1",
					CodecLZ4: "blosc lz4 clevel 1 " + sh.String(), CodecBloscZstd: "blosc zstd clevel 1 " + sh.String()}[c]
				if got := m.CompressorString(); got != want0 {
					t.Errorf("CompressorString = %q, want %q", got, want0)
				}
				if got := m.ChunkKey([]int64{1, 0, 2}); got != "c/1/0/2" {
					t.Errorf("key = %q", got)
				}
			})
		}
	}
}

func TestParseArrayOtherWriters(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, m *Meta)
	}{
		{"parse-tensorstore-none.json", func(t *testing.T, m *Meta) {
			want := Spec{Shape: []int64{23, 5, 71, 33}, DType: Uint16, Chunk: []int64{3, 2, 16, 8}, Shard: []int64{6, 4, 32, 16}, Codec: CodecNone}
			if !reflect.DeepEqual(m.Spec, want) || !m.Sharded || !m.IndexCRC || m.IndexAtStart {
				t.Errorf("got %+v", m)
			}
		}},
		{"parse-tensorstore-zstd.json", func(t *testing.T, m *Meta) {
			if m.Spec.Codec != CodecZstd || m.Spec.Level != 1 || m.ZstdChecksum {
				t.Errorf("got %+v", m)
			}
		}},
		{"parse-tensorstore-lz4.json", func(t *testing.T, m *Meta) {
			if m.Spec.Codec != CodecLZ4 || m.Spec.Level != 1 || m.BloscShuffle != ByteShuffle || m.BloscTypeSize != 2 {
				t.Errorf("got %+v", m)
			}
			if m.ChunkKey([]int64{0, 1, 2, 3}) != "c/0/1/2/3" {
				t.Errorf("key %q", m.ChunkKey([]int64{0, 1, 2, 3}))
			}
		}},
		{"parse-zarrpython-zstd.json", func(t *testing.T, m *Meta) {
			if m.Sharded || m.Spec.Codec != CodecZstd || !m.ZstdChecksum || m.Spec.DType != Uint8 {
				t.Errorf("got %+v", m)
			}
			if !reflect.DeepEqual(m.Spec.Chunk, []int64{10, 10}) || !reflect.DeepEqual(m.Spec.DimNames, []string{"y", ""}) {
				t.Errorf("chunk %v names %q", m.Spec.Chunk, m.Spec.DimNames)
			}
			if string(m.Attributes) != `{"foo": 1}` {
				t.Errorf("attributes %s", m.Attributes)
			}
		}},
		{"parse-zarrpython-blosc-start.json", func(t *testing.T, m *Meta) {
			if !m.Sharded || !m.IndexAtStart || m.IndexCRC || m.BloscShuffle != BitShuffle || m.Spec.Level != 5 {
				t.Errorf("got %+v", m)
			}
			if m.FillIsZero() || !math.IsNaN(float64(math.Float32frombits(uint32(m.Fill[0])|uint32(m.Fill[1])<<8|uint32(m.Fill[2])<<16|uint32(m.Fill[3])<<24))) {
				t.Errorf("fill %x", m.Fill)
			}
			if got := m.ChunkKey([]int64{1, 2}); got != "c.1.2" {
				t.Errorf("key %q", got)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseArray(b)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

// base is a minimal valid unsharded array; the cases below break one field.
const base = `{"zarr_format":3,"node_type":"array","shape":[4,6],"data_type":"DT",
"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2,3]}},
"chunk_key_encoding":{"name":"default"},"fill_value":FV,
"codecs":[{"name":"bytes","configuration":{"endian":"little"}}CODEC]}`

func mk(dt, fv, codec string) []byte {
	r := strings.NewReplacer("DT", dt, "FV", fv, "CODEC", codec)
	return []byte(r.Replace(base))
}

func TestParseFill(t *testing.T) {
	tests := []struct {
		dt, fv string
		want   []byte
	}{
		{"uint16", "0", []byte{0, 0}},
		{"uint16", "65535", []byte{255, 255}},
		{"int8", "-1", []byte{255}},
		{"int32", "-2.0", []byte{0xfe, 0xff, 0xff, 0xff}},
		{"uint64", "18446744073709551615", []byte{255, 255, 255, 255, 255, 255, 255, 255}},
		{"float32", "1.5", []byte{0, 0, 0xc0, 0x3f}},
		{"float32", `"Infinity"`, []byte{0, 0, 0x80, 0x7f}},
		{"float32", `"-Infinity"`, []byte{0, 0, 0x80, 0xff}},
		{"float32", `"0x7fc00001"`, []byte{1, 0, 0xc0, 0x7f}},
		{"float64", "0.0", make([]byte, 8)},
		{"float64", "null", make([]byte, 8)},
	}
	for _, tc := range tests {
		t.Run(tc.dt+"="+tc.fv, func(t *testing.T) {
			m, err := ParseArray(mk(tc.dt, tc.fv, ""))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Fill, tc.want) {
				t.Errorf("fill = %x, want %x", m.Fill, tc.want)
			}
		})
	}
}

func TestParseArrayErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string // the field the message must name
	}{
		{"not json", []byte("{"), "not a JSON object"},
		{"v2", []byte(`{"zarr_format":2}`), "zarr_format"},
		{"group", []byte(`{"zarr_format":3,"node_type":"group"}`), "node_type"},
		{"bool dtype", mk("bool", "false", ""), "data_type"},
		{"fill range", mk("uint8", "256", ""), "fill_value"},
		{"fill negative", mk("uint16", "-1", ""), "fill_value"},
		{"fill frac", mk("int16", "1.5", ""), "fill_value"},
		{"fill string int", mk("int16", `"NaN"`, ""), "fill_value"},
		{"fill hex size", mk("float32", `"0x7fc0"`, ""), "fill_value"},
		{"gzip", mk("uint16", "0", `,{"name":"gzip","configuration":{"level":1}}`), "codecs[1].name"},
		{"blosc zlib", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"zlib","clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":0}}`), "cname"},
		{"blosc cname missing", mk("uint16", "0", `,{"name":"blosc","configuration":{"clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":0}}`), "cname: missing"},
		{"blosc clevel", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"zstd","clevel":10,"shuffle":"shuffle","typesize":2,"blocksize":0}}`), "clevel"},
		{"blosc typesize 0", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"zstd","clevel":1,"shuffle":"shuffle","typesize":0,"blocksize":0}}`), "typesize: 0"},
		{"blosc typesize 256", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"lz4","clevel":1,"shuffle":"shuffle","typesize":256,"blocksize":0}}`), "typesize: 256"},
		{"blosc blocksize", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"zstd","clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":-1}}`), "blocksize"},
		{"blosc unknown key", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"zstd","clevel":1,"shuffle":"shuffle","typesize":2,"blocksize":0,"nthreads":2}}`), "codecs[1].configuration"},
		{"blosc shuffle", mk("uint16", "0", `,{"name":"blosc","configuration":{"cname":"lz4","shuffle":"wat"}}`), "shuffle"},
		{"zstd unknown key", mk("uint16", "0", `,{"name":"zstd","configuration":{"level":1,"dict":2}}`), "codecs[1].configuration"},
		{"two compressors", mk("uint16", "0", `,{"name":"zstd"},{"name":"zstd"}`), "codecs[2]"},
		{"big endian", []byte(strings.Replace(string(mk("uint16", "0", "")), "little", "big", 1)), "endian"},
		{"missing endian", []byte(strings.Replace(string(mk("uint16", "0", "")), `"configuration":{"endian":"little"}`, `"configuration":{}`, 1)), "endian"},
		{"unknown field", []byte(strings.Replace(string(mk("uint16", "0", "")), `"zarr_format":3`, `"zarr_format":3,"x":{}`, 1)), "x: unknown field"},
		{"transformers", []byte(strings.Replace(string(mk("uint16", "0", "")), `"zarr_format":3`, `"zarr_format":3,"storage_transformers":[{"name":"t"}]`, 1)), "storage_transformers"},
		{"grid", []byte(strings.Replace(string(mk("uint16", "0", "")), "regular", "rectilinear", 1)), "chunk_grid.name"},
		{"grid rank", []byte(strings.Replace(string(mk("uint16", "0", "")), "[2,3]", "[2]", 1)), "chunk_shape"},
		{"zero chunk", []byte(strings.Replace(string(mk("uint16", "0", "")), "[2,3]", "[2,0]", 1)), "chunk_shape[1]"},
		{"separator", []byte(strings.Replace(string(mk("uint16", "0", "")), `{"name":"default"}`, `{"name":"default","configuration":{"separator":"-"}}`, 1)), "separator"},
		{"shard divides", []byte(strings.Replace(string(testArray(t)), `"chunk_shape": [
          4,`, `"chunk_shape": [
          3,`, 1)), "does not divide"},
		{"index location", []byte(strings.Replace(string(testArray(t)), `"end"`, `"middle"`, 1)), "index_location"},
		{"index codec", []byte(strings.Replace(string(testArray(t)), `"crc32c"`, `"gzip"`, 1)), "index_codecs[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseArray(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q\ninput: %s", err, tc.want, tc.in)
			}
		})
	}
}

func testArray(t testing.TB) []byte {
	s := testSpec(CodecZstd)
	b, err := MarshalArray(&s, 9)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseArray(f *testing.F) {
	for _, c := range Codecs {
		s := testSpec(c)
		b, _ := MarshalArray(&s, 5)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(mk("float64", `"NaN"`, `,{"name":"blosc","configuration":{"cname":"lz4"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseArray(b)
		if err != nil {
			return
		}
		// Whatever parses must describe a usable geometry.
		n := len(m.Spec.Shape)
		if n == 0 || len(m.Spec.Chunk) != n || len(m.Spec.Shard) != n || len(m.Fill) != m.Spec.DType.Size() {
			t.Fatalf("inconsistent meta %+v", m)
		}
		for d := 0; d < n; d++ {
			if m.Spec.Chunk[d] <= 0 || m.Spec.Shard[d]%m.Spec.Chunk[d] != 0 {
				t.Fatalf("bad chunk/shard %v %v", m.Spec.Chunk, m.Spec.Shard)
			}
		}
	})
}
