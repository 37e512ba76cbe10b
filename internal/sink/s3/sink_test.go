package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

const ps = basePartSize // the part size of a store with no MaxObjectSize

// TestFilesRoundTrip writes files of every size class at once (empty,
// smaller than a part: one PUT; exactly one and more parts: a multipart
// upload) in uneven pieces, and checks every object on the server's disk
// byte for byte, and that no upload is left unfinished.
func TestFilesRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "rt.zarr", sink.Options{})
	sizes := []int{0, 1, 1000, ps - 1, ps, ps + 1, 3*ps + 12345}
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	want := map[string][]byte{}
	for i, n := range sizes {
		key := fmt.Sprintf("c/%d/0", i)
		data := randBytes(n, uint64(i))
		want[key] = data
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := st.Sink().Create(key)
			if err == nil {
				err = writeAll(f, data, 3<<20, uint64(i))
			}
			if err == nil {
				err = f.Commit()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("file of %d bytes: %v", sizes[i], err)
		}
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	for key, data := range want {
		if got := e.read(t, "rt.zarr/"+key); !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes on the server, want %d (equal: %v)", key, len(got), len(data), bytes.Equal(got, data))
		}
	}
	if got := e.keys(t, "rt.zarr"); len(got) != len(sizes) {
		t.Errorf("objects %v, want %d (the lock released)", got, len(sizes))
	}
	e.waitNoUploads(t)
	if m := st.sink.mem.cur.Load(); m != 0 {
		t.Errorf("%d bytes of part buffers still counted after Finish", m)
	}
}

// TestNothingVisibleBeforeCommit: a file of several parts is not listed
// before Commit, and after Abort nothing of it is left, not even the
// unfinished upload.
func TestNothingVisibleBeforeCommit(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "v.zarr", sink.Options{})
	for _, end := range []string{"abort", "close"} {
		t.Run(end, func(t *testing.T) {
			key := "c/" + end
			f, err := st.Sink().Create(key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(randBytes(2*ps+10, 1)); err != nil {
				t.Fatal(err)
			}
			if got := e.keys(t, "v.zarr/c"); len(got) != 0 {
				t.Fatalf("objects visible before Commit: %v", got)
			}
			if len(e.uploads(t)) == 0 {
				t.Fatal("no multipart upload in progress after two parts were written")
			}
			if end == "abort" {
				f.Abort()
				if _, err := f.Write([]byte("x")); !errors.Is(err, errAborted) {
					t.Errorf("Write after Abort: %v, want errAborted", err)
				}
				if err := f.Commit(); err == nil {
					t.Error("Commit after Abort succeeded")
				}
			} else {
				st.Sink().Close() // uncommitted files go
			}
			e.waitNoUploads(t)
			if got := e.keys(t, "v.zarr/c"); len(got) != 0 {
				t.Fatalf("objects left after %s: %v", end, got)
			}
		})
	}
}

// TestCommitTwiceAndAbortAfter: Commit and Abort are idempotent; Abort
// after Commit leaves the object.
func TestCommitTwiceAndAbortAfter(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "i.zarr", sink.Options{})
	f, err := st.Sink().Create("zarr.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("{}"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, errCommitted) {
		t.Fatalf("Write after Commit: %v", err)
	}
	if got := string(e.read(t, "i.zarr/zarr.json")); got != "{}" {
		t.Fatalf("zarr.json = %q after Abort following Commit", got)
	}
	if _, err := st.Sink().Create("../x"); err == nil {
		t.Fatal("Create of a key outside the store accepted")
	}
}

// TestAbortStalled: with the server stalled, Abort from another
// goroutine ends a Write waiting for a part buffer, a Write whose part
// upload hangs, and a Commit, each within 1 s, and Abort itself returns
// within 1 s.
func TestAbortStalled(t *testing.T) {
	for _, where := range []string{"write", "commit-put", "commit-complete"} {
		t.Run(where, func(t *testing.T) {
			e := newTestEnv(t)
			px := s3test.NewProxy(t, e.srv.Endpoint)
			pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
			pe.tune.parts = 2
			st := pe.mustOpen(t, "s.zarr", sink.Options{})
			f, err := st.Sink().Create("c/0")
			if err != nil {
				t.Fatal(err)
			}
			if where == "commit-complete" {
				if _, err := f.Write(randBytes(ps+5, 2)); err != nil {
					t.Fatal(err)
				}
			}
			px.Stall()
			errc := make(chan error, 1)
			go func() {
				switch where {
				case "write":
					// Parts pile up: the two pool buffers' uploads hang,
					// then the Write waits for a buffer.
					errc <- writeAll(f, randBytes(5*ps, 3), 1<<20, 3)
				case "commit-put":
					f.Write([]byte("small"))
					errc <- f.Commit()
				default:
					errc <- f.Commit()
				}
			}()
			select {
			case <-px.Stalling():
			case err := <-errc:
				t.Fatalf("returned before the server stalled: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no request reached the stalled server")
			}
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			within(t, time.Second, "Abort", func() { f.Abort() })
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("stalled call succeeded after Abort")
				}
			case <-time.After(time.Second - time.Since(start)):
				t.Fatal("stalled call did not return within 1 s of Abort")
			}
			// The proxy learns of the hang-up a moment after the client
			// acted; a Release before that would pass on a request the
			// client gave up on (a hung server never acts on those).
			for deadline := time.Now().Add(2 * time.Second); px.Dropped() == 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			px.Release()
			e.waitNoUploads(t)
			if got := e.keys(t, "s.zarr/c"); len(got) != 0 {
				t.Fatalf("objects visible after an aborted stalled write: %v", got)
			}
		})
	}
}

