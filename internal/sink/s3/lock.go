package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/zwrite/zwrite/internal/sink"
)

// lockObject is a held store lock: the object NODE/.zwrite-lock, whose
// content is the directory lock's (pid, host, start, command).
//
// It is created with a conditional PUT (If-None-Match: *), which S3,
// versitygw and MinIO honour: of two writers starting at once exactly one
// creates it. Object storage has no flock, so a lock left by a crash is
// told from a live one by its pid: a lock of this host whose process no
// longer runs (or runs something that is no zwrite) is taken over, with a
// note, by a PUT conditional on the old lock's ETag; one of another host
// is a *sink.ForeignLockError unless breakLock. The lock is read before
// it is created, and read back after every PUT: it must be ours. That
// also covers a server that ignores the conditions (create-then-verify;
// there, two writers racing within a round trip may both believe they
// hold it, which no server honouring conditional writes allows).
type lockObject struct {
	c    *client
	key  string
	body []byte
}

func acquireLock(ctx context.Context, c *client, key, display string, breakForeign bool) (*lockObject, string, error) {
	self := sink.SelfLockInfo()
	l := &lockObject{c: c, key: key, body: self.Bytes()}
	for try := 0; try < 10; try++ {
		// Read first: on a server that ignores If-None-Match, a PUT
		// would silently replace another writer's lock.
		old, etag, err := c.getSmall(ctx, key, 4096)
		if notFound(err) {
			_, err := c.putSmall(ctx, key, l.body, ifAbsent, "")
			if errors.Is(err, errPrecondition) {
				continue // another writer created it first: read it
			}
			if err != nil {
				return nil, "", fmt.Errorf("lock %s: %w", display, err)
			}
			if err := l.verify(ctx, display); err != nil {
				return nil, "", err
			}
			return l, "", nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("lock %s: %w", display, err)
		}
		holder := sink.ParseLockInfo(old)
		foreign := !holder.IsLocalHost()
		switch {
		case foreign && !breakForeign:
			return nil, "", &sink.ForeignLockError{Store: display, Holder: holder, Path: location(c.bucket, key)}
		case !foreign && holder.HolderRuns():
			return nil, "", &sink.LockedError{Store: display, Holder: holder}
		}
		// Take over, only if it is still the lock we judged.
		if _, err := c.putSmall(ctx, key, l.body, ifUnchanged, etag); errors.Is(err, errPrecondition) {
			continue
		} else if err != nil {
			return nil, "", fmt.Errorf("lock %s: take over the stale lock: %w", display, err)
		}
		if err := l.verify(ctx, display); err != nil {
			return nil, "", err
		}
		return l, sink.StaleLockNote(display, holder, foreign), nil
	}
	return nil, "", fmt.Errorf("lock %s: the lock object keeps changing under us; is another writer starting?", display)
}

// verify reads the lock back: it must be ours.
func (l *lockObject) verify(ctx context.Context, display string) error {
	got, _, err := l.c.getSmall(ctx, l.key, 4096)
	if err != nil {
		return fmt.Errorf("lock %s: read it back: %w", display, err)
	}
	if !bytes.Equal(got, l.body) {
		return &sink.LockedError{Store: display, Holder: sink.ParseLockInfo(got)}
	}
	return nil
}

// release removes the lock object if it is still ours (a writer that
// broke it keeps it), with few tries: it runs at the end of a run, which
// may have failed because the server is gone (the lock then stays, and
// the next writer of this host takes it over: its pid is dead).
func (l *lockObject) release(ctx context.Context) error {
	if l == nil || l.c == nil {
		return nil
	}
	c := l.c.withTries(cleanupTries)
	l.c = nil
	got, _, err := c.getSmall(ctx, l.key, 4096)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	if !bytes.Equal(got, l.body) {
		return nil
	}
	if err := c.deleteKeys(ctx, []string{l.key}); err != nil {
		return fmt.Errorf("release the lock: %w", err)
	}
	return nil
}
