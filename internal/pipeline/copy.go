package pipeline

import (
	"sync"

	"github.com/zwrite/zwrite/internal/stage"
)

// copier splits large copies into a slot across helper goroutines; the
// producer copies one share itself and waits for the rest, so a Write
// returns only when its bytes are in the slot (the caller may reuse p).
// A copy goes into staging, or through the slot's stage.FrameWriter
// (ranges of the input at once, which the contract allows).
type copier struct {
	helpers   int
	threshold int
	tasks     chan copyTask
	wg        sync.WaitGroup // parts of the current copy
	alive     sync.WaitGroup // helper goroutines
}

// copyTask is one part: src to dst, or src to fw at byte off.
type copyTask struct {
	dst, src []byte
	fw       stage.FrameWriter
	off      int64
}

func (t *copyTask) run() {
	if t.fw != nil {
		t.fw.WriteFrames(t.src, t.off)
	} else {
		copy(t.dst, t.src)
	}
}

// copyAlign keeps split points on page boundaries, so no two copiers
// write the same cache line.
const copyAlign = 4096

func (c *copier) start(helpers, threshold int) {
	c.helpers, c.threshold = helpers, threshold
	if helpers <= 0 {
		return
	}
	c.tasks = make(chan copyTask, helpers)
	for i := 0; i < helpers; i++ {
		c.alive.Add(1)
		go func() {
			defer c.alive.Done()
			for t := range c.tasks {
				t.run()
				c.wg.Done()
			}
		}()
	}
}

// put copies src into slot s at byte at of its input.
func (c *copier) put(s *slot, at int, src []byte) {
	task := func(a, b int) copyTask {
		if s.fw != nil {
			return copyTask{src: src[a:b], fw: s.fw, off: int64(at + a)}
		}
		return copyTask{dst: s.staging[at+a : at+b], src: src[a:b]}
	}
	n := len(src)
	if c.tasks == nil || n < c.threshold {
		t := task(0, n)
		t.run()
		return
	}
	// Parts of at least half the threshold: a part costs a channel
	// hand-off and a wake-up (a few µs), which must stay small next to it.
	parts := min(c.helpers+1, max(1, n/max(1, c.threshold/2)))
	part := (n + parts - 1) / parts
	part = (part + copyAlign - 1) / copyAlign * copyAlign
	first := min(part, n)
	for off := first; off < n; off += part {
		c.wg.Add(1)
		c.tasks <- task(off, min(off+part, n))
	}
	t := task(0, first)
	t.run()
	c.wg.Wait()
}

// stop ends the helpers and waits for them to exit.
func (c *copier) stop() {
	if c.tasks != nil {
		close(c.tasks)
		c.alive.Wait()
		c.tasks = nil
	}
}
