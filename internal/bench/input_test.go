package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/zarr"
)

// writeRaw writes frames of the camera fill of spec to a file.
func writeRaw(t *testing.T, spec *zarr.Spec, frames int64) (string, []byte) {
	t.Helper()
	raw := make([]byte, frames*spec.FrameBytes())
	if err := FillFrames(FillCamera, spec, 0, raw); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "in.raw")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, raw
}

// TestInputBench: --input writes the whole file through the writer (the
// store equals the file), and the report carries the input's read ceiling
// and, with a store, the write ceiling of exactly its shard files.
func TestInputBench(t *testing.T) {
	defer func(d time.Duration) { baselineMin = d }(baselineMin)
	baselineMin = 20 * time.Millisecond
	sc := smokeScenario(t)
	spec, err := sc.Spec(zarr.Uint16, zarr.CodecZstd, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	const frames = 21 // a partial last epoch and shard row
	path, raw := writeRaw(t, &spec, frames)
	for _, withStore := range []bool{false, true} {
		name := "discard"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			o := Options{Scenario: sc, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1,
				Input: path, Backend: "cpu", Depth: 2, Fill: FillRand /* ignored */}
			var dir string
			if withStore {
				dir = filepath.Join(t.TempDir(), "s.zarr")
				o.OutDir = dir
			}
			var calls int
			o.Progress = func(done, total int64) {
				calls++
				if total != int64(len(raw)) || done < 0 || done > total {
					t.Errorf("progress %d of %d, want a total of %d", done, total, len(raw))
				}
			}
			r, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, r, frames)
			if calls == 0 {
				t.Error("no progress reported")
			}
			if r.Config.Input != path || r.Config.InputNote != InputNote || r.Scenario.Fill != "file" || r.Config.Prefill {
				t.Errorf("config %+v, fill %q: the record must name the input and how it was read", r.Config, r.Scenario.Fill)
			}
			var tb bytes.Buffer
			if err := r.WriteTable(&tb); err != nil || !strings.Contains(tb.String(), "as the OS has it cached") || !strings.Contains(tb.String(), "read  ceiling") {
				t.Errorf("table does not say how the input was read, or lacks the read ceiling:\n%s", tb.String())
			}
			bl := &r.Baselines
			checkCeiling(t, bl.Read, int64(len(raw)), r.Machine.GOMAXPROCS)
			if !near(bl.OverRead, r.Result.InputGBps/bl.Read.BestGBps) {
				t.Errorf("e2e over read %v, want %v", bl.OverRead, r.Result.InputGBps/bl.Read.BestGBps)
			}
			if !withStore {
				if bl.Write != nil {
					t.Errorf("a write ceiling without a store: %+v", bl.Write)
				}
				return
			}
			sizes, err := shardSizes(os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, s := range sizes {
				sum += s
			}
			if bl.Write == nil || bl.Write.Files != len(sizes) || len(sizes) == 0 {
				t.Fatalf("write ceiling %+v, want %d files", bl.Write, len(sizes))
			}
			checkCeiling(t, bl.Write, sum, r.Machine.GOMAXPROCS)
			if _, err := os.Stat(bl.Write.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the write ceiling's scratch %s is still there (%v)", bl.Write.Path, err)
			}
			if filepath.Dir(bl.Write.Path) != filepath.Dir(dir) {
				t.Errorf("write ceiling in %s, want beside the store (the same file system)", bl.Write.Path)
			}
			a, err := zarr.Open(os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			vr, err := a.Verify(zarr.VerifyOptions{Raw: bytes.NewReader(raw)})
			if err != nil || !vr.RawCompared || vr.Frames != frames {
				t.Fatalf("verify against the input: %v, compared %v, %d frames (%v)", err, vr.RawCompared, vr.Frames, vr.Problems)
			}
		})
	}
}

func checkCeiling(t *testing.T, c *IOCeiling, bytes int64, cores int) {
	t.Helper()
	if c == nil {
		t.Fatal("no ceiling")
	}
	want := ioThreads(cores)
	if c.Bytes != bytes || len(c.Trials) != len(want) {
		t.Fatalf("ceiling %+v: want %d bytes and one trial per thread count %v", c, bytes, want)
	}
	var best IOTrial
	for i, tr := range c.Trials {
		if tr.Threads != want[i] || tr.GBps <= 0 || tr.Seconds <= 0 {
			t.Errorf("trial %d: %+v", i, tr)
		}
		if tr.GBps > best.GBps {
			best = tr
		}
	}
	if c.BestGBps != best.GBps || c.BestThreads != best.Threads {
		t.Errorf("best %v GB/s with %d threads, want the best trial %+v", c.BestGBps, c.BestThreads, best)
	}
}

func TestInputErrors(t *testing.T) {
	sc := smokeScenario(t)
	spec, _ := sc.Spec(zarr.Uint16, zarr.CodecZstd, 1, 0)
	dir := t.TempDir()
	write := func(name string, n int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		path   string
		mod    func(*Options)
		wantIE bool
		want   string
	}{
		{"partial frame", write("p.raw", 2*spec.FrameBytes()+2), nil, true, "whole"},
		{"empty", write("e.raw", 0), nil, true, "whole"},
		{"missing", filepath.Join(dir, "nope.raw"), nil, false, "no such file"},
		{"directory", dir, nil, true, "whole"},
		{"with prefill", write("ok.raw", spec.FrameBytes()), func(o *Options) { o.Prefill = true }, false, "prefill"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Scenario: sc, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1, Input: tc.path, Backend: "cpu", NoBaselines: true}
			if tc.mod != nil {
				tc.mod(&o)
			}
			_, err := Run(context.Background(), o)
			var ie *InputError
			if err == nil || errors.As(err, &ie) != tc.wantIE || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one mentioning %q (an InputError: %v)", err, tc.want, tc.wantIE)
			}
		})
	}
}

