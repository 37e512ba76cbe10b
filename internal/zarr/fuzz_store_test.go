package zarr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/zwrite/zwrite/internal/blosc"
)

// File kinds a fuzzed store can give each of its files (two bits each).
const (
	kindRegular = iota
	kindPipe    // a named pipe: must be refused, never read
	kindLink    // a symbolic link to the first file (the first: a broken link)
	kindDir     // a directory where a file should be
)

// fuzzStoreKeys are the storage keys the fuzzed files go to: the first
// three positions of the storage grid (the origin, the next along the last
// dimension, the next along dimension 0), so that every rank and key
// encoding gets files the reader will look for.
func fuzzStoreKeys(m *Meta) []string {
	n := len(m.Spec.Shape)
	at := func(d int, i int64) string {
		c := make([]int64, n)
		c[d] = i
		return m.ChunkKey(c)
	}
	if n == 1 {
		return []string{at(0, 0), at(0, 1), at(0, 2)}
	}
	return []string{at(0, 0), at(n-1, 1), at(0, 1)}
}

// buildFuzzStore lays out one fuzzed store: zarr.json (a named pipe when
// kinds bit 0x100 is set) and the files at fuzzStoreKeys, each of the kind
// its two bits of kinds name (an empty regular file is left out: a
// missing shard).
func buildFuzzStore(meta []byte, files [][]byte, kinds uint16) fstest.MapFS {
	fsys := fstest.MapFS{"zarr.json": {Data: meta}}
	if kinds&0x100 != 0 {
		fsys["zarr.json"].Mode = fs.ModeNamedPipe
	}
	m, err := ParseArray(meta)
	if err != nil {
		return fsys
	}
	keys := fuzzStoreKeys(m)
	for i, b := range files {
		key := keys[i]
		switch (kinds >> (2 * i)) & 3 {
		case kindRegular:
			if len(b) > 0 {
				fsys[key] = &fstest.MapFile{Data: b}
			}
		case kindPipe:
			fsys[key] = &fstest.MapFile{Data: b, Mode: fs.ModeNamedPipe}
		case kindLink:
			// No link to itself: fstest.MapFS would follow that loop forever.
			target := relLink(key, keys[0])
			if i == 0 {
				target = "gone"
			}
			fsys[key] = &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
		case kindDir:
			fsys[key+"/x"] = &fstest.MapFile{Data: b}
		}
	}
	return fsys
}

// relLink is the relative link target that leads from key to target.
func relLink(key, target string) string {
	up := ""
	for _, c := range key {
		if c == '/' {
			up += "../"
		}
	}
	return up + target
}

// discardAfter discards what is written and fails once more than n bytes
// came, for arrays too large (or endless) to read to the end.
type discardAfter struct{ n int64 }

func (w *discardAfter) Write(p []byte) (int, error) {
	if w.n -= int64(len(p)); w.n < 0 {
		return 0, errEnough
	}
	return len(p), nil
}

// Fuzz bounds: what one exec may read, and how long it may take before it
// counts as a hang (a correct exec takes well under a millisecond).
const (
	fuzzMaxEpoch       = 1 << 20
	fuzzMaxEpochChunks = 4096
	fuzzHangLimit      = 20 * time.Second
)

// fuzzBudget is the heap a reader may allocate for a store: a constant for
// the decoders and bookkeeping, a few times the files (an index, a chunk's
// encoded bytes, the entry order Verify sorts), and what the metadata
// justifies: a decoded chunk (for zstd no more than its input can expand
// to) and, when ReadAll runs, one epoch.
func fuzzBudget(m *Meta, files [][]byte, epochBytes int64, readAll bool) uint64 {
	var total, largest int64
	for _, f := range files {
		total += int64(len(f))
		largest = max(largest, int64(len(f)))
	}
	cb := m.Spec.ChunkBytes()
	decoded := min(cb, max(largest, 1)*zstdMaxExpansion)
	b := 2<<20 + 8*total + 3*decoded
	if readAll {
		b += 2*epochBytes + 3*cb
	}
	return uint64(b)
}

