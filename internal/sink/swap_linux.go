package sink

import (
	"errors"

	"golang.org/x/sys/unix"
)

// exchange swaps the directories a and b atomically (renameat2 with
// RENAME_EXCHANGE): at no moment is either name missing, so a reader of
// the store sees the old store or the new one, never neither. ok is false
// when the file system does not support the exchange; the caller then
// falls back to two renames.
func exchange(a, b string) (ok bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return false, nil
	}
	return err == nil, err
}
