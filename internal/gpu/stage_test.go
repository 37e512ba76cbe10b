package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/zwrite/zwrite/internal/cpu"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/stage/stagetest"
	"github.com/zwrite/zwrite/internal/zarr"
)

// needGPU skips a test that needs a GPU, saying why.
func needGPU(t testing.TB) *Device {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipped: needs an NVIDIA GPU and driver (%v)", err)
	}
	d, err := OpenDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tileCase is an array and the batch size it is fed in.
type tileCase struct {
	name        string
	shape       []int64 // shape[0] = frames fed
	chunk       []int64
	shard       []int64
	batchEpochs int64
}

// tileCases cover ranks 1..5, ragged edges in every dim, partial last
// epochs, batches that straddle shard rows, and chunk dims of extent 1.
var tileCases = []tileCase{
	{"rank1", []int64{1000}, []int64{64}, []int64{256}, 3},
	{"rank1 one", []int64{7}, []int64{1}, []int64{4}, 2},
	{"rank2 ragged", []int64{37, 129}, []int64{4, 32}, []int64{8, 64}, 3},
	{"rank3 ragged", []int64{37, 129, 67}, []int64{4, 32, 32}, []int64{8, 64, 64}, 2},
	{"rank3 exact", []int64{32, 64, 64}, []int64{8, 32, 32}, []int64{16, 64, 64}, 2},
	{"rank4 issue", []int64{37, 3, 129, 67}, []int64{4, 2, 32, 32}, []int64{8, 2, 64, 64}, 3},
	{"rank4 unit dims", []int64{21, 2, 70, 40}, []int64{8, 1, 16, 16}, []int64{16, 2, 32, 48}, 1},
	{"rank5 channels", []int64{13, 5, 17, 19, 3}, []int64{4, 2, 8, 8, 1}, []int64{8, 4, 16, 16, 3}, 5},
	{"rank5 tiny", []int64{9, 3, 3, 3, 2}, []int64{2, 1, 2, 3, 2}, []int64{4, 3, 4, 3, 2}, 1},
}

func (tc tileCase) spec(dt zarr.DType, codec zarr.Codec) zarr.Spec {
	s := zarr.Spec{Shape: append([]int64(nil), tc.shape...), DType: dt,
		Chunk: tc.chunk, Shard: tc.shard, Codec: codec}
	return s
}

// refOutput derives the expected Output of a batch independently of
// layout.build: list every chunk of the batch with its (row, col, inner),
// sort, and cut each chunk out of the frames element by element.
func refOutput(s *zarr.Spec, b stage.Batch, frames []byte) ([]byte, []stage.Segment, []stage.Chunk) {
	r := s.Rank()
	isz := int64(s.DType.Size())
	grid := s.ChunkGrid()
	sc := s.ShardChunks()
	type ref struct {
		row, col, inner int64
		epoch           int64
		g               []int64
	}
	var refs []ref
	nE := (b.Frames + s.Chunk[0] - 1) / s.Chunk[0]
	for e := int64(0); e < nE; e++ {
		ge := b.FirstEpoch + e
		n := s.ChunksPerEpoch()
		for lin := int64(0); lin < n; lin++ {
			g := make([]int64, r)
			g[0] = ge
			x := lin
			for d := r - 1; d >= 1; d-- {
				g[d] = x % grid[d-1]
				x /= grid[d-1]
			}
			var col, inner int64
			sg := s.ShardGrid()
			for d := 1; d < r; d++ {
				col = col*sg[d-1] + g[d]/sc[d]
			}
			for d := 0; d < r; d++ {
				inner = inner*sc[d] + g[d]%sc[d]
			}
			refs = append(refs, ref{row: ge / sc[0], col: col, inner: inner, epoch: e, g: g})
		}
	}
	sort.Slice(refs, func(i, j int) bool {
		a, c := refs[i], refs[j]
		if a.row != c.row {
			return a.row < c.row
		}
		if a.col != c.col {
			return a.col < c.col
		}
		return a.inner < c.inner
	})
	cb := s.ChunkBytes()
	data := make([]byte, int64(len(refs))*cb)
	var segs []stage.Segment
	var chunks []stage.Chunk
	strides := make([]int64, r)
	st := int64(1)
	for d := r - 1; d >= 0; d-- {
		strides[d] = st
		st *= s.Shape[d]
	}
	for i, rf := range refs {
		if len(segs) == 0 || segs[len(segs)-1].Row != rf.row || segs[len(segs)-1].Col != rf.col {
			segs = append(segs, stage.Segment{Row: rf.row, Col: rf.col, Off: int64(i) * cb, First: i})
		}
		sg := &segs[len(segs)-1]
		sg.N++
		sg.Len += cb
		chunks = append(chunks, stage.Chunk{Inner: rf.inner, Off: int64(i) * cb, Size: cb})
		out := data[int64(i)*cb:]
		c := make([]int64, r)
		for el := int64(0); el < s.ChunkElems(); el++ {
			x := el
			for d := r - 1; d >= 0; d-- {
				c[d] = x % s.Chunk[d]
				x /= s.Chunk[d]
			}
			ok := true
			var src int64
			for d := 0; d < r; d++ {
				v := rf.g[d]*s.Chunk[d] + c[d]
				if d == 0 {
					v = rf.epoch*s.Chunk[0] + c[0]
					if v >= b.Frames {
						ok = false
					}
				} else if v >= s.Shape[d] {
					ok = false
				}
				src += v * strides[d]
			}
			if ok {
				copy(out[el*isz:(el+1)*isz], frames[src*isz:(src+1)*isz])
			}
		}
	}
	return data, segs, chunks
}

