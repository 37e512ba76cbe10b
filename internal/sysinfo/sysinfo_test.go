package sysinfo

import (
	"strings"
	"testing"
)

func TestParseMeminfo(t *testing.T) {
	const text = "MemTotal:       24676524 kB\nMemFree:        23000000 kB\nMemAvailable:   23500000 kB\nBogus:  x kB\nEmpty:\n"
	tests := []struct {
		name string
		key  string
		want int64
	}{
		{"total", "MemTotal", 24676524 << 10},
		{"available", "MemAvailable", 23500000 << 10},
		{"prefix-is-not-key", "Mem", 0},
		{"absent", "SwapTotal", 0},
		{"malformed", "Bogus", 0},
		{"empty", "Empty", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMeminfo(strings.NewReader(text), tc.key); got != tc.want {
				t.Errorf("parseMeminfo(%q) = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
}
