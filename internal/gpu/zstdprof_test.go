package gpu

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

// timedQueue is a Queue that brackets every kernel launch with events, so
// a profile can say which kernel of a codec the time goes to (the GPU
// machine has no hardware counters to spare for that in a normal run).
type timedQueue struct {
	*Stream
	d     *Device
	spans []timedSpan
}

type timedSpan struct {
	name     string
	ev0, ev1 *Event
}

func (q *timedQueue) Launch(f *Function, grid, block Dim3, shmem int, args ...any) error {
	ev0, err := q.d.NewEvent()
	if err != nil {
		return err
	}
	ev1, err := q.d.NewEvent()
	if err != nil {
		return err
	}
	ev0.Record(q.Stream)
	if err := q.Stream.Launch(f, grid, block, shmem, args...); err != nil {
		return err
	}
	ev1.Record(q.Stream)
	q.spans = append(q.spans, timedSpan{f.Name, ev0, ev1})
	return nil
}

// totals sums the milliseconds per kernel name and frees the events.
func (q *timedQueue) totals(t *testing.T) map[string]float64 {
	if err := q.Stream.Synchronize(); err != nil {
		t.Fatal(err)
	}
	ms := map[string]float64{}
	for _, s := range q.spans {
		v, err := Elapsed(s.ev0, s.ev1)
		if err != nil {
			t.Fatal(err)
		}
		ms[s.name] += float64(v)
		s.ev0.Destroy()
		s.ev1.Destroy()
	}
	q.spans = nil
	return ms
}