// TestSlowDown: a throttling server (503 SlowDown) is retried with
// backoff; one that keeps throttling gives a clear error after the
// tries, and the file leaves nothing.
func TestSlowDown(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	st := pe.mustOpen(t, "t.zarr", sink.Options{})

	t.Run("burst", func(t *testing.T) {
		px.Requests()
		px.SlowDown(pe.tune.tries - 1)
		data := randBytes(2*ps+3, 4)
		f, err := st.Sink().Create("c/burst")
		if err != nil {
			t.Fatal(err)
		}
		if err := writeAll(f, data, 1<<20, 4); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatalf("Commit after %d SlowDown answers: %v", pe.tune.tries-1, err)
		}
		n := 0
		for _, r := range px.Requests() {
			if r.Answered == 503 {
				n++
			}
		}
		if n != pe.tune.tries-1 {
			t.Errorf("%d requests throttled, want %d", n, pe.tune.tries-1)
		}
		if !bytes.Equal(e.read(t, "t.zarr/c/burst"), data) {
			t.Error("object differs after retries")
		}
	})
	t.Run("persistent", func(t *testing.T) {
		for _, size := range []int{10, 2*ps + 1} {
			px.SlowDown(-1)
			f, err := st.Sink().Create("c/persistent")
			if err != nil {
				t.Fatal(err)
			}
			err = writeAll(f, randBytes(size, 5), 1<<20, 5)
			if err == nil {
				err = f.Commit()
			}
			px.SlowDown(0)
			want := fmt.Sprintf("still after %d tries", pe.tune.tries)
			if err == nil || !strings.Contains(err.Error(), "SlowDown") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "busy or failing") {
				t.Fatalf("%d bytes: error %v; want SlowDown, %q", size, err, want)
			}
			f.Abort()
		}
		e.waitNoUploads(t)
		if got := e.keys(t, "t.zarr/c/persistent"); len(got) != 0 {
			t.Fatalf("object visible after failed uploads: %v", got)
		}
	})
}

// TestServerKilled: the server dies mid-upload: the file's Write or
// Commit fails with an error that says the endpoint cannot be reached,
// within the retry bound; after a restart nothing partial is visible.
func TestServerKilled(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "k.zarr", sink.Options{})
	f, err := st.Sink().Create("c/0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(ps+1, 6)); err != nil {
		t.Fatal(err)
	}
	e.srv.Stop()
	var werr error
	within(t, 10*time.Second, "Write and Commit against a dead server", func() {
		werr = writeAll(f, randBytes(3*ps, 7), 1<<20, 7)
		if werr == nil {
			werr = f.Commit()
		}
	})
	var ee *EndpointError
	if !errors.As(werr, &ee) || !strings.Contains(werr.Error(), "cannot reach the S3 endpoint") || !strings.Contains(werr.Error(), "connection refused") {
		t.Fatalf("error %v; want an EndpointError saying the connection was refused", werr)
	}
	f.Abort()
	within(t, 10*time.Second, "Close against a dead server", func() { st.Close() })
	e.srv.Restart()
	if got := e.keys(t, "k.zarr/c"); len(got) != 0 {
		t.Fatalf("objects visible after the server died mid-upload: %v", got)
	}
}

