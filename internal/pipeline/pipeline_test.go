package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/sysinfo"
	"github.com/zwrite/zwrite/internal/zarr"
)

// midSpec is the mid-size ragged case of the determinism tests: shard rows
// of two epochs, batches of a few epochs, edges in both frame dims.
func midSpec(codec zarr.Codec) (zarr.Spec, int64) {
	return mkSpec(zarr.Uint16, codec, []int64{0, 24, 40}, []int64{4, 8, 16}, []int64{8, 16, 32}), 45
}

// testCodecs are the codecs the pipeline tests run with: every codec the
// CPU stage supports (TestCodecCoverage says which ones it lacks).
var testCodecs = func() []zarr.Codec {
	var cs []zarr.Codec
	for _, c := range zarr.Codecs {
		spec, _ := midSpec(c)
		if st, err := cpu.New(stage.Config{Spec: spec, Workers: 1}); err == nil {
			st.Close()
			cs = append(cs, c)
		}
	}
	return cs
}()

func TestCodecCoverage(t *testing.T) {
	// Every codec zwrite offers must run on the CPU stage (the backend
	// every machine has), so the pipeline tests cover all of them.
	for _, c := range zarr.Codecs {
		if !slices.Contains(testCodecs, c) {
			t.Errorf("the cpu stage does not support codec %v, which zwrite offers", c)
		}
	}
	if len(testCodecs) == 0 {
		t.Fatal("the cpu stage supports no codec")
	}
}

func sameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	keys := func(m map[string][]byte) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if g, w := keys(got), keys(want); !slices.Equal(g, w) {
		t.Fatalf("%s: files %v, want %v", what, g, w)
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Fatalf("%s: %s differs from the depth-1 reference (%d vs %d bytes)", what, k, len(got[k]), len(w))
		}
	}
}

// checkGoroutines waits briefly for the goroutine count to settle at or
// below before and fails the test with every stack if it does not.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > before; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestDeterminism(t *testing.T) {
	for _, codec := range testCodecs {
		spec, frames := midSpec(codec)
		input := genInput(frames*spec.FrameBytes(), 2)
		batch := 2 * spec.EpochFrames() * spec.FrameBytes() // 2 epochs: rows span batches and vice versa
		base := runOpts{cfg: Config{Depth: 1, BatchBytes: batch, CopyHelpers: -1}}
		ref, err := runWriter(t, spec, input, base)
		if err != nil {
			t.Fatal(err)
		}
		if _, data, err := readStore(ref, &spec); err != nil || !bytes.Equal(data, input) {
			t.Fatalf("%v: reference store wrong: %v", codec, err)
		}
		type tc struct {
			name string
			o    runOpts
		}
		var cases []tc
		for d := 1; d <= 6; d++ {
			for _, io := range []int{-1, 1, 2, 3, 8, 16} {
				cases = append(cases, tc{fmt.Sprintf("depth%d/io%d", d, io), runOpts{cfg: Config{Depth: d, BatchBytes: batch, IOWorkers: io}, writeSize: 4096}})
			}
		}
		for h := 1; h <= 8; h++ {
			// threshold 1: every write is split, so the split points vary
			cases = append(cases, tc{fmt.Sprintf("helpers%d", h), runOpts{cfg: Config{Depth: 3, BatchBytes: batch, CopyHelpers: h, CopyThreshold: 1}, writeSize: 7919}})
		}
		for _, ws := range []int{1, 2, 13, 4099, 65537, 0} {
			cases = append(cases, tc{fmt.Sprintf("write%d", ws), runOpts{cfg: Config{Depth: 4, BatchBytes: batch}, writeSize: ws}})
		}
		cases = append(cases, tc{"readfrom", runOpts{cfg: Config{Depth: 2, BatchBytes: batch}, readFrom: true}})
		cases = append(cases, tc{"one-epoch-batches", runOpts{cfg: Config{Depth: 5, BatchBytes: 1}, writeSize: 1000}})
		cases = append(cases, tc{"default-batch", runOpts{cfg: Config{}, writeSize: 1000}})
		for i := 0; i < 20; i++ {
			cases = append(cases, tc{fmt.Sprintf("repeat%02d", i), runOpts{cfg: Config{Depth: 4, BatchBytes: batch, CopyHelpers: 4, CopyThreshold: 1024}, writeSize: 10007}})
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%v/%s", codec, c.name), func(t *testing.T) {
				got, err := runWriter(t, spec, input, c.o)
				if err != nil {
					t.Fatal(err)
				}
				sameFiles(t, c.name, got, ref)
			})
		}
	}
}

