package gpu

import (
	"errors"
	"fmt"
)

// CopyBandwidth is the measured pinned-memory copy speed of a card, the
// ceiling any GPU pipeline that moves its input over PCIe works under.
type CopyBandwidth struct {
	Bytes  int64   `json:"bytes"`   // bytes per copy
	Reps   int     `json:"reps"`    // timed copies per direction
	H2DGBs float64 `json:"h2d_gbs"` // host to device, 1e9 bytes/s
	D2HGBs float64 `json:"d2h_gbs"` // device to host
	// BothGBs is the H2D rate while a D2H of the same size runs at once
	// on another stream, as when the pipeline's slots overlap (codec none
	// sends back as many bytes as it takes in).
	BothGBs float64 `json:"both_gbs"`
	Device  string  `json:"device"`
}

// MeasureCopyBandwidth times pinned H2D and D2H copies of n bytes on the
// first GPU (one warm-up, then reps copies per direction, timed with CUDA
// events), and both directions at once. It frees everything it allocated.
func MeasureCopyBandwidth(n int64) (CopyBandwidth, error) {
	const reps = 5
	res := CopyBandwidth{Bytes: n, Reps: reps}
	if n <= 0 {
		return res, fmt.Errorf("copy bandwidth: size %d must be positive", n)
	}
	d, err := OpenDevice(0)
	if err != nil {
		return res, err
	}
	res.Device = d.Name()
	var (
		h1, h2   *HostBuf
		p1, p2   DevPtr
		s1, s2   *Stream
		e0, e1   *Event
		e2, e3   *Event
		cleanups []func() error
	)
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	var q seq
	q.do(func() (err error) { h1, err = d.AllocHost(n); return })
	q.do(func() (err error) { h2, err = d.AllocHost(n); return })
	q.do(func() (err error) { p1, err = d.Alloc(n); return })
	q.do(func() (err error) { p2, err = d.Alloc(n); return })
	q.do(func() (err error) { s1, err = d.NewStream(); return })
	q.do(func() (err error) { s2, err = d.NewStream(); return })
	q.do(func() (err error) { e0, err = d.NewEvent(); return })
	q.do(func() (err error) { e1, err = d.NewEvent(); return })
	q.do(func() (err error) { e2, err = d.NewEvent(); return })
	q.do(func() (err error) { e3, err = d.NewEvent(); return })
	cleanups = append(cleanups, h1.Free, h2.Free, func() error { return d.Free(p1) }, func() error { return d.Free(p2) },
		s1.Destroy, s2.Destroy, e0.Destroy, e1.Destroy, e2.Destroy, e3.Destroy)
	if q.err != nil {
		return res, fmt.Errorf("copy bandwidth: %w", q.err)
	}
	// Touch the host pages so the first copy does not pay for faulting.
	for _, h := range []*HostBuf{h1, h2} {
		b := h.Bytes()
		for i := 0; i < len(b); i += 4096 {
			b[i] = byte(i)
		}
	}
	timed := func(copies func() error) (float64, error) {
		var q seq
		q.do(copies) // warm-up
		q.do(func() error { return e0.Record(s1) })
		for i := 0; i < reps; i++ {
			q.do(copies)
		}
		q.do(func() error { return e1.Record(s1) })
		q.do(e1.Synchronize)
		if q.err != nil {
			return 0, q.err
		}
		ms, err := Elapsed(e0, e1)
		if err != nil {
			return 0, err
		}
		if ms <= 0 {
			return 0, errors.New("copy bandwidth: zero elapsed time")
		}
		return float64(n) * reps / (float64(ms) / 1e3) / 1e9, nil
	}
	if res.H2DGBs, err = timed(func() error { return s1.CopyHtoD(p1, h1.Bytes()) }); err != nil {
		return res, err
	}
	if res.D2HGBs, err = timed(func() error { return s1.CopyDtoH(h1.Bytes(), p1) }); err != nil {
		return res, err
	}
	// Both directions: s2 copies D2H while s1 copies H2D; s1 waits for s2
	// (e2) before its next copy and before the end event, so the timing
	// covers both.
	both, err := timed(func() error {
		var q seq
		q.do(func() error { return e3.Record(s1) })
		q.do(func() error { return s2.WaitEvent(e3) })
		q.do(func() error { return s1.CopyHtoD(p1, h1.Bytes()) })
		q.do(func() error { return s2.CopyDtoH(h2.Bytes(), p2) })
		q.do(func() error { return e2.Record(s2) })
		q.do(func() error { return s1.WaitEvent(e2) })
		return q.err
	})
	if err != nil {
		return res, err
	}
	res.BothGBs = both
	return res, nil
}
