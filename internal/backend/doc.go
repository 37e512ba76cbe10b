// Package backend picks the compress stage (internal/stage on CPU cores,
// internal/gpu on an NVIDIA GPU) for a backend name given by the user:
// auto, cpu or gpu. It owns only that choice and its error messages; the
// stages themselves live in their own packages, and nothing here prints.
package backend