func TestIOThreads(t *testing.T) {
	tests := []struct {
		cores int
		want  string
	}{
		{1, "1,2"}, {2, "1,2,4"}, {3, "1,2,3,4"}, {16, "1,2,4,8,16,32"}, {48, "1,2,4,8,16,32,48,64"}, {100, "1,2,4,8,16,32,64"},
	}
	for _, tc := range tests {
		got := ioThreads(tc.cores)
		s := make([]int64, len(got))
		for i, v := range got {
			s[i] = int64(v)
		}
		if fmtShape(s) != tc.want {
			t.Errorf("ioThreads(%d) = %v, want %s", tc.cores, got, tc.want)
		}
	}
}

// TestWriteCeilingCap: past ioCeilingMax the ceiling mirrors only the
// first files (whole ones), and every trial writes them all.
func TestWriteCeilingCap(t *testing.T) {
	defer func(n int64) { ioCeilingMax = n }(ioCeilingMax)
	ioCeilingMax = 10 << 10
	store := filepath.Join(t.TempDir(), "s.zarr")
	sizes := []int64{4 << 10, 4 << 10, 4 << 10, 4 << 10, 1}
	c, err := writeCeiling(store, sizes, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.Files != 3 || c.Bytes != 12<<10 {
		t.Fatalf("ceiling %+v: want the first 3 files, 12 KiB (the first to reach the cap)", c)
	}
	checkCeiling(t, c, 12<<10, 2)
	if ents, _ := os.ReadDir(filepath.Dir(store)); len(ents) != 0 {
		t.Fatalf("scratch left behind: %v", ents)
	}
	empty, err := writeCeiling(store, nil, 2)
	if err != nil || empty.Files != 0 || len(empty.Trials) != 0 || empty.Note == "" {
		t.Fatalf("no shards: %+v, %v; want an empty ceiling saying why", empty, err)
	}
}

// TestFileCeilingSample: an --input run's codec ceiling compresses the
// file's own chunks: the same sample as the fill's when the file holds
// that fill, and zero padding past a file shorter than one epoch.
func TestFileCeilingSample(t *testing.T) {
	gather, err := CustomScenario([]int64{0, 6, 10, 3}, []int64{4, 2, 4, 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The second scenario's rows are gathered through a reused span, so
	// a short read must clear what the span held before.
	for _, sc := range []Scenario{smokeScenario(t), gather} {
		t.Run(fmtShape(sc.Chunk), func(t *testing.T) { testFileCeilingSample(t, sc) })
	}
}

func testFileCeilingSample(t *testing.T, sc Scenario) {
	spec, err := sc.Spec(zarr.Uint16, zarr.CodecLZ4, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	epoch := spec.EpochFrames()
	path, raw := writeRaw(t, &spec, epoch)
	sample := func(kind Fill, path string) []byte {
		t.Helper()
		var src *os.File
		if path != "" {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			src = f
		}
		var c *ceiling
		var err error
		if src != nil {
			c, err = newCeiling(kind, src, &spec, stageEncoder(&spec))
		} else {
			c, err = newCeiling(kind, nil, &spec, stageEncoder(&spec))
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		return c.sample
	}
	if !bytes.Equal(sample(FillCamera, ""), sample(FillCamera, path)) {
		t.Fatal("the file's ceiling sample differs from the fill's it holds")
	}
	// Half an epoch in the file; the same half plus explicit zeros.
	fb := spec.FrameBytes()
	half := filepath.Join(t.TempDir(), "half.raw")
	padded := filepath.Join(t.TempDir(), "padded.raw")
	if err := os.WriteFile(half, raw[:epoch/2*fb], 0o644); err != nil {
		t.Fatal(err)
	}
	zeros := append(append([]byte(nil), raw[:epoch/2*fb]...), make([]byte, (epoch-epoch/2)*fb)...)
	if err := os.WriteFile(padded, zeros, 0o644); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sample(FillCamera, half), sample(FillCamera, padded)) {
		t.Fatal("a file shorter than an epoch is not padded with zeros")
	}
}

func TestInputCancelled(t *testing.T) {
	sc := smokeScenario(t)
	spec, _ := sc.Spec(zarr.Uint16, zarr.CodecZstd, 1, 0)
	path, _ := writeRaw(t, &spec, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Options{Scenario: sc, DType: zarr.Uint16, Codec: zarr.CodecZstd, Level: 1, Input: path, Backend: "cpu", NoBaselines: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
}

// TestUploadLanes: the upload ceiling sends as many objects at once as
// the writer has open: a shard row's (up to the writer's row commits), at
// least one per I/O lane, one when the writer runs inline.
func TestUploadLanes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ioWorkers    int
		shardsPerRow int64
		want         int
	}{
		{"inline", 0, 16, 1},
		{"row narrower than the lanes", 8, 4, 8},
		{"orca2 row of 16", 8, 16, 16},
		{"wide row, capped", 8, 1000, 16},
		{"more lanes than the cap", 32, 1000, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := uploadLanes(tc.ioWorkers, tc.shardsPerRow); got != tc.want {
				t.Errorf("uploadLanes(%d, %d) = %d, want %d", tc.ioWorkers, tc.shardsPerRow, got, tc.want)
			}
		})
	}
}