// feed runs the whole array through slot sl in batches of up to
// batchFrames frames and calls check with each output and its reference.
func feed(t *testing.T, s *zarr.Spec, sl stage.Slot, batchFrames int64, rng *rand.Rand,
	check func(b stage.Batch, out *stage.Output, frames []byte)) {
	t.Helper()
	total := s.Shape[0]
	fb := s.FrameBytes()
	for f0 := int64(0); f0 < total; f0 += batchFrames {
		n := min(batchFrames, total-f0)
		frames := sl.Staging()[:n*fb]
		for i := range frames {
			frames[i] = byte(rng.Uint32())
		}
		b := stage.Batch{FirstEpoch: f0 / s.Chunk[0], Frames: n}
		if err := sl.Kick(b); err != nil {
			t.Fatal(err)
		}
		out, err := sl.Wait(context.Background())
		if err != nil {
			t.Fatalf("batch %+v: %v", b, err)
		}
		check(b, out, append([]byte(nil), frames...))
	}
}

func compareOutput(t *testing.T, s *zarr.Spec, b stage.Batch, out *stage.Output, frames []byte) {
	t.Helper()
	data, segs, chunks := refOutput(s, b, frames)
	if len(out.Segs) != len(segs) || len(out.Chunks) != len(chunks) {
		t.Fatalf("batch %+v: %d segments, %d chunks; want %d, %d", b, len(out.Segs), len(out.Chunks), len(segs), len(chunks))
	}
	for i := range segs {
		if out.Segs[i] != segs[i] {
			t.Fatalf("batch %+v: segment %d = %+v; want %+v", b, i, out.Segs[i], segs[i])
		}
	}
	for i := range chunks {
		if out.Chunks[i] != chunks[i] {
			t.Fatalf("batch %+v: chunk %d = %+v; want %+v", b, i, out.Chunks[i], chunks[i])
		}
	}
	if !bytes.Equal(out.Data, data) {
		for i := range data {
			if i >= len(out.Data) || out.Data[i] != data[i] {
				cb := s.ChunkBytes()
				t.Fatalf("batch %+v: data differ first at byte %d (chunk %d, byte %d of %d): got %d bytes, want %d",
					b, i, int64(i)/cb, int64(i)%cb, cb, len(out.Data), len(data))
			}
		}
		t.Fatalf("batch %+v: %d bytes of data; want %d", b, len(out.Data), len(data))
	}
}

