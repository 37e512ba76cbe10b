package bench

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/zwrite/zwrite/internal/codec"
	"github.com/zwrite/zwrite/internal/zarr"
)

// moments are the mean, variance and skewness of a sample.
type moments struct{ n, mean, vari, skew float64 }

func momentsOf(xs []float64) moments {
	var m moments
	m.n = float64(len(xs))
	for _, x := range xs {
		m.mean += x
	}
	m.mean /= m.n
	var m2, m3 float64
	for _, x := range xs {
		d := x - m.mean
		m2 += d * d
		m3 += d * d * d
	}
	m.vari = m2 / m.n
	m.skew = m3 / m.n / math.Pow(m.vari, 1.5)
	return m
}

// TestCameraSample: the noise generator is Poisson-like for every λ a
// camera sees: mean and variance both λ, skewness about 1/√λ (Poisson's).
func TestCameraSample(t *testing.T) {
	for _, lam := range []int64{2, 5, 20, 100, 1000, 3995} {
		t.Run(itoa(int(lam)), func(t *testing.T) {
			xs := make([]float64, 1<<19)
			for i := range xs {
				xs[i] = float64(camSample(lam, uint32(mix(uint64(i)^0xabcdef))))
			}
			m := momentsOf(xs)
			l := float64(lam)
			if math.Abs(m.mean-l) > 0.005*l+0.05 {
				t.Errorf("mean %.3f, want %d", m.mean, lam)
			}
			// The variance carries the rounding (1/12) and the skew term's
			// own spread (~0.05) on top of λ.
			if math.Abs(m.vari-l) > 0.03*l+0.2 {
				t.Errorf("variance %.3f, want %d (Poisson: variance = mean)", m.vari, lam)
			}
			if want := 1 / math.Sqrt(l); math.Abs(m.skew-want) > 0.3*want+0.01 {
				t.Errorf("skewness %.4f, want %.4f (Poisson: 1/sqrt(mean))", m.skew, want)
			}
		})
	}
}

// TestCameraPhotonTransfer measures the fill the way camera makers measure
// a sensor (the photon transfer curve): pixels binned by the scene's
// expected photons λ, the mean of each bin minus the dark offset is λ and
// its variance is λ too, for every dtype's scaling.
func TestCameraPhotonTransfer(t *testing.T) {
	for _, dt := range []zarr.DType{zarr.Uint16, zarr.Uint8, zarr.Int8, zarr.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			spec := &zarr.Spec{Shape: []int64{0, 2, 160, 192}, DType: dt}
			const frames = 6
			buf := make([]byte, frames*spec.FrameBytes())
			if err := FillFrames(FillCamera, spec, 0, buf); err != nil {
				t.Fatal(err)
			}
			lams := cameraLambdas(spec, frames)
			s := sceneFor(spec)
			off := float64(int64(camOffset) >> s.shift)
			type bin struct{ lam, dev []float64 }
			bins := map[int]*bin{}
			es := dt.Size()
			for i := 0; i < len(buf)/es; i++ {
				lam := lams[i] >> s.shift
				var v float64
				switch dt {
				case zarr.Uint16:
					v = float64(binary.LittleEndian.Uint16(buf[2*i:]))
				case zarr.Uint8:
					v = float64(buf[i])
				case zarr.Int8:
					v = float64(int8(buf[i]))
				case zarr.Float32:
					v = float64(math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:])))
					if v != math.Trunc(v) {
						t.Fatalf("element %d = %v: a photon count must be whole", i, v)
					}
				}
				if v < 0 || v > float64(s.maxv) {
					t.Fatalf("element %d = %v outside 0..%d", i, v, s.maxv)
				}
				if lam+int64(off)+4*int64(math.Sqrt(float64(lam)))+4 > s.maxv {
					continue // near saturation the clamp cuts the noise
				}
				k := int(math.Log2(float64(lam) + 1)) // bins of one octave
				b := bins[k]
				if b == nil {
					b = &bin{}
					bins[k] = b
				}
				b.lam = append(b.lam, float64(lam))
				b.dev = append(b.dev, v-off-float64(lam))
			}
			checked := 0
			for k, b := range bins {
				if len(b.dev) < 3000 {
					continue
				}
				lam, dev := momentsOf(b.lam), momentsOf(b.dev)
				if math.Abs(dev.mean) > 0.01*lam.mean+0.05 {
					t.Errorf("octave %d (mean λ %.1f, %d pixels): mean - offset - λ = %.3f", k, lam.mean, len(b.dev), dev.mean)
				}
				if r := dev.vari / lam.mean; r < 0.9 || r > 1.12 {
					t.Errorf("octave %d (mean λ %.1f, %d pixels): variance %.2f, ratio %.3f; want variance = mean", k, lam.mean, len(b.dev), dev.vari, r)
				}
				checked++
			}
			if checked < 3 {
				t.Fatalf("only %d brightness octaves with enough pixels: the scene has too little contrast", checked)
			}
		})
	}
}

