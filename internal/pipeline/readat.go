package pipeline

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultReaders is the number of positioned reads ReadAt runs at once
// when the caller leaves it open. (Chosen by measurement on the GPU
// machine, see docs/bench: one thread reads a cached file at ~6 GB/s, 8 at
// ~46 GB/s, far above what the writer takes.)
const DefaultReaders = 8

// readPiece is the most one positioned read asks for: large enough that a
// read's fixed cost vanishes, small enough that a slot's fill splits into
// pieces for every reader and an abort waits for at most one piece.
const readPiece = 4 << 20

// readBounce is the most one read asks for when the slots take their
// input through stage.FrameWriter: the read lands in a bounce buffer of
// this size (one per reader) and is scattered into the slot from there,
// so the extra pass stays in the core's L2 cache or close to it.
const readBounce = 1 << 20

// ShortReadError reports a file that ended before the size it had when
// the caller sized the read (it shrank, or was truncated, while read).
type ShortReadError struct {
	At, Want int64 // the file ended at byte At of the Want expected
}

func (e *ShortReadError) Error() string {
	return fmt.Sprintf("the file ended at byte %d of the %d it had when opened (did it shrink while being read?)", e.At, e.Want)
}

// InputError is a failure of the input ReadAt reads, as opposed to one
// of the Writer: the store stays good and keeps the whole frames read.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ReadAt reads bytes [0, size) of r into the stream, as Write would take
// them (they continue whatever came before, frames may span inputs), with
// up to readers positioned reads at once straight into the current slot's
// staging, so no byte is copied twice. readers <= 0 means DefaultReaders.
//
// Like ReadFrom, it releases the Writer's lock while reads are in flight,
// so that Abort from another goroutine returns promptly; the slot being
// read into is then freed once the reads return. An error of r stops it:
// the bytes read before the first failing offset are kept (whole frames
// of them reach the store, as for any input), and the error is returned
// as an *InputError; a file shorter than size is a *ShortReadError in it.
func (w *Writer) ReadAt(r io.ReaderAt, size int64, readers int) (int64, error) {
	if readers <= 0 {
		readers = DefaultReaders
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return 0, err
	}
	var done int64
	for done < size {
		s := w.slots[w.cur]
		if err := w.join(s); err != nil {
			return done, err
		}
		k := min(int64(s.size-s.fill), size-done)
		over := false
		if !w.spec.Growing() {
			// roomBytes: a resume starts at StartFrame, not 0.
			if room := w.roomBytes(); k > room {
				k, over = room, true
			}
		}
		if s.fill == 0 && k > 0 {
			s.fillStart = time.Now()
		}
		w.growTo(s, s.fill+int(k))
		w.reading = s
		w.mu.Unlock()
		start := time.Now()
		n, err := w.readParallel(r, done, s, s.fill, k, readers, size)
		w.c.copy.Add(int64(time.Since(start)))
		w.mu.Lock()
		w.reading = nil
		if w.closed.Load() {
			// Abort tore the Writer down meanwhile; see ReadFrom.
			if w.deferFree != nil {
				if ferr := w.deferFree.st.Free(); ferr != nil {
					w.fail(fmt.Errorf("free slot: %w", ferr))
				}
				w.deferFree = nil
			}
			if res := w.result(); res != nil {
				return done, res
			}
			return done, ErrClosed
		}
		s.fill += int(n)
		done += n
		w.bytesIn += n
		w.offered += n
		w.c.bytesIn.Store(w.bytesIn)
		if s.fill == s.size {
			if kerr := w.kick(s); kerr != nil {
				return done, kerr
			}
		}
		if err != nil {
			return done, &InputError{Err: err}
		}
		if over {
			// The declared frames are all in; anything left is surplus.
			w.offered += size - done
			w.inputErr = &TooManyFramesError{Declared: w.spec.Shape[0], AtLeast: w.startFrame + (w.offered+w.frameBytes-1)/w.frameBytes}
			return done, w.inputErr
		}
		if err := w.error(); err != nil {
			return done, err
		}
	}
	return done, nil
}

// readParallel fills n bytes of slot s from byte at of its input with
// bytes from r at off, with up to readers concurrent positioned reads of at
// most readPiece bytes (total is the input's expected size, for the
// message of a short file): straight into staging, or for a FrameWriter
// slot into a bounce buffer per reader, then scattered. It returns the
// length of the prefix that was read without a gap, and the error of the
// first failing piece (a piece cut short by the end of the file is a
// *ShortReadError). Pieces after a failure, or after the Writer was
// aborted, are not started.
func (w *Writer) readParallel(r io.ReaderAt, off int64, s *slot, at int, n int64, readers int, total int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	piece := min(int64(readPiece), max(n/int64(readers), 256<<10))
	if s.fw != nil {
		piece = min(piece, readBounce)
		for len(w.bounces) < readers {
			w.bounces = append(w.bounces, make([]byte, readBounce))
		}
	}
	pieces := (n + piece - 1) / piece
	workers := int(min(int64(readers), pieces))
	var (
		mu      sync.Mutex
		failAt  = n // lowest offset in dst not read
		failErr error
		next    int64
		wg      sync.WaitGroup
	)
	take := func() (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= pieces || failAt < n || w.ctx.Err() != nil {
			return 0, false
		}
		p := next
		next++
		return p, true
	}
	work := func(bounce []byte) {
		defer wg.Done()
		for {
			p, ok := take()
			if !ok {
				return
			}
			a, b := p*piece, min((p+1)*piece, n)
			var got int
			var err error
			if s.fw != nil {
				got, err = r.ReadAt(bounce[:b-a], off+a)
				s.fw.WriteFrames(bounce[:got], int64(at)+a)
			} else {
				got, err = r.ReadAt(s.staging[int64(at)+a:int64(at)+b], off+a)
			}
			if int64(got) == b-a {
				continue // io.ReaderAt may report EOF with a full read at the end
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = &ShortReadError{At: off + a + int64(got), Want: total}
			}
			mu.Lock()
			if a+int64(got) < failAt {
				failAt, failErr = a+int64(got), err
			}
			mu.Unlock()
		}
	}
	wg.Add(workers)
	bounce := func(i int) []byte {
		if s.fw == nil {
			return nil
		}
		return w.bounces[i]
	}
	for i := 1; i < workers; i++ {
		go work(bounce(i))
	}
	work(bounce(0)) // the caller reads too
	wg.Wait()
	if failErr == nil && w.ctx.Err() != nil && next < pieces {
		// Aborted between pieces: only the pieces started were read, and
		// the prefix before the first one not started counts.
		failAt = next * piece
	}
	if failAt < n {
		return failAt, failErr
	}
	return n, nil
}
