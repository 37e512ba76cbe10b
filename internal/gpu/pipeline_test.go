package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/pipeline"
	"github.com/zwrite/zwrite/internal/sink/sinktest"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

// writeStore runs input through a pipeline with stage st at depth into a
// memory sink and returns its files.
func writeStore(t *testing.T, spec zarr.Spec, st stage.Stage, depth int, input []byte) map[string][]byte {
	t.Helper()
	mem := sinktest.NewMem()
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
			ref, err := cpu.New(stage.Config{Spec: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			want := writeStore(t, tc.spec, ref, 1, input)
			ref.Close()
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

// memFS serves a memory sink's files to zarr.Open.
func memFS(files map[string][]byte) fstest.MapFS {
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: v}
	}
	return fsys
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
		stalled := sinktest.NewStalled(sinktest.NewMem(), 3*spec.ChunkBytes()*spec.ChunksPerShard(), nil)
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

// TestScratchGroupsInvisible writes the same input with every GPU codec
// twice: scratch for the whole batch, and a ScratchLimit so small that
// each codec launch takes a few chunks. The stores must be identical and
// read back to the input: grouping is a memory bound, never a format
// change. (A batch of many tiny zstd chunks once needed 157 GiB of scratch.)
func TestScratchGroupsInvisible(t *testing.T) {
	needGPU(t)
	for _, codec := range []zarr.Codec{zarr.CodecZstd, zarr.CodecLZ4, zarr.CodecBloscZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			spec := zarr.Spec{Shape: []int64{0, 3, 5, 7, 9}, DType: zarr.Int16, Chunk: []int64{2, 2, 2, 3, 4}, Shard: []int64{4, 2, 4, 6, 8}, Codec: codec, Level: 1}
			input := make([]byte, 11*spec.FrameBytes())
			rng := rand.New(rand.NewPCG(11, 5))
			for i := range input {
				input[i] = byte(rng.Uint32() % 7)
			}
			var stores []map[string][]byte
			for _, limit := range []int64{0, 1} {
				st, err := NewStageOptions(stage.Config{Spec: spec}, Options{ScratchLimit: limit})
				if err != nil {
					t.Fatal(err)
				}
				stores = append(stores, writeStore(t, spec, st, 2, input))
				st.Close()
			}
			sameFiles(t, stores[1], stores[0])
			a, err := zarr.Open(memFS(stores[0]))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var got bytes.Buffer
			if err := a.ReadAll(&got); errors.Is(err, blosc.ErrNotSupported) {
				t.Skipf("stores identical; internal/blosc cannot read them back yet: %v", err)
			} else if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), input) {
				t.Fatal("store does not read back to the input")
			}
		})
	}
}

// TestScratchGroup: the largest group of chunks whose scratch fits the
// limit, never zero, the whole batch when it fits (no GPU needed).
func TestScratchGroup(t *testing.T) {
	z := &zstdCodec{}
	const cb = 300 << 10 // 3 zstd blocks a chunk
	tests := []struct {
		name  string
		codec CodecKernels
		n     int
		limit int64
		want  int
	}{
		{"fits", z, 1000, z.Scratch(cb, 1000), 1000},
		{"one-short", z, 1000, z.Scratch(cb, 1000) - 1, 999},
		{"exact-k", z, 1000, z.Scratch(cb, 37), 37},
		{"below-one", z, 1000, 1, 1},
		{"single", z, 1, 1, 1},
		{"no-scratch", identityCodec{}, 500, 0, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scratchGroup(tc.codec, cb, tc.n, tc.limit); got != tc.want {
				t.Errorf("scratchGroup(n=%d, limit=%d) = %d, want %d", tc.n, tc.limit, got, tc.want)
			}
		})
	}
}
