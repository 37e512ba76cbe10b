package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Options tune Image. The zero value checks everything with the default
// block size and one worker per CPU.
type Options struct {
	// Raw, when set, is compared with level 0's bytes in C order.
	Raw io.Reader
	// Workers run downsample.Reference on the frames of a block in
	// parallel (it is exact and slow: about 8 MB of input per second per
	// core); 0 means GOMAXPROCS.
	Workers int
	// BlockBytes is the input a block of frames aims to hold (0: 32 MiB);
	// a block is at least one epoch of the level below, whatever this says.
	BlockBytes int64
}

// defaultBlockBytes keeps a block big enough that every worker has frames
// to reduce and small enough that an interrupt is seen within a second.
const defaultBlockBytes = 32 << 20

// maxBlockBytes refuses levels whose single block would not fit in memory
// (the reader's own bound on an epoch).
const maxBlockBytes = 1 << 34

// Level is what Image found out about one level.
type Level struct {
	// Path is the level's dataset path inside the image.
	Path string
	// Meta is the level's metadata; nil when it could not be opened.
	Meta *zarr.Meta
	// Missing is set for a level whose directory holds no zarr.json.
	Missing bool
	// Array is the level's report as an array (zarr.Array.VerifyContext);
	// ArrayOK says it found nothing wrong.
	Array   zarr.Report
	ArrayOK bool
}

// Warning is a finding that is no fault of the image: a writer stopped
// part way (the levels of an image commit independently, so one may lag
// another after a crash). Resumable says continuing the image completes
// it.
type Warning struct {
	Text      string
	Resumable bool
}

// Report is what Image found.
type Report struct {
	Levels []Level
	// Method is the downsampling method the levels were recomputed with;
	// "" when the image does not record zwrite's downsampling (another
	// writer's image: its levels are checked as arrays only).
	Method string
	// Compared[k] is how many frames of level k+1 were compared with
	// level k reduced again; -1 when the pair was not recomputed (a level
	// missing or faulty, or no method recorded).
	Compared []int64
	Warnings []Warning
	// Problems is everything wrong, at most maxProblems of them.
	Problems []string
}

const maxProblems = 50

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// RecomputedAll reports whether every pair of levels was recomputed.
func (r *Report) RecomputedAll() bool {
	for _, c := range r.Compared {
		if c < 0 {
			return false
		}
	}
	return r.Method != ""
}

