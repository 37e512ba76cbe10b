package bench

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/zwrite/zwrite/internal/zarr"
)

// The camera fill: photon (shot) noise on a smooth scene, offset by a dark
// level, the way a scientific camera's frames compress. Everything below is
// integer arithmetic (no libm, no float rounding that a compiler may fuse),
// so the bytes are the same on every machine and architecture.
//
// Geometry. A frame's axes (dims 1..) of at most camChannelMax elements are
// channels (cameras, colours); the others are space. Each channel index k
// (C order over the channel axes) shows scene k % camVariants, so up to
// camVariants channels differ. A scene is a background level plus
// camBlobs ellipsoidal blobs: blob b has per spatial axis a centre, a
// radius (between 1/40 and 1/10 of the axis) and a drift velocity of at
// most a quarter pixel per frame (dim 0), and a peak brightness. Positions
// are in 1/16 pixel; each spatial axis wraps with a period of the next
// power of two >= its size, so a blob drifting off one edge comes back at
// the other after a while, and the scene changes slowly from frame to
// frame. A frame with no spatial axis (rank 1, or only channels) is one
// blob covering everything: a constant level per channel.
//
// Brightness. With r² = Σ (d/R)² over the spatial axes, a blob adds
// amp·(1-r²)² inside r < 1 (the biweight bump, smooth at its edge): in
// fixed point u = 2³⁰ - Σ ((d·d·inv) >> 26) with inv = 2⁵⁶/R², then
// q = u >> 15 and the blob's share is amp·((q·q) >> 15) in 1/2¹⁵ photons.
// λ, the photons a pixel expects, is the background plus the shares,
// rounded, at most 4095 - camOffset.
//
// Noise. The pixel holds camOffset + a sample of Poisson(λ), from a
// counter-based hash of its global element index (one splitmix64 hash per
// two elements, as the thirds noise): S, the sum of four random bytes, is
// close to normal (mean 510, variance 21845); with d = S - 510 the sample
// is λ + round(√λ·z + (z²-1)/6) for z = d/√21845, the Cornish-Fisher
// expansion of the Poisson quantile, so mean ≈ variance ≈ λ and the skew
// is about the Poisson one (1/√λ). In fixed point:
// λ + ((sq[λ]·d + ((d·d - 21845) >> 1) + 2¹⁵) >> 16), sq[λ] =
// ⌊√(λ·2³²/21845)⌋, clamped to the dtype's range.
//
// Dtypes. 16-bit and wider integers hold the 12-bit counts (0..4095);
// float32 and float64 hold the same counts as float values. uint8 is an
// 8-bit camera: λ, the offset and the range are scaled by 1/16 (0..255) and
// the noise is Poisson on the scaled λ, so mean ≈ variance still holds;
// int8 likewise by 1/32 (0..127, never negative).
const (
	camOffset      = 100 // dark offset in 12-bit counts
	camBlobs       = 32  // blobs per scene
	camVariants    = 8   // distinct scenes
	camChannelMax  = 4   // a frame axis this small is channels, not space
	camPos         = 16  // positions per pixel (4 fractional bits)
	camRadiusMax   = 1 << 20
	camU           = 1 << 30 // u of a blob's centre
	camLamMax      = 4095 - camOffset
	camNoiseVar    = 21845 // variance of a sum of four uniform bytes
	camNoiseMean   = 510
	camBgMin       = 20
	camBgSpan      = 20
	camAmpMin      = 100
	camAmpSpan     = 1000
	camDriftMax    = 4 // positions per frame (a quarter pixel)
	camSqrtEntries = 4096
)

// Seeds of the camera fill's hashes (scene layout, noise); fixed like the
// other fills' seeds, since changing them changes every camera benchmark.
const (
	seedCamScene uint64 = 0x5eed_0003_ca3e_2a00
	seedCamNoise uint64 = 0x5eed_0004_0b5e_7700
)

// camSqrt is sq[λ] = ⌊√(λ·2³²/21845)⌋, the noise's standard deviation per
// unit of d in 1/2¹⁶, for every λ a 12-bit camera can expect.
// (An array, not a pointer, so the hot loop indexes it directly.)
var camSqrt [camSqrtEntries]int32

func init() {
	for l := range camSqrt {
		camSqrt[l] = int32(isqrt(uint64(l) << 32 / camNoiseVar))
	}
}