// TestOrder checks with a recording sink the order delivery guarantees
// with parallel I/O lanes: each file sees exactly the depth-1 sequence of
// operations (create, its writes in order, commit), shard rows are
// committed in ascending order (a row's shards all before the next row's),
// and a clean run aborts nothing.
func TestOrder(t *testing.T) {
	for _, codec := range testCodecs {
		for _, sc := range []shapeCase{
			{"row-per-batch", mkSpec(zarr.Uint16, codec, []int64{0, 9, 20}, []int64{2, 4, 8}, []int64{2, 8, 16}), 41},
			{"rows-span-batches", mkSpec(zarr.Uint16, codec, []int64{0, 9, 20}, []int64{2, 4, 8}, []int64{8, 8, 16}), 41},
		} {
			input := genInput(sc.frames*sc.spec.FrameBytes(), 3)
			record := func(depth, lanes int) []sinktest.Event {
				rec := sinktest.NewRecording(sinktest.NewMem())
				_, err := runWriter(t, sc.spec, input, runOpts{cfg: Config{Depth: depth, BatchBytes: 1, Sink: rec, IOWorkers: lanes}, writeSize: 333})
				if err != nil {
					t.Fatal(err)
				}
				return rec.Events()
			}
			perKey := func(ev []sinktest.Event) map[string][]sinktest.Event {
				m := map[string][]sinktest.Event{}
				for _, e := range ev {
					if e.Key != "zarr.json" {
						m[e.Key] = append(m[e.Key], e)
					}
				}
				return m
			}
			ref := perKey(record(1, 0))
			for depth := 1; depth <= 6; depth++ {
				for _, lanes := range []int{1, 3, 16} {
					t.Run(fmt.Sprintf("%v/%s/depth%d/lanes%d", codec, sc.name, depth, lanes), func(t *testing.T) {
						ev := record(depth, lanes)
						lastRow := int64(-1)
						for i, e := range ev {
							if e.Op == sinktest.OpAbort {
								t.Fatalf("event %d: %v in a clean run", i, e)
							}
							if e.Op != sinktest.OpCommit || !strings.HasPrefix(e.Key, "c/") {
								continue
							}
							var row int64
							fmt.Sscanf(e.Key, "c/%d/", &row)
							if row < lastRow {
								t.Fatalf("event %d: %v after a commit of row %d", i, e, lastRow)
							}
							lastRow = row
						}
						got := perKey(ev)
						if len(got) != len(ref) {
							t.Fatalf("%d files, depth 1 has %d", len(got), len(ref))
						}
						for k, want := range ref {
							if !slices.Equal(got[k], want) {
								t.Fatalf("%s: operations %v, depth 1 has %v", k, got[k], want)
							}
						}
					})
				}
			}
		}
	}
}

