package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink/s3"
)

// InputNote is what every report of an --input run says about the read
// side: the bench does not drop the page cache, so a file that was just
// written or read comes from memory (on the GPU machine the inputs live on
// tmpfs, which is memory anyway).
const InputNote = "input read as the OS has it cached: no cache is dropped, so on the GPU machine's tmpfs it comes from memory"

// feedFile hands the whole file f to w, the way zwrite append feeds a
// regular file. It is the one place the input path lives, so that when
// append's reader changes (a pool of positioned readers straight into the
// writer's staging) the bench times the same code by changing only this.
func feedFile(ctx context.Context, w *pipeline.Writer, f *os.File, readers int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// Positioned reads by the writer's pool of readers, straight into
	// its staging, as append does.
	_, err = w.ReadAt(f, fi.Size(), readers)
	return err
}

// IOCeiling is a same-run file-system baseline: one pass of the same
// bytes with a number of threads, for several thread counts.
type IOCeiling struct {
	What  string `json:"what"`
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`           // per trial
	Files int    `json:"files,omitempty"` // write ceiling: files per trial
	// Trials: one per thread count, in the order run.
	Trials      []IOTrial `json:"trials"`
	BestGBps    float64   `json:"best_gbps"`
	BestThreads int       `json:"best_threads"`
	Note        string    `json:"note,omitempty"`
	// PartSize and Parts are the object-store ceiling's upload parts and
	// how many of them may be in flight at once, as the store's; its one
	// trial's Threads are its lanes (objects at once: the writer's I/O
	// workers). Zero for a directory.
	PartSize int64 `json:"part_size,omitempty"`
	Parts    int   `json:"parts,omitempty"`
}

// IOTrial is one thread count's pass.
type IOTrial struct {
	Threads int     `json:"threads"`
	Seconds float64 `json:"seconds"`
	GBps    float64 `json:"gbps"`
}

func (c *IOCeiling) add(threads int, bytes int64, d time.Duration) {
	t := IOTrial{Threads: threads, Seconds: d.Seconds()}
	if d > 0 {
		t.GBps = float64(bytes) / d.Seconds() / 1e9
	}
	c.Trials = append(c.Trials, t)
	if t.GBps > c.BestGBps {
		c.BestGBps, c.BestThreads = t.GBps, threads
	}
}

// ioThreads are the thread counts the I/O ceilings try: powers of two up
// to twice the cores (an I/O-bound pass can gain from more threads than
// cores), and the core count itself; at most 64.
func ioThreads(cores int) []int {
	var out []int
	for n := 1; n <= min(2*cores, 64); n *= 2 {
		out = append(out, n)
	}
	if cores <= 64 && !containsInt(out, cores) {
		out = append(out, cores)
		sort.Ints(out)
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Bounds on one I/O ceiling trial: enough bytes for a steady rate, few
// enough that the baselines stay a small part of the run. Variables so
// that tests can shrink them.
var (
	ioCeilingMax int64 = 2 << 30
	ioReadBlock        = 8 << 20
)

// readCeiling reads the first min(size, ioCeilingMax) bytes of path with
// n threads of positioned reads (blocks of ioReadBlock handed out in
// order), for each n of ioThreads.
func readCeiling(path string, cores int) (*IOCeiling, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ceiling: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read ceiling: %w", err)
	}
	total := min(st.Size(), ioCeilingMax)
	c := &IOCeiling{What: "positioned reads of the input", Path: path, Bytes: total, Note: InputNote}
	blocks := (total + int64(ioReadBlock) - 1) / int64(ioReadBlock)
	bufs := make([][]byte, 0, 64)
	for _, n := range ioThreads(cores) {
		for len(bufs) < n {
			bufs = append(bufs, make([]byte, ioReadBlock))
		}
		var next atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		for t := range n {
			buf := bufs[t]
			wg.Go(func() {
				for {
					b := next.Add(1) - 1
					if b >= blocks {
						return
					}
					off := b * int64(ioReadBlock)
					p := buf[:min(int64(ioReadBlock), total-off)]
					if _, err := f.ReadAt(p, off); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		if firstErr != nil {
			return nil, fmt.Errorf("read ceiling: read %s: %w", path, firstErr)
		}
		c.add(n, total, d)
	}
	return c, nil
}

// shardSizes lists the sizes of the shard files of the store fsys (every
// regular file under c), in walk order.
func shardSizes(fsys fs.FS) ([]int64, error) {
	var sizes []int64
	err := fs.WalkDir(fsys, "c", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			sizes = append(sizes, info.Size())
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no shard written
	}
	return sizes, err
}

// ioFiles is the first files of sizes that reach limit bytes (all of
// them if they hold less), and their total.
func ioFiles(sizes []int64, limit int64) ([]int64, int64) {
	var total int64
	for i, s := range sizes {
		if total >= limit {
			return sizes[:i], total
		}
		total += s
	}
	return sizes, total
}

// uploadCeilingMax bounds the bytes the object-store ceiling uploads:
// larger than ioCeilingMax since the objects are spread over the sink's
// lanes and parts (a few shard objects would not keep them all busy),
// still a small part of a long run. A variable so that tests can shrink
// it.
var uploadCeilingMax int64 = 8 << 30

// uploadCeiling uploads objects of the given sizes (the store's shards,
// up to uploadCeilingMax bytes of them) beside the store through the
// client library alone, with the store's part size and parts in flight
// and the writer's lanes (s3.Ceiling), and removes them.
func uploadCeiling(ctx context.Context, o *Options, sizes []int64, lanes int) (*IOCeiling, error) {
	sizes, total := ioFiles(sizes, uploadCeilingMax)
	c := &IOCeiling{What: "uploads of the store's shard objects by the S3 client alone (same count and sizes, part size, parts in flight and lanes)",
		Bytes: total, Files: len(sizes)}
	if len(sizes) == 0 {
		c.Note = "no shard objects to mirror"
		return c, nil
	}
	res, err := s3.Ceiling(ctx, s3.CeilingConfig{Target: o.OutDir, Endpoint: o.Endpoint, Sizes: sizes, MaxObjectSize: o.MaxObjectSize, Lanes: lanes})
	if err != nil {
		return nil, fmt.Errorf("write ceiling: %w", err)
	}
	c.Path, c.PartSize, c.Parts = res.Scratch, res.PartSize, res.Parts
	c.add(res.Lanes, res.Bytes, time.Duration(res.Seconds*float64(time.Second)))
	return c, nil
}

// writeCeiling writes files of the given sizes (the store's shards, up to
// ioCeilingMax bytes of them) into a scratch directory beside dir, on the
// same file system, the way the directory sink commits a shard (temp
// name, write, close, rename), with n threads each taking the next file,
// for each n of ioThreads. The scratch directory is removed afterwards.
func writeCeiling(dir string, sizes []int64, cores int) (*IOCeiling, error) {
	sizes, total := ioFiles(sizes, ioCeilingMax)
	n := len(sizes)
	most := int64(0)
	for _, s := range sizes {
		most = max(most, s)
	}
	c := &IOCeiling{What: "writes of the store's shard files (same count and sizes)", Bytes: total, Files: n}
	if n == 0 {
		c.Note = "no shard files to mirror"
		return c, nil
	}
	scratch, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), "."+filepath.Base(dir)+".io-ceiling-")
	if err != nil {
		return nil, fmt.Errorf("write ceiling: %w", err)
	}
	defer os.RemoveAll(scratch)
	c.Path = scratch
	// Bytes a file system cannot compress or deduplicate away.
	data := make([]byte, most)
	for i := 0; i+8 <= len(data); i += 8 {
		v := mix(uint64(i))
		for k := range 8 {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	for _, threads := range ioThreads(cores) {
		var next atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		for range threads {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := writeOne(scratch, i, data[:sizes[i]]); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		if firstErr != nil {
			return nil, fmt.Errorf("write ceiling: %w", firstErr)
		}
		c.add(threads, total, d)
		// Clear the files for the next trial (untimed).
		ents, err := os.ReadDir(scratch)
		if err != nil {
			return nil, fmt.Errorf("write ceiling: %w", err)
		}
		for _, e := range ents {
			if err := os.Remove(filepath.Join(scratch, e.Name())); err != nil {
				return nil, fmt.Errorf("write ceiling: %w", err)
			}
		}
	}
	return c, nil
}

// writeOne commits one file as the directory sink does (no fsync: the
// sink's default).
func writeOne(dir string, i int, data []byte) error {
	name := filepath.Join(dir, strconv.Itoa(i))
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
