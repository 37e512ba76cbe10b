//go:build cgo && zstdref

package zstdref

/*
#cgo LDFLAGS: -lzstd
#include <zstd.h>
static size_t zref(ZSTD_CCtx* c, void* dst, size_t cap, const void* src, size_t n, int level) {
	return ZSTD_compressCCtx(c, dst, cap, src, n, level);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Level returns libzstd compressing one frame per call at level: the
// reference the measurements compare with, on the same thread.
func Level(level int) func(dst, src []byte) []byte {
	cctx := C.ZSTD_createCCtx()
	return func(dst, src []byte) []byte {
		bound := int(C.ZSTD_compressBound(C.size_t(len(src))))
		if cap(dst)-len(dst) < bound {
			dst = append(make([]byte, 0, len(dst)+bound), dst...)
		}
		out := dst[len(dst) : len(dst)+bound]
		// unsafe: C reads len(src) bytes at &src[0] and writes at most
		// bound bytes at &out[0]; both are live Go memory holding no Go
		// pointers, as cgo's rules require, for the length of the call.
		n := C.zref(cctx, unsafe.Pointer(&out[0]), C.size_t(bound), unsafe.Pointer(&src[0]), C.size_t(len(src)), C.int(level))
		if C.ZSTD_isError(n) != 0 {
			panic(fmt.Sprintf("libzstd: %s", C.GoString(C.ZSTD_getErrorName(n))))
		}
		return dst[:len(dst)+int(n)]
	}
}