// TestAbortStalled aborts mid-stream while the sink is stalled and kicked
// batches wait for delivery: Abort must return within a second, leave no
// goroutine and no temp file, and the store must verify with what was
// committed.
func TestAbortStalled(t *testing.T) {
	for _, codec := range testCodecs {
		for _, tc := range []struct {
			name  string
			match func(string) bool
			depth int
		}{
			{"shards-stall", func(k string) bool { return strings.HasPrefix(k, "c/") }, 4},
			{"everything-stalls", nil, 4},
			{"depth1-shards-stall", func(k string) bool { return strings.HasPrefix(k, "c/") }, 1},
			{"depth1-everything-stalls", nil, 1},
			// Abort's bound holds whatever the depth: every in-flight
			// batch is cancelled, not delivered.
			{"maxdepth-shards-stall", func(k string) bool { return strings.HasPrefix(k, "c/") }, MaxDepth},
		} {
			t.Run(fmt.Sprintf("%v/%s", codec, tc.name), func(t *testing.T) {
				spec, _ := midSpec(codec)
				frames := int64(400)
				input := genInput(frames*spec.FrameBytes(), 4)
				before := runtime.NumGoroutine()
				dir := filepath.Join(t.TempDir(), "s.zarr")
				d, err := sink.NewDir(dir, sink.DirOptions{})
				if err != nil {
					t.Fatal(err)
				}
				// stall in the middle of the third shard row
				stalled := sinktest.NewStalled(d, 5*spec.ChunkBytes()*int64(spec.ChunksPerShard()), tc.match)
				st := newStage(t, spec)
				w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: stalled, Depth: tc.depth, BatchBytes: 1})
				if err != nil {
					t.Fatal(err)
				}
				werr := make(chan error, 1)
				go func() {
					_, err := w.Write(input)
					werr <- err
				}()
				select {
				case <-stalled.Stalling():
				case <-time.After(10 * time.Second):
					t.Fatal("the sink never stalled")
				}
				// Let the producer fill every slot and block on a join.
				for i := 0; i < 200 && tc.depth > 1 && w.Stats().Batches-w.Stats().Delivered < 3; i++ {
					time.Sleep(5 * time.Millisecond)
				}
				if s := w.Stats(); tc.depth > 1 && s.Batches-s.Delivered < 2 {
					t.Fatalf("only %d batches in flight at the abort", s.Batches-s.Delivered)
				}
				reason := errors.New("interrupted by the test")
				start := time.Now()
				err = w.Abort(reason)
				el := time.Since(start)
				if el > time.Second {
					t.Errorf("Abort took %v", el)
				}
				if !errors.Is(err, reason) {
					t.Errorf("Abort returned %v, want the reason", err)
				}
				select {
				case err := <-werr:
					if !errors.Is(err, reason) {
						t.Errorf("Write returned %v, want the abort reason", err)
					}
				case <-time.After(time.Second):
					t.Fatal("Write still blocked after Abort")
				}
				if err := w.Close(); !errors.Is(err, reason) {
					t.Errorf("Close after Abort: %v", err)
				}
				files := readDir(t, dir) // before the sink's Close: the Writer cleaned up itself
				if err := st.Close(); err != nil {
					t.Errorf("stage Close: %v", err)
				}
				stalled.Close()
				checkGoroutines(t, before)
				shape0, data, err := readStore(files, &spec)
				if err != nil {
					t.Fatalf("store left by Abort does not verify: %v", err)
				}
				if shape0 > w.Stats().Committed || !bytes.Equal(data, input[:len(data)]) {
					t.Errorf("store holds %d frames (committed %d) or wrong bytes", shape0, w.Stats().Committed)
				}
				if tc.match != nil && shape0 != w.Stats().Committed {
					t.Errorf("zarr.json names %d frames, committed %d", shape0, w.Stats().Committed)
				}
			})
		}
	}
}

// readDir returns every file under dir by slash-separated key.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSinkFailure fills the disk mid-stream: the error names the shard,
// no temp file remains, the store verifies.
func TestSinkFailure(t *testing.T) {
	for _, codec := range testCodecs {
		for _, depth := range []int{1, 4} {
			for _, after := range []int64{0, 1000, 10000, 30000, 60000} {
				t.Run(fmt.Sprintf("%v/depth%d/after%d", codec, depth, after), func(t *testing.T) {
					spec, frames := midSpec(codec)
					meta, _ := zarr.MarshalArray(&spec, 0)
					after += int64(len(meta)) // the initial zarr.json goes through
					frames *= 4
					input := genInput(frames*spec.FrameBytes(), 5)
					before := runtime.NumGoroutine()
					dir := filepath.Join(t.TempDir(), "s.zarr")
					d, err := sink.NewDir(dir, sink.DirOptions{})
					if err != nil {
						t.Fatal(err)
					}
					fs := sinktest.NewFailing(d, after)
					_, err = runWriter(t, spec, input, runOpts{cfg: Config{Sink: fs, Depth: depth, BatchBytes: 1}, writeSize: 5000})
					if !errors.Is(err, syscall.ENOSPC) || !(strings.Contains(err.Error(), "shard c/") || strings.Contains(err.Error(), "zarr.json")) {
						t.Fatalf("err = %v, want ENOSPC naming the shard or zarr.json", err)
					}
					t.Logf("error: %v", err)
					files := readDir(t, dir)
					d.Close()
					checkGoroutines(t, before)
					if _, data, err := readStore(files, &spec); err != nil {
						t.Fatalf("store does not verify: %v", err)
					} else if !bytes.Equal(data, input[:len(data)]) {
						t.Errorf("store bytes differ from the input")
					}
				})
			}
		}
	}
}

