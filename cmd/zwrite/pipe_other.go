//go:build !linux

package main

import "io"

// enlargePipe does nothing where pipe buffers cannot be resized.
func enlargePipe(io.Reader) {}