// TestZstdGPUProfile is for tuning on the GPU machine: with
// ZWRITE_ZSTD_PROF=1 it times each kernel of the zstd and blosc-zstd
// codecs on camera-like data (orca2's 256 KiB chunks unless
// ZWRITE_ZSTD_PROF_CHUNK says otherwise), prints the ratio, the occupancy of zstd_blocks and, for a
// module built with -DZS_PROF, the cycles per phase of zstd_blocks.
// ZWRITE_ZSTD_PROF_FILLS picks other fills (camera,thirds,rand) and
// ZWRITE_ZSTD_PROF_CODECS the codecs whose names it contains.
func TestZstdGPUProfile(t *testing.T) {
	if os.Getenv("ZWRITE_ZSTD_PROF") == "" {
		t.Skip("ZWRITE_ZSTD_PROF not set")
	}
	fills := []string{"camera"}
	if f := os.Getenv("ZWRITE_ZSTD_PROF_FILLS"); f != "" {
		fills = strings.Split(f, ",")
	}
	// The orca2 bench's chunks (32x1x64x64 uint16), 256 MiB a batch, 64
	// MiB of distinct bytes (more than the L2 holds) repeated.
	cb := int64(256 << 10)
	if v := os.Getenv("ZWRITE_ZSTD_PROF_CHUNK"); v != "" {
		fmt.Sscan(v, &cb)
	}
	n := int((256 << 20) / cb)
	distinct := max(1, int((64<<20)/cb))
	codecs := []struct {
		name string
		spec zarr.Spec
	}{
		{"zstd L1", zarr.Spec{Codec: zarr.CodecZstd, Level: 1}},
		{"zstd L3", zarr.Spec{Codec: zarr.CodecZstd, Level: 3}},
		{"blosc-zstd byte L1", bzstdSpec(zarr.Uint16, 1, zarr.ByteShuffle)},
		{"blosc-zstd bit L1", bzstdSpec(zarr.Uint16, 1, zarr.BitShuffle)},
		{"blosc-zstd byte L1 64K", bzstdSpec(zarr.Uint16, 1, zarr.ByteShuffle)},
	}
	if f := os.Getenv("ZWRITE_ZSTD_PROF_CODECS"); f != "" {
		keep := codecs[:0]
		for _, c := range codecs {
			if strings.Contains(f, c.name) {
				keep = append(keep, c)
			}
		}
		codecs = keep
	}
	for _, fill := range fills {
		one := bzstdFill(fill, 7, 2, cb, distinct)
		data := make([]byte, 0, cb*int64(n))
		for int64(len(data)) < cb*int64(n) {
			data = append(data, one...)
		}
		for _, c := range codecs {
			var m *Module
			r := newCodecRig(t, "zstd", func(mod *Module) (CodecKernels, error) {
				m = mod
				if c.spec.Codec == zarr.CodecZstd {
					return newZstd(mod, c.spec)
				}
				k, err := newBloscZstd(mod, c.spec)
				if err == nil && strings.HasSuffix(c.name, " 64K") {
					k.(*bloscZstdCodec).opts.BlockSize = 64 << 10 // the block size before c-blosc's
				}
				return k, err
			})
			b := r.alloc(t, cb, n)
			if err := r.st.CopyHtoD(b.in, data); err != nil {
				t.Fatal(err)
			}
			q := &timedQueue{Stream: r.st, d: r.d}
			var prof [32]uint64
			profOK := m.ReadGlobal("zsProf", make([]byte, 8*32)) == nil
			best := map[string]float64{}
			bestTotal := 0.0
			for rep := 0; rep < 4; rep++ {
				if profOK {
					p, _, _ := m.Global("zsProf")
					if err := r.st.Memset(p, 0, 8*32); err != nil {
						t.Fatal(err)
					}
				}
				if err := r.c.Encode(q, b.in, cb, n, b.out, b.stride, b.sizes, b.scratch); err != nil {
					t.Fatal(err)
				}
				ms := q.totals(t)
				total := 0.0
				for _, v := range ms {
					total += v
				}
				if rep == 0 || total < bestTotal {
					bestTotal, best = total, ms
				}
			}
			sizes := make([]byte, 4*n)
			if err := r.st.CopyDtoH(sizes, b.sizes); err != nil {
				t.Fatal(err)
			}
			if err := r.st.Synchronize(); err != nil {
				t.Fatal(err)
			}
			var out int64
			for i := 0; i < n; i++ {
				out += int64(binary.LittleEndian.Uint32(sizes[4*i:]))
			}
			gb := float64(cb*int64(n)) / 1e9
			var lines []string
			for k, v := range best {
				lines = append(lines, fmt.Sprintf("    %-16s %8.3f ms %7.1f GB/s %5.1f%%", k, v, gb/(v/1e3), 100*v/bestTotal))
			}
			sort.Strings(lines)
			// The codec's own kernels: the parse and shared memory it launches with.
			var k zstdKern
			switch cc := r.c.(type) {
			case *zstdCodec:
				k = cc.k
			case *bloscZstdCodec:
				k = cc.k
			}
			occ := ""
			if o, err := k.blocks.Occupancy(zstdThreads, k.smem); err == nil {
				occ = fmt.Sprintf(", zstd_blocks: %d CTAs/SM at %d B shared", o, k.smem)
			}
			t.Logf("%s %s: %.2f GB/s all kernels, ratio %.4f%s (%s)\n%s", fill, c.name, gb/(bestTotal/1e3), float64(cb*int64(n))/float64(out), occ, m.Loaded().Image, strings.Join(lines, "\n"))
			if profOK {
				raw := make([]byte, 8*32)
				if err := m.ReadGlobal("zsProf", raw); err != nil {
					t.Fatal(err)
				}
				var sum uint64
				for i := range prof {
					prof[i] = binary.LittleEndian.Uint64(raw[8*i:])
					sum += prof[i]
				}
				var ph []string
				for i, v := range prof {
					if v > 0 {
						ph = append(ph, fmt.Sprintf("%d:%.1f%%", i, 100*float64(v)/float64(sum)))
					}
				}
				t.Logf("    zstd_blocks phases (CTA cycles, last rep): %s", strings.Join(ph, " "))
			}
			b.free()
		}
	}
}