// TestSinkFailsAtStart: a sink that cannot take the first zarr.json makes
// New fail with the key in the message.
func TestSinkFailsAtStart(t *testing.T) {
	spec, _ := midSpec(testCodecs[0])
	st := newStage(t, spec)
	defer st.Close()
	before := runtime.NumGoroutine()
	mem := sinktest.NewMem()
	_, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: sinktest.NewFailing(mem, 10), Depth: 3})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "zarr.json") {
		t.Fatalf("New: %v, want ENOSPC naming zarr.json", err)
	}
	if mem.Temps() != 0 || len(mem.Files()) != 0 {
		t.Errorf("files left: %d temps, %d files", mem.Temps(), len(mem.Files()))
	}
	checkGoroutines(t, before)
}

// TestBackpressure sends ten times MaxPending through a slow sink: the
// pending bytes never exceed the bound and the producer did block.
func TestBackpressure(t *testing.T) {
	for _, codec := range testCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			spec, _ := midSpec(codec)
			epoch := spec.EpochFrames() * spec.FrameBytes()
			maxPending := 5 * epoch / 2 // 2.5 batches of one epoch
			frames := 10 * maxPending / spec.FrameBytes()
			frames += 3 // a partial last epoch
			input := genInput(frames*spec.FrameBytes(), 6)
			mem := sinktest.NewMem()
			slow := sinktest.NewSlow(mem, 8<<20)
			st := newStage(t, spec)
			defer st.Close()
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: slow, Depth: 6, BatchBytes: epoch, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			if s := w.Settings(); s.MaxPending != maxPending || s.BatchBytes != epoch {
				t.Fatalf("settings %+v", s)
			}
			var seen int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() { // sample from another goroutine, as a progress bar would
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					seen = max(seen, w.Stats().Pending)
					time.Sleep(100 * time.Microsecond)
				}
			}()
			for p := input; len(p) > 0; {
				k := min(len(p), 3000)
				if _, err := w.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
			s := w.Stats()
			if s.PendingMax > maxPending || seen > maxPending {
				t.Errorf("pending reached %d (sampled %d), bound %d", s.PendingMax, seen, maxPending)
			}
			if s.StallPending == 0 {
				t.Errorf("the producer never blocked on the bound")
			}
			if s.BytesIn < 10*maxPending {
				t.Errorf("only %d bytes went through", s.BytesIn)
			}
			if _, data, err := readStore(mem.Files(), &spec); err != nil || !bytes.Equal(data, input) {
				t.Errorf("store wrong: %v", err)
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	for _, codec := range testCodecs {
		growing, _ := midSpec(codec)
		fixed := growing.Clone()
		fixed.Shape[0] = 23
		fb := growing.FrameBytes()
		tests := []struct {
			name       string
			spec       zarr.Spec
			inputBytes int64
			wantFrames int64
			wantErr    string
			check      func(error) bool
		}{
			{"empty", growing, 0, 0, "", nil},
			{"whole", growing, 37 * fb, 37, "", nil},
			{"partial-frame", growing, 37*fb + 1234, 37,
				fmt.Sprintf("input ended 1234 bytes into frame 37 (frame is %d bytes); the partial frame was dropped", fb),
				func(err error) bool { var e *PartialFrameError; return errors.As(err, &e) }},
			{"fixed-exact", fixed, 23 * fb, 23, "", nil},
			{"fixed-too-many", fixed, 30 * fb, 23, "more frames than shape[0] = 23 declares (at least ",
				func(err error) bool { var e *TooManyFramesError; return errors.As(err, &e) && e.AtLeast > 23 }},
			{"fixed-short", fixed, 20 * fb, 20, "after 20 of the 23 frames",
				func(err error) bool { var e *ShortInputError; return errors.As(err, &e) }},
			{"fixed-short-partial", fixed, 20*fb + 5, 20, "input ended 5 bytes into frame 20",
				func(err error) bool { var e *PartialFrameError; return errors.As(err, &e) }},
		}
		for _, tc := range tests {
			for _, rf := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%s/readfrom=%v", codec, tc.name, rf), func(t *testing.T) {
					input := genInput(tc.inputBytes, 7)
					files, err := runWriter(t, tc.spec, input, runOpts{cfg: Config{Depth: 3, BatchBytes: 1}, writeSize: 1000, readFrom: rf})
					if tc.wantErr == "" && err != nil {
						t.Fatalf("Close: %v", err)
					}
					if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !tc.check(err)) {
						t.Fatalf("Close: %v, want an error of the right type containing %q", err, tc.wantErr)
					}
					shape0, data, err := readStore(files, &tc.spec)
					if err != nil {
						t.Fatalf("store does not verify: %v", err)
					}
					if shape0 != tc.wantFrames || !bytes.Equal(data, input[:tc.wantFrames*fb]) {
						t.Errorf("store holds %d frames, want %d (or bytes differ)", shape0, tc.wantFrames)
					}
				})
			}
		}
	}
}

