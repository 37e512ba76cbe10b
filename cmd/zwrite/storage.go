package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3"
	"github.com/zwrite/zwrite/internal/zarr"
)

// Object storage: s3:// outputs and stores, through internal/sink/s3
// (which registers itself with sink when imported).

// addS3EndpointFlag registers --s3-endpoint, shared by append and the
// reading commands.
func addS3EndpointFlag(f *pflag.FlagSet, endpoint *string) {
	f.StringVar(endpoint, "s3-endpoint", "", "S3 server for s3:// stores, e.g. http://localhost:7070 (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS profile's endpoint_url, else AWS)")
}

// s3Hint adds the flag that changes the endpoint to an error saying it
// cannot be reached.
func s3Hint(err error) error {
	var ee *s3.EndpointError
	if errors.As(err, &ee) {
		return fmt.Errorf("%w (--s3-endpoint names another)", err)
	}
	return err
}

// maxShardBytes bounds the size of one shard file of s: every inner chunk
// at the codec's worst case (a chunk that does not compress), plus the
// index. Object stores size their upload parts from it.
func maxShardBytes(s *zarr.Spec) int64 {
	cb := s.ChunkBytes()
	per := cb
	switch s.Codec {
	case zarr.CodecZstd:
		// A frame header of at most 18 bytes and 3 bytes per 128 KiB
		// block (klauspost's MaxEncodedSize and the GPU encoder's Bound).
		per += 18 + 3*(cb/(128<<10)+1)
	case zarr.CodecLZ4:
		per += int64(blosc.MaxEncodedSize(0)) // blosc's header; a chunk that does not shrink is stored raw
	}
	n := s.ChunksPerShard()
	index := 16*n + 4 // (offset, nbytes) per chunk and a crc32c
	if per > 0 && n > (math.MaxInt64-index)/per {
		return math.MaxInt64
	}
	return n*per + index
}

// isURL reports whether a store argument is a URL (s3://...).
func isURL(store string) bool { return sink.IsURL(store) }
