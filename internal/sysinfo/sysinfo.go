// Package sysinfo reads what the host has (memory) for the writer's
// defaults and the bench's machine record. It only reads; on systems
// without /proc every answer is 0, meaning unknown.
package sysinfo

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// MemTotal is the machine's memory in bytes (MemTotal), 0 when unknown.
func MemTotal() int64 { return meminfo("MemTotal") }

// MemAvailable is the memory the kernel could hand out now without
// swapping (MemAvailable), 0 when unknown.
func MemAvailable() int64 { return meminfo("MemAvailable") }

func meminfo(key string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseMeminfo(f, key)
}

// parseMeminfo returns the value of key ("MemTotal") in a /proc/meminfo
// text, whose values are in KiB, in bytes; 0 when absent or malformed.
func parseMeminfo(r io.Reader, key string) int64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key+":")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0
		}
		return kb << 10
	}
	return 0
}