// TestStageFailure: a compress error reaches the caller and the store
// verifies with what was committed before it.
func TestStageFailure(t *testing.T) {
	for _, codec := range testCodecs {
		for _, depth := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("%v/depth%d", codec, depth), func(t *testing.T) {
				spec, frames := midSpec(codec)
				input := genInput(4*frames*spec.FrameBytes(), 8)
				before := runtime.NumGoroutine()
				st := &failStage{Stage: newStage(t, spec), failAt: 9}
				mem := sinktest.NewMem()
				_, err := runWriter(t, spec, input, runOpts{cfg: Config{Stage: st, Sink: mem, Depth: depth, BatchBytes: 1}, writeSize: 999})
				if err := st.Close(); err != nil {
					t.Errorf("stage Close: %v", err)
				}
				if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "compress batch at frame 36") {
					t.Fatalf("err = %v, want the injected failure at frame 36", err)
				}
				checkGoroutines(t, before)
				if mem.Temps() != 0 {
					t.Errorf("%d temp files left", mem.Temps())
				}
				shape0, data, err := readStore(mem.Files(), &spec)
				if err != nil || !bytes.Equal(data, input[:len(data)]) || shape0 > 36 {
					t.Errorf("store: %d frames, %v", shape0, err)
				}
			})
		}
	}
}

