package zarr

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

// IndexEntry locates one inner chunk inside a shard file.
type IndexEntry struct{ Offset, Nbytes uint64 }

// EmptyEntry in both fields marks an inner chunk that was never written
// (it reads as the fill value).
const EmptyEntry = ^uint64(0)

// Empty reports whether e is the never-written marker.
func (e IndexEntry) Empty() bool { return e.Offset == EmptyEntry && e.Nbytes == EmptyEntry }

// castagnoli is the crc32c table the sharding index codec uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IndexSize is the encoded size of an index of n entries with its crc32c.
func IndexSize(n int) int { return 16*n + 4 }

// AppendIndex appends the encoded index of e to dst: (offset, nbytes) as
// little-endian uint64 pairs, then the crc32c (little endian) of those bytes.
func AppendIndex(dst []byte, e []IndexEntry) []byte {
	start := len(dst)
	dst = slices.Grow(dst, IndexSize(len(e)))
	for _, x := range e {
		dst = binary.LittleEndian.AppendUint64(dst, x.Offset)
		dst = binary.LittleEndian.AppendUint64(dst, x.Nbytes)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeIndex decodes an index of n entries followed by its crc32c. b must
// be exactly IndexSize(n) bytes. It checks the length, the checksum and that
// no entry is half empty; use CheckEntries to check entries against the
// shard file.
func DecodeIndex(b []byte, n int) ([]IndexEntry, error) {
	return DecodeIndexInto(nil, b, n, true)
}

// DecodeIndexInto is DecodeIndex reusing dst's storage, for an index with
// (crc true) or without (crc false) the trailing crc32c.
func DecodeIndexInto(dst []IndexEntry, b []byte, n int, crc bool) ([]IndexEntry, error) {
	if n < 0 {
		return nil, fmt.Errorf("shard index: negative entry count %d", n)
	}
	want := 16 * n
	if crc {
		want += 4
	}
	if len(b) != want {
		return nil, fmt.Errorf("shard index: %d bytes, want %d for %d entries", len(b), want, n)
	}
	if crc {
		got := binary.LittleEndian.Uint32(b[16*n:])
		if sum := crc32.Checksum(b[:16*n], castagnoli); got != sum {
			return nil, fmt.Errorf("shard index: crc32c mismatch (stored %08x, computed %08x)", got, sum)
		}
	}
	dst = slices.Grow(dst[:0], n)[:n]
	for i := range dst {
		e := IndexEntry{
			Offset: binary.LittleEndian.Uint64(b[16*i:]),
			Nbytes: binary.LittleEndian.Uint64(b[16*i+8:]),
		}
		if (e.Offset == EmptyEntry) != (e.Nbytes == EmptyEntry) {
			return nil, fmt.Errorf("shard index: entry %d is half empty (offset %d, nbytes %d)", i, int64(e.Offset), int64(e.Nbytes))
		}
		dst[i] = e
	}
	return dst, nil
}

// CheckEntries reports the first entry of e that lies outside the data
// region [lo, hi) of a shard file (for an index at the end: lo = 0, hi =
// file size - index size) or that overlaps another entry.
func CheckEntries(e []IndexEntry, lo, hi uint64) error {
	order := make([]int, 0, len(e))
	for i, x := range e {
		if x.Empty() {
			continue
		}
		if x.Offset < lo || x.Offset > hi || x.Nbytes > hi-x.Offset {
			return fmt.Errorf("shard index: entry %d (offset %d, %d bytes) lies outside the chunk data [%d, %d)", i, x.Offset, x.Nbytes, lo, hi)
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case e[a].Offset < e[b].Offset:
			return -1
		case e[a].Offset > e[b].Offset:
			return 1
		}
		return a - b
	})
	for k := 1; k < len(order); k++ {
		p, q := e[order[k-1]], e[order[k]]
		if p.Offset+p.Nbytes > q.Offset {
			return fmt.Errorf("shard index: entries %d and %d overlap (offsets %d+%d and %d)", order[k-1], order[k], p.Offset, p.Nbytes, q.Offset)
		}
	}
	return nil
}