// Image checks the image img whose group is the root of fsys: every level
// of its first multiscale as an array (with opts.Raw against level 0),
// every level's metadata against the axes and the level above, and, for
// an image that records zwrite's downsampling, every level against the
// level above reduced again by downsample.Reference (integers exactly,
// floats as firstMismatch says). The first differing frame of each level
// is reported, naming the level, the frame and the element.
//
// A level with fewer frames than the level above implies is a writer that
// stopped (a Warning) when it holds whole shard rows, which is what a
// stopped writer commits; otherwise it is a problem. Either way the frames
// it holds are compared. The same holds for a level with more frames than
// the level above implies (the level above lags), and only the frames
// whose whole block exists above are compared. Levels not created yet are
// a warning while every level that exists is empty (a writer creates them
// before the first frame), a problem otherwise.
//
// It checks ctx before every file, chunk and frame it reduces and returns
// the context's error once ctx is done. The error is non-nil when
// anything is wrong (the details are in Problems) or the image could not
// be read.
func Image(ctx context.Context, fsys fs.FS, img *zarr.Image, opts Options) (Report, error) {
	var r Report
	if len(img.Multiscales) == 0 {
		return r, errors.New("verify image: no multiscales")
	}
	ms := &img.Multiscales[0]
	if len(ms.Datasets) == 0 {
		return r, errors.New("verify image: the multiscale lists no levels")
	}
	if len(img.Multiscales) > 1 {
		r.Warnings = append(r.Warnings, Warning{Text: fmt.Sprintf("the image holds %d multiscales; only the first is checked level against level", len(img.Multiscales))})
	}
	n := len(ms.Datasets)
	arrays := make([]*zarr.Array, n)
	defer func() {
		for _, a := range arrays {
			if a != nil {
				a.Close()
			}
		}
	}()
	r.Levels = make([]Level, n)
	r.Compared = make([]int64, max(n-1, 0))
	for k := range r.Compared {
		r.Compared[k] = -1
	}
	rankOK := make([]bool, n)
	var missing []int
	for k, ds := range ms.Datasets {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("verify image: %w", context.Cause(ctx))
		}
		lv := &r.Levels[k]
		lv.Path = ds.Path
		name := levelName(k, ds.Path)
		if !fs.ValidPath(ds.Path) || ds.Path == "." {
			r.problem("%s: the path is not a directory inside the image", name)
			continue
		}
		a, err := zarr.OpenArray(fsys, ds.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			lv.Missing = true
			missing = append(missing, k)
			continue
		case err != nil:
			r.problem("%s: %v", name, err)
			continue
		}
		arrays[k], lv.Meta = a, a.Meta
		vo := zarr.VerifyOptions{}
		if k == 0 {
			vo.Raw = opts.Raw
		}
		rep, err := a.VerifyContext(ctx, vo)
		if ctx.Err() != nil {
			return r, fmt.Errorf("verify image: %w", context.Cause(ctx))
		}
		lv.Array, lv.ArrayOK = rep, err == nil
		for _, p := range rep.Problems {
			r.problem("%s: %s", name, p)
		}
		if err != nil && len(rep.Problems) == 0 {
			r.problem("%s: %v", name, err)
		}
		rankOK[k] = checkAxes(&r, ms, k, a.Meta)
	}
	if opts.Raw != nil && arrays[0] == nil {
		r.problem("the raw input was not compared: level 0 could not be read")
	}
	checkMissing(&r, ms, missing)

	dn := ms.Downsampling
	var method downsample.Method
	if dn != nil {
		m, err := downsample.ParseMethod(dn.Method)
		if err != nil {
			r.problem("the image's downsampling: %v", err)
			dn = nil
		}
		method = m
	}
	if dn != nil {
		r.Method = method.String()
		checkFactors(&r, ms, dn.Reduce)
	}
	for k := 1; k < n; k++ {
		a, b := arrays[k-1], arrays[k]
		if dn == nil || a == nil || b == nil || !rankOK[k-1] || !rankOK[k] {
			continue
		}
		cmp, ok := checkPair(&r, ms, k, a.Meta, b.Meta, dn.Reduce)
		if !ok || !r.Levels[k-1].ArrayOK || !r.Levels[k].ArrayOK {
			continue
		}
		if err := recompute(ctx, &r, ms, k, a, b, dn.Reduce, method, cmp, opts); err != nil {
			if ctx.Err() != nil {
				return r, fmt.Errorf("verify image: %w", context.Cause(ctx))
			}
			r.problem("%s: %v", levelName(k, ms.Datasets[k].Path), err)
			continue
		}
	}
	if len(r.Problems) > 0 {
		return r, fmt.Errorf("verify image: %d problem(s), first: %s", len(r.Problems), r.Problems[0])
	}
	return r, nil
}

// levelName names level k for messages: "level 2", with its path when
// that is not the level number (another writer's layout).
func levelName(k int, p string) string {
	if p == strconv.Itoa(k) {
		return fmt.Sprintf("level %d", k)
	}
	return fmt.Sprintf("level %d (path %q)", k, p)
}

// checkAxes checks level k's rank and dimension_names against the axes;
// false when the rank differs (nothing else about the level can be
// compared then).
func checkAxes(r *Report, ms *zarr.Multiscale, k int, m *zarr.Meta) bool {
	name := levelName(k, ms.Datasets[k].Path)
	names := make([]string, len(ms.Axes))
	for i, a := range ms.Axes {
		names[i] = a.Name
	}
	axes := strings.Join(names, ",")
	if len(m.Spec.Shape) != len(names) {
		r.problem("%s has %d dimensions; the image has %d axes (%s)", name, len(m.Spec.Shape), len(names), axes)
		return false
	}
	switch got := strings.Join(m.Spec.DimNames, ","); {
	case m.Spec.DimNames == nil:
		r.problem("%s has no dimension_names; OME-Zarr 0.5 requires them, equal to the axis names %s", name, axes)
	case !slices.Equal(m.Spec.DimNames, names):
		r.problem("%s: dimension_names %s differ from the image's axis names %s", name, got, axes)
	}
	return true
}