// TestCancel: the caller's context ends mid-stream.
func TestCancel(t *testing.T) {
	spec, frames := midSpec(testCodecs[0])
	input := genInput(8*frames*spec.FrameBytes(), 9)
	ctx, cancel := context.WithCancel(context.Background())
	mem := sinktest.NewMem()
	st := newStage(t, spec)
	defer st.Close()
	w, err := New(ctx, Config{Spec: spec, Stage: st, Sink: sinktest.NewSlow(mem, 4<<20), Depth: 3, BatchBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	var werr error
	for p := input; len(p) > 0 && werr == nil; {
		k := min(len(p), 4096)
		_, werr = w.Write(p[:k])
		p = p[k:]
	}
	if !errors.Is(werr, context.Canceled) {
		t.Fatalf("Write: %v, want context.Canceled", werr)
	}
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := readStore(mem.Files(), &spec); err != nil || mem.Temps() != 0 {
		t.Errorf("store: %v, %d temps", err, mem.Temps())
	}
}

func TestCloseTwice(t *testing.T) {
	spec, frames := midSpec(testCodecs[0])
	st := newStage(t, spec)
	defer st.Close()
	w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: sinktest.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(genInput(frames*spec.FrameBytes(), 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Abort(nil); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
}

// TestAbortWhileReading: the producer is blocked reading an idle pipe (as
// zwrite append is on a quiet stdin) when Abort comes from another
// goroutine, as on SIGINT. Abort must not wait for the read.
func TestAbortWhileReading(t *testing.T) {
	for _, codec := range testCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			// A hang (Abort waiting for the read) must fail the test with
			// every stack, not wait for go test's timeout.
			hung := time.AfterFunc(hangLimit, func() {
				buf := make([]byte, 1<<20)
				panic(fmt.Sprintf("%s: hung for %v:\n%s", t.Name(), hangLimit, buf[:runtime.Stack(buf, true)]))
			})
			defer hung.Stop()
			spec, frames := midSpec(codec)
			input := genInput(frames*spec.FrameBytes()+100, 10)
			before := runtime.NumGoroutine()
			mem := sinktest.NewMem()
			st := newStage(t, spec)
			w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: mem, Depth: 3, BatchBytes: 1})
			if err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			rerr := make(chan error, 1)
			go func() {
				_, err := w.ReadFrom(pr)
				rerr <- err
			}()
			if _, err := pw.Write(input); err != nil { // all taken: the reader now waits for more
				t.Fatal(err)
			}
			for i := 0; i < 200 && w.Stats().Delivered < 3; i++ {
				time.Sleep(5 * time.Millisecond)
			}
			for i := 0; i < 200; i++ { // until ReadFrom waits in Read
				w.mu.Lock()
				in := w.reading != nil
				w.mu.Unlock()
				if in {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // past a Read that just returned
			reason := errors.New("signal: interrupt")
			start := time.Now()
			if err := w.Abort(reason); !errors.Is(err, reason) {
				t.Errorf("Abort: %v", err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("Abort took %v", el)
			}
			files := mem.Files()
			go func() {
				pw.Write([]byte{1, 2, 3}) // the blocked Read returns; its bytes are dropped
				pw.Close()
			}()
			select {
			case err := <-rerr:
				if !errors.Is(err, reason) {
					t.Errorf("ReadFrom: %v, want the abort reason", err)
				}
			case <-time.After(time.Second):
				t.Fatal("ReadFrom did not return")
			}
			pr.Close() // in case ReadFrom returned before taking the bytes
			if err := st.Close(); err != nil {
				t.Errorf("stage Close: %v (a slot not freed?)", err)
			}
			checkGoroutines(t, before)
			shape0, data, err := readStore(files, &spec)
			if err != nil || !bytes.Equal(data, input[:len(data)]) {
				t.Fatalf("store: %v", err)
			}
			if shape0 != w.Stats().Committed || shape0 == 0 {
				t.Errorf("zarr.json names %d frames, committed %d", shape0, w.Stats().Committed)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	spec, _ := midSpec(zarr.CodecNone) // frame 1920 bytes, epoch 4 frames = 7680 bytes
	fixed := spec.Clone()
	fixed.Shape[0] = 10
	epoch := int64(7680)
	tests := []struct {
		name        string
		spec        zarr.Spec
		cfg         Config
		wantFrames  int64
		wantPending int64 // 0: not checked
		wantDepth   int
	}{
		{"defaults", spec, Config{}, (DefaultBatchBytes + epoch/2) / epoch * 4, 0, DefaultDepth},
		{"nearest-epoch-down", spec, Config{BatchBytes: epoch*3 + epoch/3}, 12, 0, DefaultDepth},
		{"nearest-epoch-up", spec, Config{BatchBytes: epoch*3 + epoch*2/3}, 16, 0, DefaultDepth},
		{"at-least-one-epoch", spec, Config{BatchBytes: 1, Depth: 1}, 4, 0, 1},
		{"fixed-caps-batch", fixed, Config{BatchBytes: 100 * epoch}, 12, 0, DefaultDepth},
		{"pending-shrinks-batch", spec, Config{BatchBytes: 10 * epoch, MaxPending: 3 * epoch}, 12, 3 * epoch, DefaultDepth},
		{"pending-below-one-epoch", spec, Config{BatchBytes: 10 * epoch, MaxPending: 100}, 4, epoch, DefaultDepth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := settle(&tc.spec, tc.cfg)
			if s.BatchFrames != tc.wantFrames || s.BatchBytes != s.BatchFrames*tc.spec.FrameBytes() || s.Depth != tc.wantDepth {
				t.Errorf("settings %+v, want %d frames per batch, depth %d", s, tc.wantFrames, tc.wantDepth)
			}
			if tc.wantPending != 0 && s.MaxPending != tc.wantPending {
				t.Errorf("MaxPending %d, want %d", s.MaxPending, tc.wantPending)
			}
			if s.MaxPending < s.BatchBytes {
				t.Errorf("MaxPending %d below one batch %d: nothing could move", s.MaxPending, s.BatchBytes)
			}
		})
	}
}

// hintStage is a stage that compresses off the host cores and asks for
// copy helpers (stage.CopyHinter), as the GPU stage does.
type hintStage struct {
	noSlotStage
	helpers int
}

func (s hintStage) CopyHelpers() int { return s.helpers }

// TestCopyHelperHint: a Config that leaves CopyHelpers open takes the
// stage's hint; an explicit choice (or -1 = none) wins over it; a stage
// without the hint gets the CPU default.
func TestCopyHelperHint(t *testing.T) {
	spec, _ := midSpec(zarr.CodecNone)
	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{"hint", Config{Stage: hintStage{helpers: 14}}, 14},
		{"negative-hint", Config{Stage: hintStage{helpers: -3}}, 0},
		{"explicit-wins", Config{Stage: hintStage{helpers: 14}, CopyHelpers: 2}, 2},
		{"off-wins", Config{Stage: hintStage{helpers: 14}, CopyHelpers: -1}, 0},
		{"no-hint", Config{Stage: noSlotStage{t}}, defaultCopyHelpers()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := settle(&spec, tc.cfg).CopyHelpers; got != tc.want {
				t.Errorf("CopyHelpers = %d, want %d", got, tc.want)
			}
		})
	}
}

// noSlotStage fails the test if New allocates a slot: New must refuse its
// configs before that.
type noSlotStage struct{ t *testing.T }

func (s noSlotStage) Name() string { return "noslot" }
func (s noSlotStage) Close() error { return nil }
func (s noSlotStage) NewSlot(int64) (stage.Slot, error) {
	s.t.Error("New allocated a slot for a config it should refuse")
	return nil, errors.New("no slots")
}

// TestNewRefuses: specs that fail Validate (sizes that overflow, which
// once divided by zero in New) and depths whose slots cannot fit in memory
// are errors from New, not panics or allocations.
func TestNewRefuses(t *testing.T) {
	u16 := func(shape, chunk, shard []int64) zarr.Spec {
		return zarr.Spec{Shape: shape, DType: zarr.Uint16, Chunk: chunk, Shard: shard, Codec: zarr.CodecZstd, Level: 1}
	}
	tests := []struct {
		name  string
		spec  zarr.Spec
		depth int
		want  []string // substrings of the error
	}{
		// zwrite bench --shape 10,4294967296,4294967296 --chunk 1,1,1 --shard 1,1,1
		{"frame overflow (bench panic)", u16([]int64{10, 1 << 32, 1 << 32}, []int64{1, 1, 1}, []int64{1, 1, 1}), 0, []string{"one frame", "128 TiB"}},
		{"grid overflow", u16([]int64{0, 1 << 20, 1 << 20}, []int64{1, 1, 1}, []int64{1, 1, 1}), 0, []string{"inner chunks per epoch"}},
		// Epoch of 16 frames × 4 GiB = 64 GiB; 64 slots need 8 TiB.
		{"depth beyond memory", u16([]int64{0, 65536, 32768}, []int64{16, 64, 64}, []int64{16, 64, 64}), 64, []string{"64 slots of 128.09 GiB", "64.00 GiB of staging", "needs 8198.01 GiB", "of memory is available"}},
	}
	if sysinfo.MemAvailable() <= 0 {
		tests = tests[:2] // no /proc/meminfo: memory is not checked
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := sinktest.NewMem()
			w, err := New(context.Background(), Config{Spec: tc.spec, Stage: noSlotStage{t}, Sink: mem, Depth: tc.depth})
			if err == nil {
				w.Abort(errors.New("test"))
				t.Fatalf("New(%v, depth %d) succeeded", tc.spec, tc.depth)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("New(%v, depth %d): %q does not contain %q", tc.spec, tc.depth, err, s)
				}
			}
			if len(mem.Files()) != 0 || mem.Temps() != 0 {
				t.Errorf("refused New left files behind")
			}
		})
	}
}

