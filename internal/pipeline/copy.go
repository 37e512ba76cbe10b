package pipeline

import "sync"

// copier splits large copies into staging across helper goroutines; the
// producer copies one share itself and waits for the rest, so a Write
// returns only when its bytes are in staging (the caller may reuse p).
type copier struct {
	helpers   int
	threshold int
	tasks     chan copyTask
	wg        sync.WaitGroup // parts of the current copy
	alive     sync.WaitGroup // helper goroutines
}

type copyTask struct{ dst, src []byte }

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
				copy(t.dst, t.src)
				c.wg.Done()
			}
		}()
	}
}

// copy copies src into dst (equal lengths).
func (c *copier) copy(dst, src []byte) {
	n := len(src)
	if c.tasks == nil || n < c.threshold {
		copy(dst, src)
		return
	}
	// Parts of at least half the threshold: a part costs a channel
	// hand-off and a wake-up (a few µs), which must stay small next to it.
	parts := min(c.helpers+1, max(1, n/max(1, c.threshold/2)))
	part := (n + parts - 1) / parts
	part = (part + copyAlign - 1) / copyAlign * copyAlign
	first := min(part, n)
	for off := first; off < n; off += part {
		end := min(off+part, n)
		c.wg.Add(1)
		c.tasks <- copyTask{dst[off:end], src[off:end]}
	}
	copy(dst[:first], src[:first])
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