// checkMissing judges the levels without a zarr.json: a writer creates
// every level (the last first) before it commits a frame, so levels
// missing while every other level is empty are a writer that stopped
// while creating them; otherwise the image has lost a level.
func checkMissing(r *Report, ms *zarr.Multiscale, missing []int) {
	if len(missing) == 0 {
		return
	}
	empty := true
	for _, lv := range r.Levels {
		if lv.Meta != nil && lv.Meta.Spec.Shape[0] > 0 {
			empty = false
		}
	}
	var names []string
	for _, k := range missing {
		names = append(names, levelName(k, ms.Datasets[k].Path))
	}
	if empty {
		r.Warnings = append(r.Warnings, Warning{Resumable: true,
			Text: fmt.Sprintf("%s not created yet and the image holds no frames: a writer stopped while creating its levels", strings.Join(names, ", "))})
		return
	}
	for _, nm := range names {
		r.problem("%s is missing: its directory holds no zarr.json, while the image holds frames", nm)
	}
}

// checkFactors checks that level k's scale is 2^k times level 0's along
// the reduced axes and equal elsewhere, as zwrite writes it.
func checkFactors(r *Report, ms *zarr.Multiscale, reduce []bool) {
	for k := 1; k < len(ms.Datasets); k++ {
		f := ms.Factors(k)
		for d, x := range f {
			want := 1.0
			if reduce[d] {
				want = float64(uint64(1) << min(k, 62))
			}
			if x != want {
				r.problem("%s: the scale along %s is %v times level 0's; a level reduced %d times along it must be %v times",
					levelName(k, ms.Datasets[k].Path), ms.Axes[d].Name, x, boolInt(reduce[d])*k, want)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkPair checks level k's metadata against level k-1's: dtype, the
// shape the reduction implies (ceil(n/2) along reduced axes), and dim 0,
// which may lag after a crash. It returns how many of level k's frames to
// compare, and false when the pair cannot be recomputed.
func checkPair(r *Report, ms *zarr.Multiscale, k int, am, bm *zarr.Meta, reduce []bool) (int64, bool) {
	an, bn := levelName(k-1, ms.Datasets[k-1].Path), levelName(k, ms.Datasets[k].Path)
	as, bs := &am.Spec, &bm.Spec
	if as.DType != bs.DType {
		r.problem("%s holds %s, %s holds %s: a level has the dtype of the level above", bn, bs.DType, an, as.DType)
		return 0, false
	}
	ok := true
	for d := 1; d < len(as.Shape); d++ {
		want := as.Shape[d]
		if reduce[d] {
			want = (want + 1) / 2
		}
		if bs.Shape[d] != want {
			rule := "is kept (not reduced)"
			if reduce[d] {
				rule = fmt.Sprintf("halves to %d (ceil(n/2))", want)
			}
			r.problem("%s's shape %v breaks the reduction rule: along %s (dim %d) %s's %d %s, and %s has %d",
				bn, bs.Shape, ms.Axes[d].Name, d, an, as.Shape[d], rule, bn, bs.Shape[d])
			ok = false
		}
	}
	if !ok {
		return 0, false
	}
	fa, fb := as.Shape[0], bs.Shape[0]
	implied, per := fa, int64(1)
	if reduce[0] {
		implied, per = (fa+1)/2, 2
	}
	switch {
	case fb == implied:
		return fb, true
	case fb < implied:
		// Level k lags: a stopped writer leaves whole shard rows.
		if fb%bs.Shard[0] == 0 {
			r.Warnings = append(r.Warnings, Warning{Resumable: true,
				Text: fmt.Sprintf("%s holds %d of the %d frames %s implies: a writer stopped", bn, fb, implied, an)})
		} else {
			r.problem("%s holds %d of the %d frames %s implies, and %d is not a whole number of its %d-frame shard rows (what a stopped writer leaves): frames are missing",
				bn, fb, implied, an, fb, bs.Shard[0])
		}
		return fb, true
	default:
		// Level k-1 lags: only the frames of level k whose whole block
		// exists in level k-1 can be compared.
		if fa%as.Shard[0] == 0 {
			r.Warnings = append(r.Warnings, Warning{Resumable: true,
				Text: fmt.Sprintf("%s holds %d frames, more than the %d that %s's %d frames make: %s lags, a writer stopped; frames past %d are not compared",
					bn, fb, implied, an, fa, an, fa/per)})
		} else {
			r.problem("%s holds %d frames, more than the %d that %s's %d frames make, and %d is not a whole number of %s's %d-frame shard rows (what a stopped writer leaves)",
				bn, fb, implied, an, fa, fa, an, as.Shard[0])
		}
		return fa / per, true
	}
}

// errStop ends the read of the level above once a block differs.
var errStop = errors.New("stop: the level differs")

// recompute compares the first n frames of level k (b) with level k-1 (a)
// reduced by Reference, a block of frames at a time.
//
// Memory: the reader of a holds one epoch of a; the block holds its input
// frames of a (2 per output frame when dim 0 is reduced), at least one
// epoch of b's frames and as many more as opts.BlockBytes allows; the
// reference output and b's frames of the block, one copy each; and b's
// reader one block of b. A few epochs in all, whatever the image's size.
func recompute(ctx context.Context, r *Report, ms *zarr.Multiscale, k int, a, b *zarr.Array, reduce []bool, m downsample.Method, n int64, opts Options) error {
	as, bs := &a.Meta.Spec, &b.Meta.Spec
	fba, fbb := as.FrameBytes(), bs.FrameBytes()
	if n == 0 || fba == 0 || fbb == 0 {
		r.Compared[k-1] = n
		return nil
	}
	per := int64(1)
	if reduce[0] {
		per = 2
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	target := opts.BlockBytes
	if target <= 0 {
		target = defaultBlockBytes
	}
	// A block is whole epochs of b (its reads then decode every chunk of
	// b once) holding at least one frame per worker when the target
	// allows.
	epoch := max(min(bs.Chunk[0], bs.Shape[0]), 1)
	epochIn, ok := mul(epoch, per, fba)
	if !ok || epochIn > maxBlockBytes {
		return fmt.Errorf("an epoch of %d frames, with the %d frames of the level above it reduces, is too large to recompute in memory", epoch, epoch*per)
	}
	mult := max((int64(workers)+epoch-1)/epoch, 1)
	mult = max(min(mult, target/epochIn), 1)
	block := min(epoch*mult, n)
	p := &pairRun{
		ctx: ctx, b: b, reduce: reduce, method: m, dt: as.DType,
		inShape: append([]int64(nil), as.Shape...), fa: as.Shape[0],
		fba: fba, fbb: fbb, per: per, n: n, block: block, workers: workers,
	}
	p.buf = make([]byte, block*per*fba)
	p.want = make([]byte, block*fbb)
	p.got = make([]byte, 0, block*fbb)
	p.next()
	inFrames := min(per*n, as.Shape[0])
	err := a.ReadFramesContext(ctx, p, 0, inFrames)
	if p.diff != "" {
		r.problem("%s: %s", levelName(k, ms.Datasets[k].Path), p.diff)
		r.Compared[k-1] = p.lo
		return nil
	}
	if p.err != nil {
		return p.err
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", levelName(k-1, ms.Datasets[k-1].Path), err)
	}
	r.Compared[k-1] = n
	return nil
}

// pairRun is the state of one recomputation: the input frames of the
// current block as they arrive from the level above (Write), then the
// block reduced and compared with the level's own frames (flush).
type pairRun struct {
	ctx     context.Context
	b       *zarr.Array
	reduce  []bool
	method  downsample.Method
	dt      zarr.DType
	inShape []int64
	fa      int64 // frames of the level above
	fba     int64 // frame bytes above and below
	fbb     int64
	per     int64 // frames above per frame below (2 when dim 0 is reduced)
	n       int64 // frames below to compare
	block   int64
	workers int

	buf  []byte // the block's input frames
	in   []byte // buf's part the current block fills
	fill int
	lo   int64 // the block's first frame below
	cnt  int64 // frames below in the block
	want []byte
	got  []byte
	diff string // the first difference found
	err  error  // the level's own read failed
}

// next sizes the block starting at p.lo.
func (p *pairRun) next() {
	p.cnt = min(p.block, p.n-p.lo)
	inCnt := min(p.per*(p.lo+p.cnt), p.fa) - p.per*p.lo
	p.in, p.fill = p.buf[:inCnt*p.fba], 0
}

func (p *pairRun) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		if p.cnt <= 0 {
			return total - len(b), fmt.Errorf("recompute: %d bytes more than the blocks hold", len(b))
		}
		c := copy(p.in[p.fill:], b)
		p.fill += c
		b = b[c:]
		if p.fill == len(p.in) {
			if err := p.flush(); err != nil {
				return total - len(b), err
			}
		}
	}
	return total, nil
}

// flush reduces the block's input with the reference, reads the level's
// frames of the block and compares them.
func (p *pairRun) flush() error {
	inCnt := int64(len(p.in)) / p.fba
	shape := append([]int64(nil), p.inShape...)
	shape[0] = inCnt
	plan, err := downsample.NewPlan(shape, p.reduce, p.dt, p.method)
	if err != nil {
		return err
	}
	want := p.want[:p.cnt*p.fbb]
	if err := p.reference(plan, want); err != nil {
		return err
	}
	got := bufWriter{p.got[:0]}
	if err := p.b.ReadFramesContext(p.ctx, &got, p.lo, p.lo+p.cnt); err != nil {
		// The level's own read failed: that error, not the read above's.
		p.err = fmt.Errorf("read its frames %d..%d: %w", p.lo, p.lo+p.cnt, err)
		return errStop
	}
	p.got = got.b
	if int64(len(got.b)) != p.cnt*p.fbb {
		return fmt.Errorf("read frames %d..%d: %d bytes, want %d", p.lo, p.lo+p.cnt, len(got.b), p.cnt*p.fbb)
	}
	if i := firstMismatch(p.dt, p.method, got.b, want); i >= 0 {
		p.diff = p.describe(i, got.b, want)
		return errStop
	}
	p.lo += p.cnt
	if p.lo < p.n {
		p.next()
	} else {
		p.cnt = 0
	}
	return nil
}

// reference computes the block's output frames with Reference, one frame
// at a time on each worker, checking ctx between frames.
func (p *pairRun) reference(plan *downsample.Plan, want []byte) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < int(min(int64(p.workers), p.cnt)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := next.Add(1) - 1
				if j >= p.cnt || p.ctx.Err() != nil {
					return
				}
				downsample.Reference(plan, want, p.in, j, j+1)
			}
		}()
	}
	wg.Wait()
	if err := p.ctx.Err(); err != nil {
		return context.Cause(p.ctx)
	}
	return nil
}