// TestTileKernel checks the tile kernel and the shard ordering against a
// reference cut element by element on the CPU and against the CPU stage's
// output for the same batch, for ranks 1..5, ragged shapes and every
// dtype, through the codec-none path and through the general
// encode-and-compact path.
func TestTileKernel(t *testing.T) {
	needGPU(t)
	for _, general := range []bool{false, true} {
		for _, tc := range tileCases {
			for _, dt := range zarr.DTypes {
				name := fmt.Sprintf("%s/%v/general=%v", tc.name, dt, general)
				t.Run(name, func(t *testing.T) {
					s := tc.spec(dt, zarr.CodecNone)
					st, err := NewStageOptions(stage.Config{Spec: s}, Options{GeneralPath: general})
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					bf := tc.batchEpochs * s.Chunk[0]
					sl, err := st.NewSlot(bf)
					if err != nil {
						t.Fatal(err)
					}
					defer sl.Free()
					ref, err := cpu.New(stage.Config{Spec: s, Workers: 2})
					if err != nil {
						t.Fatal(err)
					}
					defer ref.Close()
					csl, err := ref.NewSlot(bf)
					if err != nil {
						t.Fatal(err)
					}
					defer csl.Free()
					rng := rand.New(rand.NewPCG(uint64(len(name)), 7))
					feed(t, &s, sl, bf, rng, func(b stage.Batch, out *stage.Output, frames []byte) {
						compareOutput(t, &s, b, out, frames)
						copy(csl.Staging(), frames)
						if err := csl.Kick(b); err != nil {
							t.Fatal(err)
						}
						cout, err := csl.Wait(context.Background())
						if err != nil {
							t.Fatal(err)
						}
						sameOutput(t, b, out, cout)
					})
				})
			}
		}
	}
}

// sameOutput fails unless two stages produced the same Output (times
// aside).
func sameOutput(t *testing.T, b stage.Batch, got, want *stage.Output) {
	t.Helper()
	if len(got.Segs) != len(want.Segs) || len(got.Chunks) != len(want.Chunks) {
		t.Fatalf("batch %+v: %d segments, %d chunks; the CPU stage has %d, %d", b, len(got.Segs), len(got.Chunks), len(want.Segs), len(want.Chunks))
	}
	for i := range want.Segs {
		if got.Segs[i] != want.Segs[i] {
			t.Fatalf("batch %+v: segment %d = %+v; the CPU stage has %+v", b, i, got.Segs[i], want.Segs[i])
		}
	}
	for i := range want.Chunks {
		if got.Chunks[i] != want.Chunks[i] {
			t.Fatalf("batch %+v: chunk %d = %+v; the CPU stage has %+v", b, i, got.Chunks[i], want.Chunks[i])
		}
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("batch %+v: data differ from the CPU stage's", b)
	}
}

