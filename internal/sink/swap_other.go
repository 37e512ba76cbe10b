//go:build !linux

package sink

// exchange has no atomic form here; the caller falls back to two renames.
func exchange(a, b string) (bool, error) { return false, nil }
