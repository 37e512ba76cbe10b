package blosc

import (
	"bytes"
	"fmt"
	"testing"
)

// preShuffle lays src out as EncodeShuffled wants it, byte by byte through
// ShuffledOffset (the mapping the CPU stage's scatter follows).
func preShuffle(src []byte, bs, ts int) []byte {
	out := make([]byte, len(src))
	for x := range src {
		out[ShuffledOffset(x, len(src), bs, ts)] = src[x]
	}
	return out
}

// TestEncodeShuffled: for every compressor, typesize and clevel that
// PreShuffled accepts, on sizes with short last blocks and blocks with
// trailing bytes, compressible and not (the memcpyed fallback unshuffles),
// EncodeShuffled of the pre-shuffled input writes Encode's bytes. And
// ShuffledOffset is the layout shuffle makes of each block.
func TestEncodeShuffled(t *testing.T) {
	var enc, ref Encoder
	memcpyed := 0
	for _, c := range Compressors {
		for _, ts := range []int{2, 3, 4, 8} {
			for _, level := range []int{1, 5, 9} {
				for _, n := range []int{128, 1000, 65536, 100003 &^ 1, 3<<17 + 6} {
					for _, kind := range []string{"ramp", "noise", "zeros", "mixed"} {
						o := Options{TypeSize: ts, CLevel: level, Compressor: c}
						bs, ok := PreShuffled(o, n)
						if !ok {
							t.Fatalf("%+v on %d bytes: not pre-shuffled", o, n)
						}
						src := fill(kind, n, uint64(n+ts))
						pre := preShuffle(src, bs, ts)
						for off := 0; off < n; off += bs {
							end := min(off+bs, n)
							want := make([]byte, end-off)
							shuffle(want, src[off:end], ts)
							if !bytes.Equal(pre[off:end], want) {
								t.Fatalf("%+v: block at %d: ShuffledOffset is not shuffle's layout", o, off)
							}
						}
						got := enc.EncodeShuffled(nil, pre, o)
						want := ref.Encode(nil, src, o)
						if !bytes.Equal(got, want) {
							t.Fatalf("%v ts %d level %d %s %d bytes: EncodeShuffled differs from Encode", c, ts, level, kind, n)
						}
						if h, err := ParseHeader(got); err == nil && h.Memcpyed() {
							memcpyed++
						}
					}
				}
			}
		}
	}
	if memcpyed == 0 {
		t.Fatal("no case took the memcpyed fallback")
	}
}

// TestPreShuffledRefuses: what Encode does not shuffle ahead (no byte
// shuffle, typesize 1, clevel 0, short buffers) is refused, and
// EncodeShuffled panics on it rather than write wrong bytes.
func TestPreShuffledRefuses(t *testing.T) {
	for _, tc := range []struct {
		o Options
		n int
	}{
		{Options{TypeSize: 2, CLevel: 1, Shuffle: NoShuffle}, 4096},
		{Options{TypeSize: 2, CLevel: 1, Shuffle: BitShuffle}, 4096},
		{Options{TypeSize: 1, CLevel: 1}, 4096},
		{Options{TypeSize: 2, CLevel: 0}, 4096},
		{Options{TypeSize: 2, CLevel: 10}, 4096},
		{Options{TypeSize: 2, CLevel: 1}, 127},
	} {
		t.Run(fmt.Sprintf("%+v/%d", tc.o, tc.n), func(t *testing.T) {
			if _, ok := PreShuffled(tc.o, tc.n); ok {
				t.Fatal("accepted")
			}
			defer func() {
				if recover() == nil {
					t.Fatal("EncodeShuffled did not panic")
				}
			}()
			var e Encoder
			e.EncodeShuffled(nil, make([]byte, tc.n), tc.o)
		})
	}
}
