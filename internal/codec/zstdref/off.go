//go:build !(cgo && zstdref)

package zstdref

// Level is nil without the zstdref build tag (and cgo).
func Level(level int) func(dst, src []byte) []byte { return nil }
