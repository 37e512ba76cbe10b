package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// writeStore runs input through a pipeline with stage st at depth into a
// memory sink and returns its files.
func writeStore(t *testing.T, spec zarr.Spec, st stage.Stage, depth int, input []byte) map[string][]byte {
	t.Helper()
	mem := sink.NewMem()
	w, err := pipeline.New(context.Background(), pipeline.Config{Spec: spec, Stage: st, Sink: mem, Depth: depth, BatchBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Uneven writes, so batches fill across Write calls.
	for off, k := 0, 0; off < len(input); k++ {
		n := min(len(input)-off, 1+(k*7919)%(3*int(spec.FrameBytes())))
		if _, err := w.Write(input[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return mem.Files()
}

// TestGPUStoreMatchesCPU writes the same input with the CPU stage at depth
// 1 (the reference schedule) and with the GPU stage at depths 1..4, codec
// none, and requires byte-identical stores.
func TestGPUStoreMatchesCPU(t *testing.T) {
	needGPU(t)
	cases := []struct {
		name   string
		spec   zarr.Spec
		frames int64
	}{
		{"issue ragged", zarr.Spec{Shape: []int64{0, 3, 129, 67}, DType: zarr.Uint16, Chunk: []int64{4, 2, 32, 32}, Shard: []int64{8, 2, 64, 64}, Codec: zarr.CodecNone}, 37},
		{"fixed partial row", zarr.Spec{Shape: []int64{45, 100, 90}, DType: zarr.Float32, Chunk: []int64{4, 32, 32}, Shard: []int64{16, 64, 96}, Codec: zarr.CodecNone}, 45},
		{"rank5", zarr.Spec{Shape: []int64{0, 5, 17, 19, 3}, DType: zarr.Uint8, Chunk: []int64{2, 2, 8, 8, 1}, Shard: []int64{4, 4, 16, 16, 3}, Codec: zarr.CodecNone}, 23},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := make([]byte, tc.frames*tc.spec.FrameBytes())
			rng := rand.New(rand.NewPCG(uint64(tc.frames), 3))
			for i := range input {
				input[i] = byte(rng.Uint32())
			}
			cpu, err := stage.NewCPU(stage.Config{Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			want := writeStore(t, tc.spec, cpu, 1, input)
			cpu.Close()
			for depth := 1; depth <= 4; depth++ {
				for _, general := range []bool{false, true} {
					t.Run(fmt.Sprintf("depth=%d/general=%v", depth, general), func(t *testing.T) {
						st, err := NewStageOptions(stage.Config{Spec: tc.spec}, Options{GeneralPath: general})
						if err != nil {
							t.Fatal(err)
						}
						defer st.Close()
						got := writeStore(t, tc.spec, st, depth, input)
						sameFiles(t, got, want)
					})
				}
			}
		})
	}
}

func sameFiles(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(got) != len(want) {
		t.Fatalf("%d files; the CPU store has %d", len(got), len(want))
	}
	for _, k := range keys {
		if !bytes.Equal(got[k], want[k]) {
			t.Fatalf("%s differs from the CPU store's (%d vs %d bytes)", k, len(got[k]), len(want[k]))
		}
	}
}

// TestAbortStalledFreesDeviceMemory aborts a GPU pipeline whose sink hangs
// with batches kicked and undelivered, and checks that once the Writer and
// the stage are closed the card's free memory is what it was before.
func TestAbortStalledFreesDeviceMemory(t *testing.T) {
	d := needGPU(t)
	spec := zarr.Spec{Shape: []int64{0, 256, 256}, DType: zarr.Uint16, Chunk: []int64{4, 64, 64}, Shard: []int64{8, 128, 128}, Codec: zarr.CodecNone}
	input := make([]byte, 96*spec.FrameBytes())
	for i := range input {
		input[i] = byte(i * 31 >> 5)
	}
	run := func(abort bool) {
		st, err := NewStage(stage.Config{Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stalled := sink.NewStalled(sink.NewMem(), 3*spec.ChunkBytes()*spec.ChunksPerShard(), nil)
		defer stalled.Close()
		if !abort {
			stalled.Release()
		}
		w, err := pipeline.New(context.Background(), pipeline.Config{Spec: spec, Stage: st, Sink: stalled, Depth: 4, BatchBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		werr := make(chan error, 1)
		go func() {
			_, err := w.Write(input)
			werr <- err
		}()
		if !abort {
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return
		}
		select {
		case <-stalled.Stalling():
		case <-time.After(10 * time.Second):
			t.Fatal("the sink never stalled")
		}
		for i := 0; i < 200 && w.Stats().Batches-w.Stats().Delivered < 3; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if s := w.Stats(); s.Batches-s.Delivered < 2 {
			t.Fatalf("only %d batches in flight at the abort", s.Batches-s.Delivered)
		}
		reason := errors.New("aborted by the test")
		start := time.Now()
		if err := w.Abort(reason); !errors.Is(err, reason) {
			t.Fatalf("Abort returned %v", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("Abort took %v", el)
		}
		select {
		case <-werr:
		case <-time.After(2 * time.Second):
			t.Fatal("Write still blocked after Abort")
		}
		w.Close()
	}
	run(false) // warm-up: the driver keeps some memory after first use
	before, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	run(true)
	after, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("free device memory %d before, %d after the abort (%d bytes not returned)", before, after, before-after)
	}
}
