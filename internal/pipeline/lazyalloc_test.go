package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// gateStage blocks NewSlot calls after the first until release is closed.
type gateStage struct {
	stage.Stage
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gateStage) NewSlot(maxFrames int64) (stage.Slot, error) {
	if g.calls.Add(1) > 1 {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.release
	}
	return g.Stage.NewSlot(maxFrames)
}

// TestAbortDuringLazyAlloc: a flush moves the producer off slot 0
// before grow asked for the rest; the next Write waits for slot 1's
// allocation; an Abort then returns once the allocation does, every slot
// is freed, and the committed store stands.
func TestAbortDuringLazyAlloc(t *testing.T) {
	spec, _ := midSpec(zarr.CodecZstd)
	fb := spec.FrameBytes()
	for _, tail := range []int64{0, 2} {
		{
			t.Run(fmt.Sprintf("tail%d", tail), func(t *testing.T) {
				g := &gateStage{Stage: newStage(t, spec), entered: make(chan struct{}, 1), release: make(chan struct{})}
				defer g.Close()
				w, err := New(context.Background(), Config{Spec: spec, Stage: g, Sink: sinktest.NewMem(), Depth: 3,
					BatchBytes: 64 * spec.EpochFrames() * fb, FlushInterval: 5 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				in := genInput((spec.EpochFrames()+tail)*fb, 1)
				if _, err := w.Write(in); err != nil {
					t.Fatal(err)
				}
				// tail 0: the flush kicks slot 0 and the next Write joins
				// slot 1; tail > 0: the flusher itself joins slot 1 (to
				// carry the tail) while it holds mu.
				if tail == 0 {
					for w.Stats().Batches == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				done := make(chan error, 1)
				if tail == 0 {
					go func() { _, err := w.Write(genInput(fb, 2)); done <- err }()
				} else {
					done <- nil
				}
				<-g.entered // slot 1 is being allocated
				aborted := make(chan error, 1)
				go func() { aborted <- w.Abort(errors.New("stop")) }()
				time.Sleep(20 * time.Millisecond)
				close(g.release)
				<-aborted
				<-done
				if err := g.Stage.Close(); err != nil {
					t.Errorf("stage Close: %v (a slot not freed?)", err)
				}
			})
		}
	}
}

// failGate fails the gated NewSlot calls.
type failGate struct{ gateStage }

func (g *failGate) NewSlot(maxFrames int64) (stage.Slot, error) {
	if g.calls.Add(1) > 1 {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.release
		return nil, errors.New("out of pinned memory")
	}
	return g.Stage.NewSlot(maxFrames)
}

// TestCloseWhileAllocating: the input fits slot 0 but passed an
// eighth of it, so grow started allocating slot 1; Close finishes the
// whole store meanwhile. A slot the run never needed failing to allocate
// afterwards must not turn the finished store's Close into an error.
func TestCloseWhileAllocating(t *testing.T) {
	spec, _ := midSpec(zarr.CodecZstd)
	fb := spec.FrameBytes()
	g := &failGate{gateStage{Stage: newStage(t, spec), entered: make(chan struct{}, 1), release: make(chan struct{})}}
	defer g.Close()
	mem := sinktest.NewMem()
	w, err := New(context.Background(), Config{Spec: spec, Stage: g, Sink: mem, Depth: 3, BatchBytes: 16 * spec.EpochFrames() * fb})
	if err != nil {
		t.Fatal(err)
	}
	input := genInput(4*spec.EpochFrames()*fb, 1) // a quarter of slot 0
	if _, err := w.Write(input); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	go func() { time.Sleep(50 * time.Millisecond); close(g.release) }()
	cerr := w.Close()
	if _, data, err := readStore(mem.Files(), &spec); err != nil || !bytes.Equal(data, input) {
		t.Fatalf("store: %d bytes, %v", len(data), err)
	}
	if cerr != nil {
		t.Errorf("Close of a complete store: %v", cerr)
	}
}

// lastPieceWaits is an io.ReaderAt whose read of byte end-1 waits until
// the stage is asked for a second slot (or gives up after a while).
type lastPieceWaits struct {
	r       *bytes.Reader
	end     int64
	entered chan struct{}
	late    atomic.Bool
}

func (l *lastPieceWaits) ReadAt(p []byte, off int64) (int, error) {
	if off < l.end && off+int64(len(p)) >= l.end {
		select {
		case <-l.entered:
		case <-time.After(3 * time.Second):
			l.late.Store(true)
		}
	}
	return l.r.ReadAt(p, off)
}

// TestReadAtGrowsEarly: ReadAt (the file path) reads a whole slot in
// one readParallel; slot 1's allocation must start while slot 0 is being
// read, not after, or every file run stalls for a whole slot's
// allocation (pinning: up to a second per GB) at slot 1.
func TestReadAtGrowsEarly(t *testing.T) {
	spec, _ := midSpec(zarr.CodecLZ4)
	fb := spec.FrameBytes()
	g := &gateStage{Stage: newStage(t, spec), entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(g.release)
	defer g.Close()
	w, err := New(context.Background(), Config{Spec: spec, Stage: g, Sink: sinktest.NewMem(), Depth: 2, BatchBytes: 16 * spec.EpochFrames() * fb})
	if err != nil {
		t.Fatal(err)
	}
	bb := w.Settings().BatchBytes
	input := genInput(2*bb, 4)
	r := &lastPieceWaits{r: bytes.NewReader(input), end: bb, entered: g.entered}
	if _, err := w.ReadAt(r, int64(len(input)), 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r.late.Load() {
		t.Error("slot 1's allocation started only after slot 0 was read whole")
	}
}
