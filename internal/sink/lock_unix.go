//go:build unix

package sink

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

const noFollow = syscall.O_NOFOLLOW

// storeLock is a held store lock: an open lock file with an exclusive
// flock on it. The kernel drops a flock when its holder dies, however it
// dies, so a lock whose flock can be taken belongs to a writer that is
// gone: that is how a lock left by a crash is told from a live one without
// trusting pids (which are reused) or clocks. flock works across hosts on
// NFS (Linux maps it to NFS locks), and the recorded host is checked too.
type storeLock struct {
	f    *os.File
	path string
	info LockInfo
}

// acquireLock takes the lock of the store directory dir (display names the
// store in messages). A lock held by a live writer is a *LockedError; one
// recorded by a writer on another host is a *ForeignLockError unless
// breakForeign; one left by a dead writer on this host is taken over, and
// note says so.
func acquireLock(dir, display string, breakForeign bool) (l *storeLock, note string, err error) {
	p := filepath.Join(dir, LockName)
	for try := 0; try < 10; try++ {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|noFollow, 0o644)
		if err != nil {
			return nil, "", fmt.Errorf("lock %s: %w", display, bare(err))
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			b, _ := io.ReadAll(io.LimitReader(f, 4096))
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, "", &LockedError{Store: display, Holder: readLockInfo(b)}
			}
			return nil, "", fmt.Errorf("lock %s: %w", display, err)
		}
		// The previous holder may have removed the file between our open
		// and our flock: then we hold a lock on a file nobody else sees.
		var held, now syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &held) != nil || syscall.Lstat(p, &now) != nil || held.Ino != now.Ino || held.Dev != now.Dev {
			f.Close()
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, 4096))
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("lock %s: %w", display, err)
		}
		self := selfInfo()
		if len(b) > 0 {
			old := readLockInfo(b)
			foreign := old.Host != "" && old.Host != self.Host
			switch {
			case foreign && !breakForeign:
				f.Close()
				return nil, "", &ForeignLockError{Store: display, Holder: old, Path: p}
			case !foreign && looksLikeZwrite(old.PID):
				// The flock was free but its writer runs: this file system
				// does not keep flocks. Trust the pid.
				f.Close()
				return nil, "", &LockedError{Store: display, Holder: old}
			}
			note = staleNote(display, old, foreign)
		}
		if err := f.Truncate(0); err == nil {
			_, err = f.WriteAt(self.marshal(), 0)
		}
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("lock %s: write lock file: %w", display, bare(err))
		}
		return &storeLock{f: f, path: p, info: self}, note, nil
	}
	return nil, "", fmt.Errorf("lock %s: the lock file keeps changing under us; is another writer starting?", display)
}

// moved tells the lock that its directory was renamed: the lock file now
// lives in dir.
func (l *storeLock) moved(dir string) { l.path = filepath.Join(dir, LockName) }

// release removes the lock file (if it is still ours) and drops the flock.
// Removing first means a writer waiting to open it finds it gone or, if it
// opened the old inode, sees the inode change and retries.
func (l *storeLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	var held, now syscall.Stat_t
	var err error
	if syscall.Fstat(int(l.f.Fd()), &held) == nil && syscall.Lstat(l.path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("remove lock file: %w", bare(rerr))
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
