package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"
)

// parseDims parses a comma list of non-negative integers ("0,512,512").
func parseDims(flag, s string) ([]int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, usagef("--%s is empty; want a comma list of integers, slowest dimension first (e.g. 0,512,512)", flag)
	}
	parts := strings.Split(s, ",")
	v := make([]int64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || n < 0 {
			return nil, usagef("--%s %q: element %d (%q) is not a non-negative integer; want a comma list such as 0,512,512", flag, s, i, p)
		}
		v[i] = n
	}
	return v, nil
}

// parseNames parses a comma list of dimension names ("t,z,y,x").
func parseNames(flag, s string) ([]string, error) {
	parts := strings.Split(s, ",")
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, usagef("--%s %q: name %d is empty; want a comma list such as t,z,y,x", flag, s, i)
		}
		if seen[p] {
			return nil, usagef("--%s %q: name %q appears twice", flag, s, p)
		}
		seen[p] = true
		parts[i] = p
	}
	return parts, nil
}

// parseSize parses a byte count with an optional unit: 123, 64K, 512MiB,
// 4G, 1.5GB. K, M, G, T are powers of 1024 with or without "iB"; "KB",
// "MB", "GB", "TB" are powers of 1000, as a disk vendor would write them.
func parseSize(flag, s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "kKmMgGtTiIbB")
	unit := strings.ToLower(t[len(num):])
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, usagef("--%s %q is not a size; want bytes with an optional unit, such as 4GiB, 512M or 1000000", flag, s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, usagef("--%s %q: unknown unit %q; want B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)", flag, s, t[len(num):])
	}
	v := f * m
	if v > math.MaxInt64/2 {
		return 0, usagef("--%s %q is too large", flag, s)
	}
	return int64(v), nil
}

// formatDims writes dims as a comma list, the form the flags take.
func formatDims(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

// humanBytes formats a byte count with a decimal unit (GB/s match it).
func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.2f %s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminal reports whether w is a terminal (the progress bar's default).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
