// Command zwrite streams raw frames into compressed, sharded Zarr v3
// stores, and reads them back (cat, verify, info).
//
// This package is the command line only: one file per command, each with
// an options struct that registers and validates its own flags; the
// progress bar, the summary, signals and exit codes. It holds no pipeline
// logic (internal/pipeline), no format code (internal/zarr) and no codec
// (internal/stage, internal/gpu). main alone turns errors into exit codes:
// 0 ok, 1 runtime failure, 2 bad usage, 130 interrupted.
package main