// describe says where the block first differs: the frame, the element's
// coordinates along every axis, both values.
func (p *pairRun) describe(i int, got, want []byte) string {
	size := p.dt.Size()
	bs := &p.b.Meta.Spec
	elems := int64(p.fbb) / int64(size)
	frame := p.lo + int64(i)/elems
	rest := int64(i) % elems
	coords := make([]int64, len(bs.Shape))
	coords[0] = frame
	for d := len(bs.Shape) - 1; d >= 1; d-- {
		coords[d] = rest % bs.Shape[d]
		rest /= bs.Shape[d]
	}
	return fmt.Sprintf("frame %d differs from the level above reduced again (%s): at %s it holds %s, the reduction gives %s",
		frame, p.method, formatCoords(bs.DimNames, coords), formatElem(p.dt, got[i*size:(i+1)*size]), formatElem(p.dt, want[i*size:(i+1)*size]))
}

func formatCoords(names []string, c []int64) string {
	parts := make([]string, len(c))
	for d, x := range c {
		if d < len(names) {
			parts[d] = fmt.Sprintf("%s=%d", names[d], x)
		} else {
			parts[d] = fmt.Sprintf("[%d]=%d", d, x)
		}
	}
	return strings.Join(parts, ", ")
}

// bufWriter appends what is written to b (within b's capacity, which the
// caller sizes: a longer write grows it).
type bufWriter struct{ b []byte }

func (w *bufWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// mul multiplies positive sizes, false when the product passes 2^62.
func mul(v ...int64) (int64, bool) {
	p := int64(1)
	for _, x := range v {
		if x <= 0 {
			return 0, false
		}
		if p > (1<<62)/x {
			return 0, false
		}
		p *= x
	}
	return p, true
}
