package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/zwrite/zwrite/internal/pipeline"
)

// progress draws append's bar on stderr from the Writer's counters, which
// are safe to read from any goroutine: bytes, GB/s and frames.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	stats func() pipeline.Stats
	done  chan struct{}
	wg    sync.WaitGroup
}

// progressTick is how often the bar is redrawn: often enough to look live,
// rarely enough to cost nothing next to the writer.
const progressTick = 200 * time.Millisecond

// startProgress starts drawing; total is -1 when the input size is not
// known (stdin, pipes), which shows a spinner instead of a bar.
func startProgress(w io.Writer, total, frameBytes int64, stats func() pipeline.Stats) *progress {
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetDescription("0 frames"),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSpinnerType(14),
	)
	p := &progress{bar: bar, w: w, stats: stats, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.update()
			}
		}
	}()
	return p
}

func (p *progress) update() {
	s := p.stats()
	p.bar.Describe(fmt.Sprintf("%d frames", s.Frames))
	_ = p.bar.Set64(s.BytesIn)
}

// stop draws the final state and ends the bar's line, so the summary
// starts on a line of its own.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.update()
	_ = p.bar.Exit()
	fmt.Fprintln(p.w)
}