// FuzzHostileStore builds whole stores (zarr.json and three files of any
// kind) and runs Open, Verify, Usage and ReadAll on them. None may panic,
// hang or allocate beyond fuzzBudget, and they must agree: a store Verify
// passes gives Usage no error and reads back whole, and its counts add up.
func FuzzHostileStore(f *testing.F) {
	small := Spec{Shape: []int64{0, 6}, DType: Uint16, Chunk: []int64{2, 3}, Shard: []int64{4, 6}, Level: 1}
	for _, c := range Codecs {
		s := small
		s.Codec = c
		st := writeStore(f, s, 8, randData(8*6*2, uint64(c)), storeOpts{})
		f.Add(st["zarr.json"].Data, st["c/0/0"].Data, []byte(nil), st["c/1/0"].Data, uint16(0))
		f.Add(st["zarr.json"].Data, st["c/0/0"].Data, []byte(nil), st["c/1/0"].Data, uint16(kindPipe))
		f.Add(st["zarr.json"].Data, st["c/0/0"].Data, []byte(nil), st["c/1/0"].Data, uint16(kindDir<<4|kindLink<<2))
		f.Add(st["zarr.json"].Data, st["c/0/0"].Data, []byte(nil), st["c/1/0"].Data, uint16(0x100))
		u := writeStore(f, s, 8, randData(8*6*2, uint64(c)), storeOpts{unsharded: true})
		f.Add(u["zarr.json"].Data, u["c/0/0"].Data, u["c/0/1"].Data, u["c/1/0"].Data, uint16(0))
	}
	// Metadata that claims far more than it holds.
	f.Add(hostileMeta([]int64{1e18}, []int64{1000}, []int64{4000}, "uint8", CodecNone), buildShard(make([][]byte, 4)), []byte(nil), []byte(nil), uint16(0))
	f.Add(hostileMeta([]int64{1, 1 << 61}, []int64{1 << 30, 1}, []int64{1 << 30, 1}, "uint8", CodecNone), []byte(nil), []byte(nil), []byte(nil), uint16(0))
	f.Add(hostileMeta([]int64{0, 1 << 62, 4}, []int64{1, 1, 1}, []int64{1, 1, 1}, "uint16", CodecNone), []byte(nil), []byte(nil), []byte(nil), uint16(0))
	f.Add(hostileMeta([]int64{1 << 27}, []int64{1}, []int64{1 << 27}, "uint8", CodecNone), make([]byte, 100), []byte(nil), []byte(nil), uint16(0))
	f.Add(hostileMeta([]int64{4, 6}, []int64{2, 3}, []int64{4, 6}, "uint16", CodecNone),
		AppendIndex(nil, []IndexEntry{{0, 64 << 30}, {EmptyEntry, EmptyEntry}, {EmptyEntry, EmptyEntry}, {EmptyEntry, EmptyEntry}}), []byte(nil), []byte(nil), uint16(0))
	// Chunks whose headers claim 8 MiB for a 64 KiB chunk.
	var be blosc.Encoder
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	wide := []int64{1, 32768}
	f.Add(hostileMeta(wide, wide, wide, "uint16", CodecLZ4), buildShard([][]byte{be.Encode(nil, make([]byte, 8<<20), blosc.Options{TypeSize: 2, CLevel: 1})}), []byte(nil), []byte(nil), uint16(0))
	f.Add(hostileMeta(wide, wide, wide, "uint16", CodecZstd), buildShard([][]byte{zenc.EncodeAll(make([]byte, 8<<20), nil)}), []byte(nil), []byte(nil), uint16(0))

	f.Fuzz(func(t *testing.T, meta, f0, f1, f2 []byte, kinds uint16) {
		files := [][]byte{f0, f1, f2}
		fsys := buildFuzzStore(meta, files, kinds)
		ctx, cancel := context.WithTimeout(context.Background(), fuzzHangLimit)
		defer cancel()

		var (
			a                       *Array
			openErr                 error
			rep, usage              Report
			verifyErr, usageErr     error
			readErr                 error
			readAll                 bool
			budget                  uint64
			metaErr                 = errors.New("unparsed")
			epochBytes, epochChunks int64
		)
		m, err := ParseArray(meta)
		if err == nil {
			metaErr = nil
			s := &m.Spec
			var ok bool
			epochBytes, ok = mulCap(min(s.Chunk[0], s.Shape[0]), s.FrameBytes(), fuzzMaxEpoch)
			epochChunks = prod(s.ChunkGrid())
			readAll = ok && epochChunks <= fuzzMaxEpochChunks && s.ChunkBytes() <= fuzzMaxEpoch
			budget = fuzzBudget(m, files, epochBytes, readAll)
		}
		alloc := allocated(func() {
			if a, openErr = Open(fsys); openErr != nil {
				return
			}
			defer a.Close()
			rep, verifyErr = a.VerifyContext(ctx, VerifyOptions{})
			usage, usageErr = a.UsageContext(ctx)
			if readAll {
				readErr = a.ReadAllContext(ctx, &discardAfter{n: fuzzMaxEpoch})
			}
		})
		if ctx.Err() != nil {
			t.Fatalf("the readers did not finish within %v: they hang", fuzzHangLimit)
		}
		if metaErr != nil || kinds&0x100 != 0 {
			if openErr == nil {
				t.Fatalf("Open accepted a store whose zarr.json is unparsable or a named pipe")
			}
			return
		}
		if openErr != nil {
			t.Fatalf("Open refused metadata ParseArray accepts: %v", openErr)
		}
		if alloc > budget {
			t.Fatalf("the readers allocated %d bytes; the metadata (chunk %d bytes, epoch %d) and %d+%d+%d bytes of files justify %d",
				alloc, m.Spec.ChunkBytes(), epochBytes, len(f0), len(f1), len(f2), budget)
		}
		// A file that is no regular file (a pipe, a directory, a broken
		// link or one to such a file) fails both; nothing else fails Usage.
		bad := false
		for i := range files {
			switch k := (kinds >> (2 * i)) & 3; {
			case k == kindPipe || k == kindDir:
				bad = true
			case k == kindLink && (i == 0 || kinds&3 != kindRegular || len(f0) == 0):
				bad = true
			}
		}
		if bad && (usageErr == nil || verifyErr == nil) {
			t.Fatalf("a chunk key that is no regular file passed: Usage %v, Verify %v", usageErr, verifyErr)
		}
		if !bad && usageErr != nil {
			t.Fatalf("Usage failed on a store of regular files: %v", usageErr)
		}
		if verifyErr != nil {
			return
		}
		if readAll && readErr != nil && !errors.Is(readErr, errEnough) {
			t.Fatalf("Verify passed but ReadAll failed: %v", readErr)
		}
		if rep.Shards != usage.Shards || rep.BytesStored != usage.BytesStored {
			t.Fatalf("Verify saw %d files (%d bytes), Usage %d (%d bytes)", rep.Shards, rep.BytesStored, usage.Shards, usage.BytesStored)
		}
		if rep.Shards+rep.ShardsMissing != prod(a.sgrid) || rep.ChunksWritten+rep.ChunksEmpty != rep.Chunks || rep.ChunksEmpty < 0 {
			t.Fatalf("counts do not add up: %s", fmt.Sprintf("%+v for a storage grid %v", rep, a.sgrid))
		}
	})
}
