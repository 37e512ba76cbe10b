package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestReadAt: inputs read with positioned reads by a pool of readers give
// the very store one Write of their concatenation gives, whatever the
// split into files (frames spanning files), reader count, depth and I/O
// worker count.
func TestReadAt(t *testing.T) {
	spec, frames := midSpec(zarr.CodecZstd)
	fb := spec.FrameBytes()
	input := genInput(frames*fb, 31)
	batch := 2 * spec.EpochFrames() * fb
	ref, err := runWriter(t, spec, input, runOpts{cfg: Config{Depth: 1, BatchBytes: batch}})
	if err != nil {
		t.Fatal(err)
	}
	splits := [][]int64{
		{int64(len(input))},
		{fb*7 + 13, fb*20 + 1, fb*3 - 14}, // odd sizes: frames span files
		{1, 2, 3, fb, 0, fb*40 - 6},
	}
	for si, split := range splits {
		var total int64
		for _, n := range split {
			total += n
		}
		split = append(split, int64(len(input))-total) // the rest
		for _, readers := range []int{1, 3, 16} {
			for _, depth := range []int{1, 3, 6} {
				for _, io := range []int{1, 4, 16} {
					t.Run(fmt.Sprintf("split%d/readers%d/depth%d/io%d", si, readers, depth, io), func(t *testing.T) {
						mem := sinktest.NewMem()
						st := newStage(t, spec)
						defer st.Close()
						w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: depth, IOWorkers: io, BatchBytes: batch})
						if err != nil {
							t.Fatal(err)
						}
						off := int64(0)
						for _, n := range split {
							got, err := w.ReadAt(bytes.NewReader(input[off:off+n]), n, readers)
							if err != nil || got != n {
								t.Fatalf("ReadAt of %d bytes: %d, %v", n, got, err)
							}
							off += n
						}
						if err := w.Close(); err != nil {
							t.Fatal(err)
						}
						sameFiles(t, "ReadAt", mem.Files(), ref)
					})
				}
			}
		}
	}
}

// faultyReaderAt fails (or ends) at byte failAt, and may be slow.
type faultyReaderAt struct {
	data   []byte
	failAt int64
	err    error // nil: the file just ends at failAt (it shrank)
	delay  time.Duration
	calls  atomic.Int64
}

func (f *faultyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	end := min(off+int64(len(p)), f.failAt)
	if off >= end {
		if f.err != nil {
			return 0, f.err
		}
		return 0, io.EOF
	}
	n := copy(p, f.data[off:end])
	if int64(n) < int64(len(p)) {
		if f.err != nil {
			return n, f.err
		}
		return n, io.EOF
	}
	return n, nil
}

// TestReadAtFaults: an input that fails or shrinks mid-read stops ReadAt
// with a clear error; the whole frames before the failure are kept.
func TestReadAtFaults(t *testing.T) {
	spec, frames := midSpec(zarr.CodecLZ4)
	fb := spec.FrameBytes()
	input := genInput(frames*fb, 32)
	eio := errors.New("input/output error")
	for _, tc := range []struct {
		name   string
		failAt int64
		err    error
		want   string
	}{
		{"read error", 17*fb + 100, eio, "input/output error"},
		{"file shrank", 30*fb + 5, nil, fmt.Sprintf("the file ended at byte %d of the %d", 30*fb+5, frames*fb)},
		{"error at once", 0, eio, "input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sinktest.NewMem()
			st := newStage(t, spec)
			defer st.Close()
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, BatchBytes: 1})
			if err != nil {
				t.Fatal(err)
			}
			r := &faultyReaderAt{data: input, failAt: tc.failAt, err: tc.err}
			n, err := w.ReadAt(r, int64(len(input)), 4)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("ReadAt: %d, %v; want an error with %q", n, err, tc.want)
			}
			if n != tc.failAt {
				t.Errorf("ReadAt kept %d bytes, want the %d before the failure", n, tc.failAt)
			}
			w.Close() // reports the partial frame, keeps the whole ones
			shape0, data, err := readStore(mem.Files(), &spec)
			if want := tc.failAt / fb; err != nil || shape0 != want || !bytes.Equal(data, input[:want*fb]) {
				t.Fatalf("store: shape[0] %d (%v), want the %d whole frames before the failure", shape0, err, want)
			}
		})
	}
}

