package gpu

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/zwrite/zwrite/internal/zarr"
)

// Codec plug-in interface
//
// A GPU codec is a set of kernels in internal/gpu/kernels/NAME.cu (built to
// ptx/NAME.ptx by make ptx and embedded) plus a Go file in this package
// that registers a constructor from its init function:
//
//	func init() { RegisterCodec(zarr.CodecLZ4, "lz4", newLZ4) }
//
//	func newLZ4(m *Module, spec zarr.Spec) (CodecKernels, error) {
//		enc, err := m.Function("lz4_encode") // look kernels up once
//		...
//	}
//
// The GPU stage loads the module NAME once per Stage and calls the
// constructor with it and the array's Spec (dtype for shuffle, level).
// Per slot, the stage then allocates
//
//	out:     nChunks * stride bytes, stride = Bound(chunkBytes) rounded up
//	         to 256 so every chunk's output starts aligned
//	sizes:   nChunks uint32, one per chunk
//	scratch: Scratch(chunkBytes, nChunks) bytes (none when 0)
//
// and, for every batch, enqueues on the slot's stream (a Queue):
//
//	H2D of the frames → tile kernel → codec.Encode → aggregate → D2H
//
// Encode receives n tiled chunks: chunk i's chunkBytes input bytes at
// in + i*chunkBytes (C order, padded with 0, in the order they appear in
// the shard files), and must leave chunk i's encoded bytes at
// out + i*stride and their count in sizes[i] (≤ Bound(chunkBytes)). It
// only enqueues work on q (kernels via q.Launch, q.CopyDtoD, q.Memset...);
// it must not synchronise, allocate device memory or keep pointers past
// the call. (q is the slot's *Stream; the tests also pass the CPU kernel
// emulator of emu_test.go, which runs the same kernels by name, so a
// codec's launch code is checked on machines without a GPU.) The input may be used as temporary space (it is
// not read again after Encode). Output must be deterministic: the same
// chunk bytes give the same encoded bytes on every run, slot and card.
//
// The stage's aggregation then computes each chunk's offset with a
// deterministic prefix sum over sizes, compacts the chunks back to back in
// that order and copies only those bytes (and the offsets) to the host. The
// encoded bytes of one chunk are what goes into the shard file, so they
// must be exactly what the store's codec metadata promises (a zstd frame,
// a blosc1 buffer...).
//
// Encode is called with the device's context current on a goroutine locked
// to its OS thread; a codec may call Queue and Function methods freely.
// CodecKernels values are used by one slot at a time but several slots may
// call Encode concurrently on different streams, so Encode must not mutate
// shared state.
type CodecKernels interface {
	// Bound is the most bytes Encode may write for one chunk of
	// chunkBytes input bytes (the per-chunk capacity of out).
	Bound(chunkBytes int64) int64
	// Scratch is the device scratch Encode needs for nChunks chunks of
	// chunkBytes (0 for none). It is allocated once per slot for the
	// largest batch and passed to every Encode.
	Scratch(chunkBytes int64, nChunks int) int64
	// Encode enqueues the encoding of n chunks (see above).
	Encode(q Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, scratch DevPtr) error
}

// Queue is what a codec enqueues its work on, in order: a CUDA stream
// (*Stream) or, in tests, the CPU kernel emulator.
type Queue interface {
	Launch(f *Function, grid, block Dim3, shmem int, args ...any) error
	CopyDtoD(dst, src DevPtr, n int64) error
	Memset(p DevPtr, v byte, n int64) error
	Memset32(p DevPtr, v uint32, n int64) error
}

var _ Queue = (*Stream)(nil)

// Noter is implemented by codec kernels that run the store's level in a
// way a user may want to know about: the GPU zstd encoders have a few
// parses, and a level runs as the nearest one below it. The CLI shows
// Stage.CodecNote with --verbose.
type Noter interface {
	Note() string
}

// CodecFactory builds a codec's kernels from its loaded module and the
// array spec. It runs once per Stage; errors name what is unsupported
// (an unsupported level, say).
type CodecFactory func(m *Module, spec zarr.Spec) (CodecKernels, error)

type codecEntry struct {
	module string // kernels/<module>.cu, ptx/<module>.ptx
	f      CodecFactory
}

var (
	codecMu  sync.RWMutex
	registry = map[zarr.Codec]codecEntry{}
)

// RegisterCodec makes GPU kernels for codec c available; module names the
// PTX module (kernels/module.cu) the factory receives. Call it from init;
// registering a codec twice panics (two files claim the same codec).
func RegisterCodec(c zarr.Codec, module string, f CodecFactory) {
	codecMu.Lock()
	defer codecMu.Unlock()
	if _, dup := registry[c]; dup {
		panic(fmt.Sprintf("gpu: codec %v registered twice", c))
	}
	registry[c] = codecEntry{module: module, f: f}
}

// HasCodec reports whether codec c can run on the GPU. CodecNone always
// can: it needs no kernels beyond the tile kernel.
func HasCodec(c zarr.Codec) bool {
	if c == zarr.CodecNone {
		return true
	}
	codecMu.RLock()
	defer codecMu.RUnlock()
	_, ok := registry[c]
	return ok
}

// GPUCodecs lists the codecs with GPU kernels, for help texts.
func GPUCodecs() []zarr.Codec {
	out := []zarr.Codec{zarr.CodecNone}
	codecMu.RLock()
	for c := range registry {
		out = append(out, c)
	}
	codecMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func lookupCodec(c zarr.Codec) (codecEntry, bool) {
	codecMu.RLock()
	defer codecMu.RUnlock()
	e, ok := registry[c]
	return e, ok
}

// identityCodec is codec none run through the plug-in path: it copies each
// chunk unchanged. The stage normally skips the codec and aggregation for
// codec none (the tiled buffer is already the shard bytes, in order); this
// form exists so tests can drive the general encode-and-compact path with a
// codec whose output is known, and it needs no module of its own.
type identityCodec struct{}

func (identityCodec) Bound(chunkBytes int64) int64 { return chunkBytes }
func (identityCodec) Scratch(int64, int) int64     { return 0 }
func (c identityCodec) Encode(q Queue, in DevPtr, chunkBytes int64, n int, out DevPtr, stride int64, sizes DevPtr, _ DevPtr) error {
	if stride == chunkBytes {
		if err := q.CopyDtoD(out, in, chunkBytes*int64(n)); err != nil {
			return err
		}
	} else {
		for i := 0; i < n; i++ {
			if err := q.CopyDtoD(out.Add(int64(i)*stride), in.Add(int64(i)*chunkBytes), chunkBytes); err != nil {
				return err
			}
		}
	}
	return q.Memset32(sizes, uint32(chunkBytes), int64(n))
}

// Supports reports nil when the GPU backend can write codec c on this
// machine, else an error saying why: no usable GPU (wrapping ErrNoGPU) or
// no GPU kernels for c (wrapping ErrNoKernels). backend uses it both for
// --backend auto (fall back to the CPU on any error) and for --backend gpu
// (report the error as a usage error).
func Supports(c zarr.Codec) error {
	if err := Available(); err != nil {
		return err
	}
	if !HasCodec(c) {
		return fmt.Errorf("%w: codec %v has no GPU kernels yet (GPU codecs: %v)", ErrNoKernels, c, GPUCodecs())
	}
	return nil
}

// ErrNoKernels is wrapped when a codec cannot run on the GPU.
var ErrNoKernels = errors.New("no GPU kernels")
