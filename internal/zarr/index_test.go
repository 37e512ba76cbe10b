package zarr

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    []IndexEntry
	}{
		{"none", nil},
		{"one", []IndexEntry{{0, 10}}},
		{"empty slots", []IndexEntry{{0, 10}, {EmptyEntry, EmptyEntry}, {10, 0}, {10, 5}}},
		{"all empty", []IndexEntry{{EmptyEntry, EmptyEntry}, {EmptyEntry, EmptyEntry}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("data")
			b := AppendIndex(prefix, tc.e)
			if len(b) != len(prefix)+IndexSize(len(tc.e)) || string(b[:4]) != "data" {
				t.Fatalf("len %d", len(b))
			}
			got, err := DecodeIndex(b[4:], len(tc.e))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.e) {
				t.Fatalf("got %d entries", len(got))
			}
			for i := range got {
				if got[i] != tc.e[i] {
					t.Errorf("entry %d = %v, want %v", i, got[i], tc.e[i])
				}
			}
			if err := CheckEntries(got, 0, 15); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestIndexKnownBytes pins the encoding against the tensorstore fixture's
// convention: empty crc of zero entries is crc32c("") = 0.
func TestIndexKnownBytes(t *testing.T) {
	b := AppendIndex(nil, []IndexEntry{{EmptyEntry, EmptyEntry}})
	for i := 0; i < 16; i++ {
		if b[i] != 0xff {
			t.Fatalf("byte %d = %x", i, b[i])
		}
	}
	// crc32c of 16 0xff bytes (Castagnoli), computed independently.
	if got := binary.LittleEndian.Uint32(b[16:]); got != crc32cBitwise(b[:16]) {
		t.Errorf("crc %08x, want %08x", got, crc32cBitwise(b[:16]))
	}
}

// crc32cBitwise is a textbook bit-at-a-time CRC-32C, independent of
// hash/crc32's tables.
func crc32cBitwise(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for k := 0; k < 8; k++ {
			if c&1 != 0 {
				c = c>>1 ^ 0x82F63B78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

func TestDecodeIndexErrors(t *testing.T) {
	good := AppendIndex(nil, []IndexEntry{{0, 4}, {4, 4}})
	flip := append([]byte(nil), good...)
	flip[3] ^= 1
	half := AppendIndex(nil, []IndexEntry{{EmptyEntry, 4}})
	tests := []struct {
		name string
		b    []byte
		n    int
		want string
	}{
		{"short", good[:10], 2, "bytes, want"},
		{"long", append(append([]byte(nil), good...), 0), 2, "bytes, want"},
		{"crc", flip, 2, "crc32c mismatch"},
		{"half empty", half, 1, "half empty"},
		{"negative", nil, -1, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeIndex(tc.b, tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckEntries(t *testing.T) {
	tests := []struct {
		name   string
		e      []IndexEntry
		lo, hi uint64
		want   string
	}{
		{"ok", []IndexEntry{{4, 4}, {0, 4}}, 0, 8, ""},
		{"past end", []IndexEntry{{4, 5}}, 0, 8, "outside"},
		{"before start", []IndexEntry{{3, 1}}, 4, 8, "outside"},
		{"wraps", []IndexEntry{{2, EmptyEntry - 1}}, 0, 8, "outside"},
		{"overlap", []IndexEntry{{0, 5}, {4, 4}}, 0, 8, "overlap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEntries(tc.e, tc.lo, tc.hi)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(AppendIndex(nil, []IndexEntry{{0, 4}, {EmptyEntry, EmptyEntry}}), 2, uint64(8))
	f.Add(AppendIndex(nil, nil), 0, uint64(0))
	f.Add([]byte{1, 2, 3}, 1, uint64(100))
	f.Fuzz(func(t *testing.T, b []byte, n int, size uint64) {
		if n > 1<<16 {
			return
		}
		e, err := DecodeIndex(b, n)
		if err != nil {
			return
		}
		// A decoded index re-encodes to the same bytes.
		if got := AppendIndex(nil, e); string(got) != string(b) {
			t.Fatalf("re-encode differs")
		}
		if CheckEntries(e, 0, size) == nil {
			for _, x := range e {
				if !x.Empty() && x.Offset+x.Nbytes > size {
					t.Fatalf("entry %v passed check for size %d", x, size)
				}
			}
		}
	})
}