// TestReadAtAbort: Abort while slow positioned reads are in flight returns
// within the bound; no new piece starts after it, and the store verifies.
func TestReadAtAbort(t *testing.T) {
	spec, frames := midSpec(zarr.CodecZstd)
	input := genInput(frames*spec.FrameBytes(), 33)
	mem := sinktest.NewMem()
	st := newStage(t, spec)
	w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem})
	if err != nil {
		t.Fatal(err)
	}
	// Pieces of 256 KiB and up take 50 ms each: the read runs for long.
	big := bytes.Repeat(input, 40)
	r := &faultyReaderAt{data: big, failAt: int64(len(big)), delay: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := w.ReadAt(r, int64(len(big)), 2)
		done <- err
	}()
	for r.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	reason := errors.New("interrupt")
	start := time.Now()
	w.Abort(reason)
	if el := time.Since(start); el > time.Second {
		t.Errorf("Abort took %v", el)
	}
	select {
	case err := <-done:
		if !errors.Is(err, reason) {
			t.Errorf("ReadAt: %v, want the abort reason", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadAt did not return after Abort")
	}
	calls := r.calls.Load()
	time.Sleep(100 * time.Millisecond)
	if r.calls.Load() != calls {
		t.Errorf("reads went on after ReadAt returned")
	}
	if err := st.Close(); err != nil {
		t.Errorf("stage Close: %v (a slot not freed?)", err)
	}
	if _, _, err := readStore(mem.Files(), &spec); err != nil {
		t.Fatal(err)
	}
}

// TestResumeFixedShapeReadAt: resuming a fixed-shape array at StartFrame
// and feeding the rest through ReadAt takes exactly the declared frames,
// as Write does (roomBytes counts StartFrame; ReadAt's room must too).
func TestResumeFixedShapeReadAt(t *testing.T) {
	spec := mkSpec(zarr.Uint16, zarr.CodecLZ4, []int64{16, 24, 40}, []int64{4, 8, 16}, []int64{8, 16, 32})
	fb := spec.FrameBytes()
	for _, via := range []string{"Write", "ReadAt"} {
		t.Run(via, func(t *testing.T) {
			input := genInput(16*fb, 3)
			mem := sinktest.NewMem()
			// First run: 8 frames (one shard row) then Close (short input).
			if _, err := runWriter(t, spec, input[:8*fb], runOpts{cfg: Config{Depth: 2, Sink: mem}}); err == nil {
				t.Fatal("want a ShortInputError from the first run")
			}
			st := newStage(t, spec)
			defer st.Close()
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: 2, StartFrame: 8, ExistingFrames: 8})
			if err != nil {
				t.Fatal(err)
			}
			// Offer 8 frames more than the array holds.
			extra := append(append([]byte(nil), input[8*fb:]...), genInput(8*fb, 9)...)
			var n int64
			if via == "Write" {
				k, e := w.Write(extra)
				n, err = int64(k), e
			} else {
				n, err = w.ReadAt(bytes.NewReader(extra), int64(len(extra)), 2)
			}
			var tm *TooManyFramesError
			if !errors.As(err, &tm) || n != 8*fb {
				t.Errorf("%s took %d bytes (%d frames), err %v; want 8 frames and a TooManyFramesError", via, n, n/fb, err)
			}
			cerr := w.Close()
			if got := metaShape0(t, mem.Files()); got != 16 {
				t.Errorf("zarr.json shape[0] %d, want 16 (Close: %v)", got, cerr)
			}
			for k := range mem.Files() {
				if len(k) > 4 && k[:4] == "c/2/" {
					t.Errorf("shard %s beyond the declared shape", k)
				}
			}
		})
	}
}