func TestCheckMemory(t *testing.T) {
	tests := []struct {
		name  string
		s     Settings
		avail int64
		want  string // "" = fits
	}{
		{"unknown memory", Settings{Depth: 3, BatchBytes: 1 << 40}, 0, ""},
		{"fits", Settings{Depth: 3, BatchBytes: 1 << 30}, 6 << 30, ""},
		{"one byte short", Settings{Depth: 3, BatchBytes: 1 << 30}, 6<<30 - 1, "needs 6.00 GiB: 3 slots of 2.00 GiB (1.00 GiB of staging"},
		{"per-chunk bookkeeping counts", Settings{Depth: 1, BatchBytes: 1 << 20, BatchChunks: 1 << 20}, 100 << 20, "1 slots of 0.19 GiB"},
		{"indexes count", Settings{Depth: 1, BatchBytes: 1 << 20, IndexBytes: 1 << 30}, 1 << 30, "and 1.00 GiB of shard indexes"},
		{"overflow", Settings{Depth: 1 << 30, BatchBytes: 1 << 47}, 1 << 40, "need"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMemory(tc.s, tc.avail)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkMemory(%+v, %d) = %v, want %q", tc.s, tc.avail, err, tc.want)
			}
			var me *MemoryError
			if err != nil && (!errors.As(err, &me) || me.Depth != tc.s.Depth) {
				t.Errorf("checkMemory(%+v, %d) = %#v, want a *MemoryError for depth %d", tc.s, tc.avail, err, tc.s.Depth)
			}
		})
	}
}