// TestAggregateKernels drives scan_sizes and compact with random sizes
// (including 0 and sizes not a multiple of 16) against a CPU prefix sum.
func TestAggregateKernels(t *testing.T) {
	d := needGPU(t)
	m, err := d.LoadModule("aggregate")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unload()
	scan, err := m.Function("scan_sizes")
	if err != nil {
		t.Fatal(err)
	}
	compact, err := m.Function("compact")
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Destroy()
	for _, tc := range []struct {
		name   string
		n      int
		stride int64
	}{{"one", 1, 256}, {"few", 7, 512}, {"1023", 1023, 256}, {"many", 5000, 1024}, {"ragged runs", 70001, 256}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.n), 1))
			sizes := make([]uint32, tc.n)
			src := make([]byte, int64(tc.n)*tc.stride)
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			want := make([]uint64, tc.n+1)
			var ref []byte
			for i := range sizes {
				switch rng.IntN(4) {
				case 0:
					sizes[i] = 0
				case 1:
					sizes[i] = uint32(tc.stride)
				default:
					sizes[i] = uint32(rng.Int64N(tc.stride + 1))
				}
				want[i+1] = want[i] + uint64(sizes[i])
				ref = append(ref, src[int64(i)*tc.stride:int64(i)*tc.stride+int64(sizes[i])]...)
			}
			var q seq
			var dSrc, dSizes, dOff, dDst DevPtr
			q.do(func() (err error) { dSrc, err = d.Alloc(int64(len(src))); return })
			q.do(func() (err error) { dSizes, err = d.Alloc(int64(4 * tc.n)); return })
			q.do(func() (err error) { dOff, err = d.Alloc(int64(8 * (tc.n + 1))); return })
			q.do(func() (err error) { dDst, err = d.Alloc(int64(len(src))); return })
			defer func() {
				for _, p := range []DevPtr{dSrc, dSizes, dOff, dDst} {
					d.Free(p)
				}
			}()
			hs, err := d.AllocHost(int64(len(src)) + int64(4*tc.n) + int64(8*(tc.n+1)))
			if err != nil {
				t.Fatal(err)
			}
			defer hs.Free()
			hb := hs.Bytes()
			copy(hb, src)
			for i, v := range sizes {
				o := len(src) + 4*i
				hb[o], hb[o+1], hb[o+2], hb[o+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			}
			offB := hb[len(src)+4*tc.n:]
			q.do(func() error { return st.CopyHtoD(dSrc, hb[:len(src)]) })
			q.do(func() error { return st.CopyHtoD(dSizes, hb[len(src):len(src)+4*tc.n]) })
			q.do(func() error { return st.Launch(scan, Dim3{X: 1}, Dim3{X: 1024}, 0, dSizes, int32(tc.n), dOff) })
			q.do(func() error {
				return st.Launch(compact, Dim3{X: uint32(min(tc.n, 65535))}, Dim3{X: 256}, 0, dSrc, tc.stride, dSizes, dOff, int32(tc.n), dDst)
			})
			q.do(func() error { return st.CopyDtoH(offB, dOff) })
			q.do(func() error { return st.CopyDtoH(hb[:len(ref)], dDst) })
			q.do(st.Synchronize)
			if q.err != nil {
				t.Fatal(q.err)
			}
			for i, w := range want {
				o := offB[8*i:]
				got := uint64(o[0]) | uint64(o[1])<<8 | uint64(o[2])<<16 | uint64(o[3])<<24 |
					uint64(o[4])<<32 | uint64(o[5])<<40 | uint64(o[6])<<48 | uint64(o[7])<<56
				if got != w {
					t.Fatalf("offset %d = %d; want %d", i, got, w)
				}
			}
			if !bytes.Equal(hb[:len(ref)], ref) {
				t.Fatalf("compacted bytes differ from the reference")
			}
		})
	}
}

