package stage

import (
	"errors"
	"fmt"
	"sync"
)

// The misuse errors every backend's slots and stages report; callers test
// them with errors.Is.
var (
	ErrFreed     = errors.New("slot was freed")
	ErrInFlight  = errors.New("the slot's batch was not waited for")
	ErrNotKicked = errors.New("no batch was kicked")
	ErrClosed    = errors.New("stage is closed")
	ErrLiveSlots = errors.New("slots were not freed")
)

// Life is a slot's life cycle, the one state machine both backends share:
// Kick → Wait → (Kick → Wait …) → Free. A slot embeds one and routes its
// Slot methods through it, so that misuse (Kick twice, Wait without Kick,
// Free while a batch is in flight, anything after Free) is an error the
// same way on every backend. Like the Slot it guards it belongs to one
// owner at a time and needs no lock.
type Life struct {
	maxFrames int64
	inFlight  bool
	freed     bool
}

// NewLife is the life of a slot that holds up to maxFrames frames.
func NewLife(maxFrames int64) Life { return Life{maxFrames: maxFrames} }

// Kick checks that b may be kicked now, runs start (the backend's own
// kick) and marks the batch in flight if start succeeds.
func (l *Life) Kick(b Batch, start func() error) error {
	switch {
	case l.freed:
		return fmt.Errorf("kick: %w", ErrFreed)
	case l.inFlight:
		return fmt.Errorf("kick: %w", ErrInFlight)
	case b.Frames <= 0 || b.Frames > l.maxFrames:
		return fmt.Errorf("kick: a batch of %d frames; the slot holds 1 to %d", b.Frames, l.maxFrames)
	}
	if err := start(); err != nil {
		return err
	}
	l.inFlight = true
	return nil
}

// Wait checks that a batch is in flight, runs wait (which must not return
// before the backend no longer touches the slot's buffers) and marks the
// slot idle again, whatever wait returns.
func (l *Life) Wait(wait func() (*Output, error)) (*Output, error) {
	if l.freed {
		return nil, fmt.Errorf("wait: %w", ErrFreed)
	}
	if !l.inFlight {
		return nil, fmt.Errorf("wait: %w", ErrNotKicked)
	}
	out, err := wait()
	l.inFlight = false
	return out, err
}

// Free runs release once: a second Free does nothing, and Free while a
// batch is in flight is refused (Wait first), leaving the slot as it was.
func (l *Life) Free(release func() error) error {
	if l.inFlight {
		return fmt.Errorf("free: %w", ErrInFlight)
	}
	if l.freed {
		return nil
	}
	l.freed = true
	return release()
}

// Freed reports whether Free has run.
func (l *Life) Freed() bool { return l.freed }

// Slots counts a stage's live slots and refuses new ones once the stage
// is closed, so that every backend's Close has the same contract: with
// slots still live it reports ErrLiveSlots and leaves the stage open (free
// them, then Close again); a second Close does nothing. Safe for
// concurrent use.
type Slots struct {
	mu     sync.Mutex
	live   int
	closed bool
}

// Add counts a new slot; it fails once the stage is closed.
func (s *Slots) Add() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("new slot: %w", ErrClosed)
	}
	s.live++
	return nil
}

// Done counts a freed slot.
func (s *Slots) Done() {
	s.mu.Lock()
	s.live--
	s.mu.Unlock()
}

// Close marks the stage closed. first is true only for the call that
// closed it (the one that must release the stage's resources); with live
// slots it returns an error and closes nothing.
func (s *Slots) Close() (first bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, nil
	}
	if s.live > 0 {
		return false, fmt.Errorf("close: %d %w", s.live, ErrLiveSlots)
	}
	s.closed = true
	return true, nil
}