// rowSink counts the shard files created and not yet committed or
// aborted (the files a buffering sink holds a part for), and commits
// slowly, as an object store completes an upload.
type rowSink struct {
	inner      sink.Sink
	commitWait time.Duration
	mu         sync.Mutex
	open, peak int
}

func (s *rowSink) Create(key string) (sink.File, error) {
	f, err := s.inner.Create(key)
	if err != nil || !strings.HasPrefix(key, "c/") {
		return f, err
	}
	s.mu.Lock()
	s.open++
	s.peak = max(s.peak, s.open)
	s.mu.Unlock()
	return &countedFile{File: f, s: s}, nil
}
func (s *rowSink) Put(key string, data []byte) error { return sink.Put(s, key, data) }

// BufferBytes makes rowSink a buffering sink (sink.Buffered), which is
// what limits the rows open at once.
func (s *rowSink) BufferBytes(files int) int64 { return int64(files) << 10 }
func (s *rowSink) Close() error                { return s.inner.Close() }

type countedFile struct {
	sink.File
	s    *rowSink
	once sync.Once
}

func (f *countedFile) closed() {
	f.once.Do(func() {
		f.s.mu.Lock()
		f.s.open--
		f.s.mu.Unlock()
	})
}
func (f *countedFile) Commit() error {
	time.Sleep(f.s.commitWait)
	defer f.closed()
	return f.File.Commit()
}
func (f *countedFile) Abort() error { defer f.closed(); return f.File.Abort() }

// TestOpenRows: however far the commits fall behind the data, at most
// OpenRows shard rows of files are open at once (a buffering sink's
// buffers are sized for that many), the delivery waits for them
// (StallRows), and the store is whole.
func TestOpenRows(t *testing.T) {
	// One epoch per shard row, so every batch opens a row; 3 shards a row.
	spec := mkSpec(zarr.Uint16, zarr.CodecNone, []int64{0, 24, 48}, []int64{4, 8, 16}, []int64{4, 24, 16})
	perRow := int(spec.ShardsPerRow())
	epoch := spec.EpochFrames() * spec.FrameBytes()
	input := genInput(40*epoch, 9)
	rs := &rowSink{inner: sinktest.NewMem(), commitWait: 20 * time.Millisecond}
	st := newStage(t, spec)
	defer st.Close()
	w, err := New(context.Background(), Config{Spec: spec, Stage: st, Sink: rs, Depth: 8, BatchBytes: epoch, IOWorkers: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(input); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rs.peak > OpenRows*perRow || rs.open != 0 {
		t.Errorf("shard files open at once peaked at %d (%d left), want at most %d rows of %d", rs.peak, rs.open, OpenRows, perRow)
	}
	if w.Stats().StallRows == 0 {
		t.Errorf("delivery never waited for a commit: the commits did not fall behind, the test shows nothing")
	}
	if _, data, err := readStore(rs.inner.(*sinktest.Mem).Files(), &spec); err != nil || !bytes.Equal(data, input) {
		t.Errorf("store wrong: %v", err)
	}
}
