package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pipeSizes are the pipe buffer sizes asked for, largest first: 8 MiB
// lets a producer write big blocks in one go (a privileged process may
// exceed /proc/sys/fs/pipe-max-size), 1 MiB is that limit's default.
var pipeSizes = []int{8 << 20, 1 << 20}

// enlargePipe grows the buffer of r when it is a pipe or FIFO, so that the
// process writing into it (a camera's dump program, dd, cat) blocks less
// often and each of our reads drains more. Errors are ignored: the
// default buffer still works.
func enlargePipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	// Through SyscallConn, not Fd: Fd would put the pipe into blocking
	// mode, tying a thread to every idle read.
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		for _, n := range pipeSizes {
			if _, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n); err == nil {
				return
			}
		}
	})
}
