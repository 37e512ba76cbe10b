//go:build cgo && zstdref

package zstdref

import (
	"fmt"

	dd "github.com/DataDog/zstd"
)

// Level returns libzstd compressing one frame per call at level (with the
// frame's content size, no checksum: what tensorstore and numcodecs
// write): the reference the measurements compare with, on the same
// thread.
func Level(level int) func(dst, src []byte) []byte {
	ctx := dd.NewCtx()
	var buf []byte
	return func(dst, src []byte) []byte {
		if bound := dd.CompressBound(len(src)); cap(buf) < bound {
			buf = make([]byte, bound)
		}
		out, err := ctx.CompressLevel(buf[:cap(buf)], src, level)
		if err != nil {
			panic(fmt.Sprintf("libzstd: %v", err))
		}
		return append(dst, out...)
	}
}
