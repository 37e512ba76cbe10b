//go:build !unix

package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const noFollow = 0

// storeLock without flock (non-unix systems): the lock file is created
// exclusively, so a second writer is refused; a lock left by a crash has
// to be removed by hand, and the error says where it is.
type storeLock struct {
	f    *os.File
	path string
	info LockInfo
}

func acquireLock(dir, display string, breakForeign bool) (*storeLock, string, error) {
	p := filepath.Join(dir, LockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		b, _ := os.ReadFile(p)
		old := readLockInfo(b)
		if !breakForeign {
			return nil, "", &ForeignLockError{Store: display, Holder: old, Path: p}
		}
		if err := os.Remove(p); err != nil {
			return nil, "", fmt.Errorf("lock %s: %w", display, err)
		}
		l, _, err := acquireLock(dir, display, false)
		return l, staleNote(display, old, true), err
	}
	if err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", display, bare(err))
	}
	self := selfInfo()
	if _, err := f.Write(self.marshal()); err != nil {
		f.Close()
		os.Remove(p)
		return nil, "", fmt.Errorf("lock %s: %w", display, bare(err))
	}
	return &storeLock{f: f, path: p, info: self}, "", nil
}

func (l *storeLock) moved(dir string) { l.path = filepath.Join(dir, LockName) }

func (l *storeLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Close()
	l.f = nil
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove lock file: %w", err)
	}
	return nil
}
