// Package s3 is the object-storage backend of package sink: a
// sink.Store for s3://BUCKET/PREFIX on any S3-compatible server, and a
// read-only fs.FS over the same URLs for the reading commands. It
// registers both with sink in init, so that sink itself needs none of
// its dependencies.
//
// A file is one multipart upload fed as its bytes arrive, from a fixed
// pool of part buffers (bounded memory; a slow server holds the writer
// back); small files are one PUT at Commit. Nothing becomes visible
// before Commit, and Abort cancels every request of the file. The store
// policy (overwrite only a Zarr store, one writer per node through a lock
// object, parent groups, resume) is the directory store's, on keys.
//
// Credentials, region and endpoint come from where AWS tools take them
// (config.go). It must not know what the pipeline writes beyond sink's
// rules of what a Zarr store holds.
package s3