// isqrt is ⌊√n⌋, exact: a float estimate corrected in integers.
func isqrt(n uint64) uint64 {
	r := uint64(math.Sqrt(float64(n)))
	for r > 0 && r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// camSample is the noisy count for mean lam (0..4095) from 32 random bits.
func camSample(lam int64, b uint32) int64 {
	p := b&0x00ff00ff + b>>8&0x00ff00ff // two sums of two bytes
	d := int64(p&0xffff+p>>16) - camNoiseMean
	return lam + (int64(camSqrt[lam&(camSqrtEntries-1)])*d+(d*d-camNoiseVar)>>1+1<<15)>>16
}

// camBlobAxis is one blob along one spatial axis (positions in 1/16 px).
type camBlobAxis struct {
	c0, vel int64 // centre at frame 0, drift per frame
	r, inv  int64 // radius, 2^56/r²
}

type camBlob struct {
	amp int64 // peak photons
	ax  []camBlobAxis
}

// camScene is the part of the camera fill fixed by the frame's shape and
// dtype. It is immutable once built and shared by every worker.
type camScene struct {
	key        string
	dims       []int64 // the frame's axes (dims 1..); rank 1: none
	frameElems int64
	spatial    []int   // indexes into dims of the spatial axes, in order
	mask       []int64 // per spatial axis: period-1 in positions
	runAxis    int     // the last spatial axis (index into dims), -1: none
	cn         int64   // elements per position along the run axis (trailing channels)
	runLen     int64   // elements of one run: the run axis times cn
	runs       int64   // runs per frame
	nv         int     // scenes in use
	bg         []int64 // background photons per scene
	blobs      [][]camBlob
	shift      uint  // 0; 4 for uint8, 5 for int8
	maxv       int64 // largest value of the dtype's range
}

// lastScene caches the most recent scene: every worker of a fill, and
// every write of a stream, asks for the same one.
var lastScene atomic.Pointer[camScene]

func sceneFor(spec *zarr.Spec) *camScene {
	var dims []int64
	if spec.Rank() > 1 {
		dims = spec.Shape[1:]
	}
	key := spec.DType.String() + ":" + fmtShape(dims)
	if s := lastScene.Load(); s != nil && s.key == key {
		return s
	}
	s := newScene(key, dims, spec.DType)
	lastScene.Store(s)
	return s
}

func newScene(key string, dims []int64, dt zarr.DType) *camScene {
	s := &camScene{key: key, dims: slices.Clone(dims), frameElems: 1, runAxis: -1, maxv: 4095}
	switch dt {
	case zarr.Uint8:
		s.shift, s.maxv = 4, 255
	case zarr.Int8:
		s.shift, s.maxv = 5, 127
	}
	channels := int64(1)
	for i, n := range dims {
		s.frameElems *= n
		if n > camChannelMax {
			s.spatial = append(s.spatial, i)
			s.runAxis = i
		} else {
			channels *= n
		}
	}
	s.cn = 1
	for _, n := range dims[s.runAxis+1:] {
		s.cn *= n
	}
	s.runLen = s.cn
	if s.runAxis >= 0 {
		s.runLen *= dims[s.runAxis]
	}
	s.runs = s.frameElems / s.runLen
	for _, i := range s.spatial {
		s.mask = append(s.mask, int64(1)<<bits.Len64(uint64(dims[i]-1))*camPos-1)
	}
	s.nv = int(min(channels, camVariants))
	nb := camBlobs
	if len(s.spatial) == 0 {
		nb = 1 // one blob covering the frame
	}
	s.bg = make([]int64, s.nv)
	s.blobs = make([][]camBlob, s.nv)
	for v := range s.nv {
		base := seedCamScene ^ uint64(v)<<40
		s.bg[v] = camBgMin + int64(mix(base^0xfffff)%camBgSpan)
		s.blobs[v] = make([]camBlob, nb)
		for b := range nb {
			hb := base ^ uint64(b)<<20
			bl := camBlob{amp: camAmpMin + int64(mix(hb)%camAmpSpan), ax: make([]camBlobAxis, len(s.spatial))}
			for a, i := range s.spatial {
				h := mix(hb ^ uint64(a+1))
				n := dims[i] * camPos
				rmin := max(n/40, 12)
				rmax := max(n/10, rmin+1)
				r := min(rmin+int64(h>>32&0xffff)*(rmax-rmin)>>16, camRadiusMax)
				bl.ax[a] = camBlobAxis{
					c0:  int64(h&0xffffffff) % n,
					vel: (int64(h>>48&0xff) - 128) * camDriftMax / 128,
					r:   r,
					inv: (1 << 56) / (r * r),
				}
			}
			s.blobs[v][b] = bl
		}
	}
	return s
}

// camActive is a blob that reaches the current run: what is left of its
// u after the outer spatial axes, and its centre along the run axis at
// the run's frame.
type camActive struct {
	uo, cx, r, inv, amp int64
}

// camState is one worker's position in the camera fill.
type camState struct {
	s      *camScene
	t, run int64 // the run the active lists are for; t = -1: none
	kout   int64 // channel index of the run's outer channel axes
	active [camVariants][]camActive
	coord  []int64 // frame coordinates of the run's outer axes
	// rows holds each scene's photons along the run axis when the run
	// interleaves trailing channels (cn > 1); from camRowsPool.
	rows *[camVariants][rowSeg + 2]uint64
}

// camRowsPool recycles the per-scene rows of runs with trailing channels.
var camRowsPool = sync.Pool{New: func() any { return new([camVariants][rowSeg + 2]uint64) }}

func newCamState(spec *zarr.Spec) *camState {
	s := sceneFor(spec)
	c := &camState{s: s, t: -1, coord: make([]int64, len(s.dims))}
	for v := range c.active {
		c.active[v] = make([]camActive, 0, camBlobs)
	}
	return c
}

func (c *camState) release() {
	if c.rows != nil {
		camRowsPool.Put(c.rows)
		c.rows = nil
	}
}

// wrapDist is the signed distance from centre to position p on an axis of
// period mask+1.
func wrapDist(p, centre, mask int64) int64 {
	d := (p - centre) & mask
	if d > mask>>1 {
		d -= mask + 1
	}
	return d
}

// startRun prepares the active blob lists of run r of frame t.
func (c *camState) startRun(t, r int64) {
	if t == c.t && r == c.run {
		return
	}
	s := c.s
	c.t, c.run = t, r
	// Coordinates of the outer axes (before the run axis) and the outer
	// channel index.
	rem := r
	for i := s.runAxis - 1; i >= 0; i-- {
		c.coord[i] = rem % s.dims[i]
		rem /= s.dims[i]
	}
	c.kout = 0
	for i := 0; i < s.runAxis; i++ {
		if s.dims[i] <= camChannelMax {
			c.kout = c.kout*s.dims[i] + c.coord[i]
		}
	}
	nsp := len(s.spatial)
	for v := range s.nv {
		c.active[v] = c.active[v][:0]
		if s.cn == 1 && v != int(c.kout%int64(s.nv)) {
			continue // only the run's own scene is needed
		}
		for b := range s.blobs[v] {
			bl := &s.blobs[v][b]
			u := int64(camU)
			for a := 0; a < nsp-1; a++ {
				ax := &bl.ax[a]
				m := s.mask[a]
				d := wrapDist(c.coord[s.spatial[a]]*camPos+camPos/2, (ax.c0+ax.vel*t)&m, m)
				if d <= -ax.r || d >= ax.r {
					u = 0
					break
				}
				u -= d * d * ax.inv >> 26
			}
			if u <= 0 {
				continue
			}
			act := camActive{uo: u, amp: bl.amp}
			if nsp > 0 {
				ax := &bl.ax[nsp-1]
				act.cx, act.r, act.inv = (ax.c0+ax.vel*t)&s.mask[nsp-1], ax.r, ax.inv
			}
			c.active[v] = append(c.active[v], act)
		}
	}
}

// accumulate writes into row[x-x0] (x in [x0, x0+len(row))) the photons
// of scene v along the run axis, in 1/2^15 photons, background included.
func (c *camState) accumulate(row []uint64, v int, x0 int64) {
	s := c.s
	// The background by doubling copies (memmove): a plain store loop
	// was a third of this function's time.
	if len(row) > 0 {
		row[0] = uint64(s.bg[v]) << 15
		for n := 1; n < len(row); n *= 2 {
			copy(row[n:], row[:n])
		}
	}
	x1 := x0 + int64(len(row)) - 1 // inclusive
	if s.runAxis < 0 {
		for _, a := range c.active[v] {
			for i := range row {
				row[i] += uint64(a.amp) << 15
			}
		}
		return
	}
	period := s.mask[len(s.mask)-1] + 1
	for _, a := range c.active[v] {
		for _, shift := range [3]int64{-period, 0, period} {
			cx := a.cx + shift
			lo := floorDiv(cx-a.r-camPos/2, camPos) + 1
			hi := ceilDiv(cx+a.r-camPos/2, camPos) - 1
			lo, hi = max(lo, x0), min(hi, x1)
			if lo > hi {
				continue
			}
			out := row[lo-x0 : hi-x0+1]
			d := lo*camPos + camPos/2 - cx
			for i := range out {
				if u := a.uo - d*d*a.inv>>26; u > 0 {
					q := u >> 15
					out[i] += uint64(a.amp * (q * q >> 15))
				}
				d += camPos
			}
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// gen fills v with the expected photons (in 1/2^15) of elements j.. of
// the current run.
func (c *camState) gen(v []uint64, j int64) {
	s := c.s
	n := int64(len(v))
	if s.cn == 1 {
		c.accumulate(v, int(c.kout%int64(s.nv)), j)
	} else {
		if c.rows == nil {
			c.rows = camRowsPool.Get().(*[camVariants][rowSeg + 2]uint64)
		}
		x0, x1 := j/s.cn, (j+n-1)/s.cn
		for sc := range s.nv {
			c.accumulate(c.rows[sc][:x1-x0+1], sc, x0)
		}
		x, k := x0, j%s.cn
		kbase := c.kout * s.cn
		for i := range v {
			v[i] = c.rows[(kbase+k)%int64(s.nv)][x-x0]
			if k++; k == s.cn {
				k = 0
				x++
			}
		}
	}
}

// camCounts turns expected photons (in 1/2^15, 12-bit scale) and 32
// random bits into the stored count of one element, for one dtype scaling.
type camCounts struct {
	off, maxv int64
	shift     uint
}

func (k camCounts) count(x uint64, b uint32) uint64 {
	lam := min(int64((x+1<<14)>>15), camLamMax) >> k.shift
	return uint64(min(max(k.off+camSample(lam, b), 0), k.maxv))
}

func (c *camState) counts() camCounts {
	return camCounts{off: int64(camOffset) >> c.s.shift, maxv: c.s.maxv, shift: c.s.shift & 7}
}

// noise turns v (expected photons in 1/2^15) into noisy counts in place.
// One hash serves two elements (the even one takes its low half), so the
// loop runs over pairs of global indexes.
func (c *camState) noise(v []uint64, idx uint64) {
	k := c.counts()
	i := 0
	if idx&1 == 1 && len(v) > 0 {
		v[0] = k.count(v[0], uint32(mix((idx>>1)^seedCamNoise)>>32))
		i = 1
	}
	for ; i+1 < len(v); i += 2 {
		h := mix(((idx + uint64(i)) >> 1) ^ seedCamNoise)
		v[i] = k.count(v[i], uint32(h))
		v[i+1] = k.count(v[i+1], uint32(h>>32))
	}
	if i < len(v) {
		v[i] = k.count(v[i], uint32(mix(((idx+uint64(i))>>1)^seedCamNoise)))
	}
}

// noise16 is noise for 2-byte dtypes, storing the counts straight into
// dst (little endian) instead of back into v: the store is a fifth of
// the fill's time otherwise. The same pairs and counts as noise.
func (c *camState) noise16(dst []byte, v []uint64, idx uint64) {
	k := c.counts()
	dst = dst[:2*len(v)]
	i := 0
	if idx&1 == 1 && len(v) > 0 {
		binary.LittleEndian.PutUint16(dst, uint16(k.count(v[0], uint32(mix((idx>>1)^seedCamNoise)>>32))))
		i = 1
	}
	for ; i+1 < len(v); i += 2 {
		h := mix(((idx + uint64(i)) >> 1) ^ seedCamNoise)
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(k.count(v[i], uint32(h))))
		binary.LittleEndian.PutUint16(dst[2*i+2:], uint16(k.count(v[i+1], uint32(h>>32))))
	}
	if i < len(v) {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(k.count(v[i], uint32(mix(((idx+uint64(i))>>1)^seedCamNoise)))))
	}
}

// fillCamera writes the camera values of the elements from global index
// first into dst.
func (f *filler) fillCamera(first int64, dst []byte) {
	c := f.cam
	s := c.s
	es := int64(f.dt.Size())
	t, e := first/s.frameElems, first%s.frameElems
	r, j := e/s.runLen, e%s.runLen
	idx := uint64(first)
	for len(dst) > 0 {
		c.startRun(t, r)
		for j < s.runLen && len(dst) > 0 {
			n := min(s.runLen-j, rowSeg, int64(len(dst))/es)
			v := f.vals[:n]
			c.gen(v, j)
			if es == 2 {
				c.noise16(dst, v, idx)
			} else {
				c.noise(v, idx)
				f.put(dst, v)
			}
			dst = dst[n*es:]
			j += n
			idx += uint64(n)
		}
		j = 0
		if r++; r == s.runs {
			r = 0
			t++
		}
	}
}
