// Package verify checks an OME-Zarr image as a whole: every level as an
// array (zarr.Array.VerifyContext), every level's metadata against the
// image's axes and against the level above (dimension_names, rank, dtype,
// the shape the reduction implies, the scale factors), and every level's
// data against the level above reduced again with
// downsample.Reference, the implementation that shares no code with the
// writers' fast path. Levels are streamed a block of frames at a time, so
// memory stays at a few epochs whatever the image's size.
//
// It reads through an fs.FS the caller hands in (the CLI's, which keeps
// every read inside the store), prints nothing and never names a CLI
// flag: findings come back as a Report of problems and warnings.
package verify