// TestSlotFreesDeviceMemory checks that slots and the stage give back all
// device memory, also after a Free refused for a batch in flight.
func TestSlotFreesDeviceMemory(t *testing.T) {
	d := needGPU(t)
	s := zarr.Spec{Shape: []int64{64, 512, 512}, DType: zarr.Uint16, Chunk: []int64{8, 64, 64}, Shard: []int64{16, 256, 256}, Codec: zarr.CodecNone}
	run := func(general, waitLast bool) {
		st, err := NewStageOptions(stage.Config{Spec: s}, Options{GeneralPath: general})
		if err != nil {
			t.Fatal(err)
		}
		var slots []stage.Slot
		for i := 0; i < 3; i++ {
			sl, err := st.NewSlot(16)
			if err != nil {
				t.Fatal(err)
			}
			slots = append(slots, sl)
			if err := sl.Kick(stage.Batch{FirstEpoch: int64(2 * i), Frames: 16}); err != nil {
				t.Fatal(err)
			}
		}
		if waitLast {
			if _, err := slots[2].Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		for i, sl := range slots {
			if i != 2 || !waitLast {
				// Free during a batch is refused (stage.Life); the slot
				// stays whole and is freed once waited for.
				if err := sl.Free(); !errors.Is(err, stage.ErrInFlight) {
					t.Fatalf("free during a batch: %v, want stage.ErrInFlight", err)
				}
				if _, err := sl.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if err := sl.Free(); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run(true, true) // warm-up: the driver keeps some memory after first use
	before, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, general := range []bool{false, true} {
		run(general, false)
		after, _, err := d.MemInfo()
		if err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("general=%v: free device memory %d before, %d after (%d bytes leaked)", general, before, after, before-after)
		}
	}
}

// TestPinnedReuse: a freed slot's pinned buffers serve the next slot of
// the stage (no second pinning), and the new slot works.
func TestPinnedReuse(t *testing.T) {
	needGPU(t)
	s := zarr.Spec{Shape: []int64{21, 300, 200}, DType: zarr.Uint16, Chunk: []int64{4, 64, 64}, Shard: []int64{8, 128, 128}, Codec: zarr.CodecNone}
	st, err := NewStage(stage.Config{Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.NewSlot(8)
	if err != nil {
		t.Fatal(err)
	}
	first := &a.Staging()[0]
	if err := a.Free(); err != nil {
		t.Fatal(err)
	}
	b, err := st.NewSlot(8)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	if &b.Staging()[0] != first {
		t.Error("the second slot pinned new staging instead of reusing the first's")
	}
	if int64(len(b.Staging())) != 8*s.FrameBytes() {
		t.Fatalf("staging is %d bytes; want %d", len(b.Staging()), 8*s.FrameBytes())
	}
	feed(t, &s, b, 8, rand.New(rand.NewPCG(1, 2)), func(bt stage.Batch, out *stage.Output, frames []byte) {
		compareOutput(t, &s, bt, out, frames)
	})
}

// TestSlotTooBig checks the clear error when a slot cannot fit.
func TestSlotTooBig(t *testing.T) {
	d := needGPU(t)
	_, total, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	s := zarr.Spec{Shape: []int64{0, 4096, 4096}, DType: zarr.Uint16, Chunk: []int64{1, 256, 256}, Shard: []int64{1, 4096, 4096}, Codec: zarr.CodecNone}
	st, err := NewStage(stage.Config{Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	frames := total / s.FrameBytes() // the input alone fills the card
	if _, err := st.NewSlot(frames); err == nil {
		t.Fatal("NewSlot for more than the card holds succeeded")
	} else {
		t.Log(err)
	}
}

// TestCopyBandwidth measures pinned copies; the figures must be plausible
// for any PCIe link (over 1 GB/s).
func TestCopyBandwidth(t *testing.T) {
	needGPU(t)
	bw, err := MeasureCopyBandwidth(256 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: pinned H2D %.1f GB/s, D2H %.1f GB/s, H2D with concurrent D2H %.1f GB/s", bw.Device, bw.H2DGBs, bw.D2HGBs, bw.BothGBs)
	if bw.H2DGBs < 1 || bw.D2HGBs < 1 || bw.BothGBs < 1 {
		t.Fatalf("implausible bandwidth %+v", bw)
	}
}

func TestDiscover(t *testing.T) {
	sys, err := Discover()
	if err != nil {
		if Available() == nil {
			t.Fatalf("Discover failed on a machine with a GPU: %v", err)
		}
		// Without a GPU the error says so in the one way callers test.
		if !errors.Is(err, ErrNoGPU) {
			t.Fatalf("Discover without a GPU: %v, want an error wrapping ErrNoGPU", err)
		}
		t.Logf("no GPU: %v", err)
		return
	}
	if len(sys.GPUs) == 0 || sys.GPUs[0].Name == "" || sys.GPUs[0].MemoryTotal <= 0 {
		t.Fatalf("Discover() = %+v", sys)
	}
	t.Logf("%+v", sys)
}

// TestConformance runs the stage contract's suite (internal/stage/stagetest)
// against the GPU backend, as the CPU backend's tests do.
func TestConformance(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("needs a GPU: %v", err)
	}
	stagetest.Run(t, func(cfg stage.Config) (stage.Stage, error) { return NewStage(cfg) })
}
