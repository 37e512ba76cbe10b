package codectest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// Camera returns frames × h × w uint16 pixels (little endian, C order) that
// look like a scientific camera's: a static scene of 40 Gaussian blobs
// (sigma 4..30 px, peaks 30..2500 photons; about a quarter of
// the frame lit) on a 20-photon background, seen
// with photon shot noise (Poisson per pixel and frame), 1.5 DN of read
// noise and a dark offset of 100, clipped to 12 bits. Shot noise makes the
// low bits of bright pixels incompressible, which is what separates codecs
// on real sensor data; the same seed always gives the same bytes.
//
// A test-only stand-in until internal/bench has a camera fill.
func Camera(frames, h, w int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0xca3e7a))
	type blob struct{ y, x, s2, a float64 }
	blobs := make([]blob, 40)
	for i := range blobs {
		s := 4 + 26*r.Float64()
		blobs[i] = blob{y: r.Float64() * float64(h), x: r.Float64() * float64(w), s2: 2 * s * s, a: 30 + 2470*r.Float64()}
	}
	scene := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 20.0
			for _, b := range blobs {
				dy, dx := float64(y)-b.y, float64(x)-b.x
				v += b.a * math.Exp(-(dy*dy+dx*dx)/b.s2)
			}
			scene[y*w+x] = v
		}
	}
	out := make([]byte, 2*frames*h*w)
	for f := 0; f < frames; f++ {
		px := out[2*f*h*w:]
		for i, lambda := range scene {
			v := 100 + poisson(r, lambda) + math.Round(1.5*r.NormFloat64())
			v = min(max(v, 0), 4095)
			binary.LittleEndian.PutUint16(px[2*i:], uint16(v))
		}
	}
	return out
}

// poisson draws from a Poisson distribution of mean lambda: Knuth's product
// of uniforms below 30, the normal approximation (good to well under 1 DN
// there) above.
func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda >= 30 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-lambda), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Chunks cuts a C-order array of the given shape (elements of es bytes)
// into its chunks of shape chunk, in C order of the chunk grid, each a full
// chunk padded with zeros at the edges as the writer stores them.
func Chunks(arr []byte, shape, chunk []int, es int) [][]byte {
	n := len(shape)
	grid := make([]int, n)
	total := 1
	for d := range shape {
		grid[d] = (shape[d] + chunk[d] - 1) / chunk[d]
		total *= grid[d]
	}
	cbytes := es
	for _, c := range chunk {
		cbytes *= c
	}
	out := make([][]byte, 0, total)
	g := make([]int, n) // chunk grid coordinate
	for k := 0; k < total; k++ {
		c := make([]byte, cbytes)
		// Walk the chunk's rows (all dims but the last).
		in := make([]int, n)
		rowLen := chunk[n-1]
		for {
			src, ok := 0, true
			for d := 0; d < n; d++ {
				p := g[d]*chunk[d] + in[d]
				if p >= shape[d] {
					ok = false
					break
				}
				src = src*shape[d] + p
			}
			if ok {
				dst := 0
				for d := 0; d < n; d++ {
					dst = dst*chunk[d] + in[d]
				}
				cnt := min(rowLen, shape[n-1]-g[n-1]*chunk[n-1])
				copy(c[dst*es:(dst+cnt)*es], arr[src*es:(src+cnt)*es])
			}
			d := n - 2
			for ; d >= 0; d-- {
				in[d]++
				if in[d] < chunk[d] {
					break
				}
				in[d] = 0
			}
			if d < 0 {
				break
			}
		}
		out = append(out, c)
		for d := n - 1; d >= 0; d-- {
			g[d]++
			if g[d] < grid[d] {
				break
			}
			g[d] = 0
		}
	}
	return out
}