// cameraLambdas is the scene's expected photons (12-bit scale) of every
// element of frames 0..n-1, from the fill's own scene code, which
// TestFillMatchesDefinition checks against the slow definition. spec must
// have no trailing channel axes.
func cameraLambdas(spec *zarr.Spec, n int64) []int64 {
	c := newCamState(spec)
	defer c.release()
	s := c.s
	out := make([]int64, 0, n*s.frameElems)
	row := make([]uint64, s.runLen)
	for t := int64(0); t < n; t++ {
		for r := int64(0); r < s.runs; r++ {
			c.startRun(t, r)
			c.accumulate(row, int(c.kout%int64(s.nv)), 0)
			for _, v := range row {
				out = append(out, min(int64((v+1<<14)>>15), camLamMax))
			}
		}
	}
	return out
}

// TestCameraDrift: consecutive frames differ (noise, and the blobs move by
// at most a quarter pixel), the scene changes little between them, and
// much more over a few hundred frames.
func TestCameraDrift(t *testing.T) {
	spec := &zarr.Spec{Shape: []int64{0, 128, 160}, DType: zarr.Uint16}
	lamAt := func(f int64) []int64 {
		out := make([]int64, 0, 128*160)
		for y := int64(0); y < 128; y++ {
			for x := int64(0); x < 160; x++ {
				l, _ := refCameraLambda(spec, []int64{f, y, x})
				out = append(out, l)
			}
		}
		return out
	}
	diff := func(a, b []int64) (sum, most int64) {
		for i := range a {
			d := max(a[i]-b[i], b[i]-a[i])
			sum += d
			most = max(most, d)
		}
		return sum, most
	}
	l0, l1, l300 := lamAt(0), lamAt(1), lamAt(300)
	var peak int64
	for _, l := range l0 {
		peak = max(peak, l)
	}
	s1, m1 := diff(l0, l1)
	s300, _ := diff(l0, l300)
	if s1 == 0 {
		t.Fatal("the scene does not change from frame 0 to frame 1")
	}
	if m1 > peak/8 {
		t.Errorf("the scene jumps by %d photons in one frame (peak %d): not a slow drift", m1, peak)
	}
	if s300 < 20*s1 {
		t.Errorf("300 frames change the scene by %d, one frame by %d: the blobs hardly drift", s300, s1)
	}
	two := make([]byte, 2*spec.FrameBytes())
	if err := FillFrames(FillCamera, spec, 0, two); err != nil {
		t.Fatal(err)
	}
	fb := int(spec.FrameBytes())
	if string(two[:fb]) == string(two[fb:]) {
		t.Fatal("frames 0 and 1 are identical")
	}
}

// TestCameraRatio: on the reference scenarios the fill compresses about as
// a sensor's frames do with zstd level 1 (about 2x), not like the highly
// structured fills (thirds: 3x and more).
func TestCameraRatio(t *testing.T) {
	for _, name := range []string{"orca2", "medfmt"} {
		t.Run(name, func(t *testing.T) {
			sc, err := LookupScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := sc.Spec(zarr.Uint16, zarr.CodecZstd, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := codec.NewChunkEncoder(&spec)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			f := newFiller(FillCamera, &spec)
			defer f.release()
			chunk := make([]byte, spec.ChunkBytes())
			out := make([]byte, 0, enc.Bound(len(chunk)))
			per := spec.ChunksPerEpoch()
			const n = 24
			var in, got int64
			for i := int64(0); i < n; i++ {
				fillChunk(f, FillCamera, &spec, 0, i*per/n, chunk)
				o, err := enc.Encode(out[:0], chunk)
				if err != nil {
					t.Fatal(err)
				}
				in += int64(len(chunk))
				got += int64(len(o))
			}
			if r := float64(in) / float64(got); r < 1.5 || r > 2.7 {
				t.Errorf("zstd-1 ratio %.3f; a camera's frames give about 2", r)
			} else {
				t.Logf("zstd-1 ratio %.3f over %d chunks", r, n)
			}
		})
	}
}