// TestMemoryBound: with a slow server, the part buffers never exceed
// (pool parts + files) x part size, however much is written, and the
// process's heap stays within a small multiple of that (no hidden copy).
func TestMemoryBound(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	pe.tune.parts = 2
	st := pe.mustOpen(t, "m.zarr", sink.Options{})
	px.Limit(100 << 20)
	const files, perFile = 2, 8 * ps // 128 MiB in all, 4x the bound
	bound := int64(pe.tune.parts+files) * ps
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	data := randBytes(1<<20, 8)
	stop := make(chan struct{})
	var peakHeap uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}()
	var wg sync.WaitGroup
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := st.Sink().Create(fmt.Sprintf("c/%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			for n := 0; n < perFile; n += len(data) {
				if _, err := f.Write(data); err != nil {
					t.Error(err)
					return
				}
			}
			if err := f.Commit(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if peak := st.sink.mem.peak.Load(); peak > bound {
		t.Errorf("part buffers peaked at %d MiB, above the bound of %d MiB", peak>>20, bound>>20)
	} else if peak < bound/2 {
		t.Errorf("part buffers peaked at %d MiB: the slow server never filled the pool (bound %d MiB)", peak>>20, bound>>20)
	}
	if grew := int64(peakHeap) - int64(base); grew > 2*bound+16<<20 {
		t.Errorf("heap grew by %d MiB while writing %d MiB through a bound of %d MiB", grew>>20, files*perFile>>20, bound>>20)
	}
	t.Logf("bound %d MiB, buffers peaked at %d MiB, heap grew by at most %d MiB", bound>>20, st.sink.mem.peak.Load()>>20, (int64(peakHeap)-int64(base))>>20)
}

// TestConditionalPut: the server honours If-None-Match: * (the lock and
// parent groups rely on it) and If-Match (taking over a stale lock).
func TestConditionalPut(t *testing.T) {
	e := newTestEnv(t)
	cfg, err := resolveConfig(e.getenv, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newClient(cfg, e.bucket, e.tune)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	etag, err := c.putSmall(ctx, "k", []byte("one"), ifAbsent, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.putSmall(ctx, "k", []byte("two"), ifAbsent, ""); !errors.Is(err, errPrecondition) {
		t.Fatalf("second If-None-Match PUT: %v, want errPrecondition", err)
	}
	if _, err := c.putSmall(ctx, "k", []byte("two"), ifUnchanged, "0123"); !errors.Is(err, errPrecondition) {
		t.Fatalf("If-Match PUT with a wrong ETag: %v, want errPrecondition", err)
	}
	if _, err := c.putSmall(ctx, "k", []byte("three"), ifUnchanged, etag); err != nil {
		t.Fatalf("If-Match PUT with the right ETag: %v", err)
	}
	if got := string(e.read(t, "k")); got != "three" {
		t.Fatalf("object %q, want three", got)
	}
}

// TestStallTimesOut: a server that takes a request and never answers is
// a transient error once the try's timeout passes, retried, then a clear
// error; no Abort is needed to end it.
func TestStallTimesOut(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	pe.tune.tryTimeout = 200 * time.Millisecond
	st := pe.mustOpen(t, "to.zarr", sink.Options{})
	f, err := st.Sink().Create("zarr.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("{}"))
	px.Stall()
	defer px.Release()
	var cerr error
	within(t, 5*time.Second, "Commit against a server that never answers", func() { cerr = f.Commit() })
	if cerr == nil || !strings.Contains(cerr.Error(), "no answer within") || !strings.Contains(cerr.Error(), fmt.Sprintf("still after %d tries", pe.tune.tries)) {
		t.Fatalf("Commit: %v; want a timeout after %d tries", cerr, pe.tune.tries)
	}
}

// TestPartLimit: a file that outgrows the parts its part size allows is
// refused with a clear error (S3 would reject part 10,001) and leaves
// nothing.
func TestPartLimit(t *testing.T) {
	e := newTestEnv(t)
	st := e.mustOpen(t, "pl.zarr", sink.Options{})
	st.sink.maxParts = 2
	for _, end := range []string{"write", "commit"} {
		f, err := st.Sink().Create("c/" + end)
		if err != nil {
			t.Fatal(err)
		}
		n := 3 * ps // the third part is refused at Write
		if end == "commit" {
			n = 2*ps + 1 // the third part is the last one, refused at Commit
		}
		err = writeAll(f, randBytes(n, 1), 1<<20, 1)
		if end == "commit" {
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			err = f.Commit()
		}
		if err == nil || !strings.Contains(err.Error(), "grew past 2 parts") {
			t.Fatalf("%s: %v, want the part limit", end, err)
		}
		f.Abort()
	}
	e.waitNoUploads(t)
	if got := e.keys(t, "pl.zarr/c"); len(got) != 0 {
		t.Fatalf("objects left: %v", got)
	}
}

// TestPendingBound: a writer on the store counts the store's part buffers
// in its pending bound. With a slow server the raw bytes pending and the
// part buffers together stay within the bound asked for (and the server
// is slow enough that both fill); a bound below the buffers and one
// batch is refused, not silently exceeded.
func TestPendingBound(t *testing.T) {
	e := newTestEnv(t)
	px := s3test.NewProxy(t, e.srv.Endpoint)
	pe := e.with("AWS_ENDPOINT_URL", px.Endpoint)
	pe.tune.parts = 2
	// Two shards a row (two files open at once), 8 MiB epochs, no codec.
	spec := zarr.Spec{Shape: []int64{0, 512, 512}, Chunk: []int64{16, 256, 256}, Shard: []int64{64, 256, 512}, DType: zarr.Uint16, Codec: zarr.CodecNone}
	epoch := spec.EpochFrames() * spec.FrameBytes()
	open := func(maxPending int64) (*store, *pipeline.Writer, error) {
		st := pe.mustOpen(t, "p.zarr", sink.Options{Overwrite: true})
		cs, err := cpu.New(stage.Config{Spec: spec, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		w, err := pipeline.New(context.Background(), pipeline.Config{Spec: spec, Stage: cs, Sink: st.Sink(), MaxPending: maxPending})
		if err != nil {
			cs.Close()
			st.Abandon(false)
			return nil, nil, err
		}
		t.Cleanup(func() { cs.Close() })
		return st, w, nil
	}
	// The pool, one part per file of two rows, one small file.
	bufs := int64(pe.tune.parts+2*pipeline.OpenRows)*ps + firstPartCap
	var pe2 *pipeline.PendingError
	if _, _, err := open(bufs + epoch - 1); !errors.As(err, &pe2) || pe2.Need() != bufs+epoch {
		t.Fatalf("a bound of buffers + one epoch - 1: %v, want a PendingError needing %d", err, bufs+epoch)
	}
	limit := bufs + 2*epoch
	st, w, err := open(limit)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Settings().SinkBytes; got != bufs {
		t.Fatalf("Settings.SinkBytes = %d, want %d", got, bufs)
	}
	px.Limit(40 << 20)
	data := randBytes(int(epoch), 11)
	for range 12 { // 96 MiB, several times the bound
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	pend, peak := w.Stats().PendingMax, st.sink.mem.peak.Load()
	t.Logf("bound %d MiB: raw pending peaked at %d MiB, part buffers at %d MiB (at most %d)", limit>>20, pend>>20, peak>>20, bufs>>20)
	if pend+peak > limit {
		t.Errorf("pending %d MiB + part buffers %d MiB exceed the bound of %d MiB", pend>>20, peak>>20, limit>>20)
	}
	if peak < bufs/2 || pend < epoch {
		t.Errorf("the slow server filled neither (pending %d MiB, buffers %d MiB of %d): the test shows nothing", pend>>20, peak>>20, bufs>>20)
	}
}

// TestBufferBytes: the bound a writer counts follows the largest file the
// run announced (files below a part never take a pool buffer, and their
// own buffer covers at most twice their size), and files written at once
// stay within it.
func TestBufferBytes(t *testing.T) {
	e := newTestEnv(t)
	pool := int64(e.tune.parts) * ps
	for _, tc := range []struct {
		maxObject int64
		want      int64 // BufferBytes(4)
	}{
		{0, pool + 4*ps + firstPartCap},
		{3 * ps, pool + 4*ps + firstPartCap},
		{ps, pool + 4*ps + firstPartCap},
		{ps - 1, 4*ps + firstPartCap},
		{1 << 20, 4*(2<<20) + firstPartCap},
		{10 << 10, 4*firstPartCap + firstPartCap},
	} {
		t.Run(fmt.Sprint(tc.maxObject), func(t *testing.T) {
			st := e.mustOpen(t, fmt.Sprintf("b%d", tc.maxObject), sink.Options{MaxObjectSize: tc.maxObject})
			got := st.sink.BufferBytes(4)
			if got != tc.want {
				t.Fatalf("BufferBytes(4) = %d, want %d", got, tc.want)
			}
			if tc.maxObject == 0 || tc.maxObject >= ps {
				st.Abandon(false)
				return
			}
			// Four files of the largest size at once, in uneven pieces.
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					f, err := st.Sink().Create(fmt.Sprintf("c/%d", i))
					if err == nil {
						err = writeAll(f, randBytes(int(tc.maxObject), uint64(i)), 7777, uint64(i))
					}
					if err == nil {
						err = f.Commit()
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if peak := st.sink.mem.peak.Load(); peak > got {
				t.Errorf("buffers peaked at %d, above BufferBytes %d", peak, got)
			}
			if err := st.Finish(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
