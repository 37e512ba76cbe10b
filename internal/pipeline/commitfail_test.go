package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/zarr"
)

// failCommitSink fails the Commit of one key (the file is dropped, as a
// sink whose commit failed leaves nothing).
type failCommitSink struct {
	sink.Sink
	key string
}

var errCommitTest = errors.New("commit refused by the test")

func (s *failCommitSink) Create(key string) (sink.File, error) {
	f, err := s.Sink.Create(key)
	if err != nil || key != s.key {
		return f, err
	}
	return &failCommitFile{File: f}, nil
}

func (s *failCommitSink) Put(key string, data []byte) error { return sink.Put(s, key, data) }

type failCommitFile struct{ sink.File }

func (f *failCommitFile) Commit() error {
	f.File.Abort()
	return errCommitTest
}

// TestRowCommitFailure: one shard of the middle row fails its commit.
// Whether the row's files commit together or one by one, the error names
// the shard, zarr.json names the first row only, no shard of the last
// row becomes visible, no temp file is left, and the store verifies.
func TestRowCommitFailure(t *testing.T) {
	spec, _ := midSpec(testCodecs[0]) // 4 shards per row, rows of 8 frames
	input := genInput(24*spec.FrameBytes(), 5)
	for _, tc := range []struct{ depth, lanes int }{{1, 0}, {3, 1}, {3, 2}, {3, 8}} {
		for _, col := range []int64{0, 2, 3} {
			key := zarr.ShardKey(spec.ShardCoords(1, col))
			t.Run(fmt.Sprintf("depth%d/lanes%d/%s", tc.depth, tc.lanes, key), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "s.zarr")
				d, err := sink.NewDir(dir, sink.DirOptions{})
				if err != nil {
					t.Fatal(err)
				}
				_, err = runWriter(t, spec, input, runOpts{cfg: Config{Sink: &failCommitSink{Sink: d, key: key}, Depth: tc.depth, IOWorkers: tc.lanes}})
				if !errors.Is(err, errCommitTest) || !strings.Contains(err.Error(), key) {
					t.Fatalf("err = %v, want the commit error naming %s", err, key)
				}
				files := readDir(t, dir)
				d.Close()
				for k := range files {
					if strings.HasPrefix(k, "c/2/") || strings.Contains(k, ".tmp") {
						t.Errorf("%s is in the store", k)
					}
				}
				shape0, data, err := readStore(files, &spec)
				if err != nil {
					t.Fatalf("store does not verify: %v", err)
				}
				if shape0 != 8 || string(data) != string(input[:len(data)]) {
					t.Fatalf("zarr.json names %d frames (want the first row's 8) or the bytes differ", shape0)
				}
			})
		}
	}
}
