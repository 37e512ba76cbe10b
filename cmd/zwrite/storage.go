package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/codec"
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
// index. Object stores size their upload parts from it. The per-chunk
// worst case is the codec package's Bound, the room its encoder reserves
// per chunk, so the two cannot drift apart (blosc's header, zstd's frame
// and block headers at every level).
func maxShardBytes(s *zarr.Spec) (int64, error) {
	// Validate's size limits (2 GiB chunks, 16 Mi chunks per shard) keep
	// the arithmetic below far from overflowing.
	if err := s.Validate(); err != nil {
		return 0, fmt.Errorf("bound the shard size: %w", err)
	}
	enc, err := codec.NewChunkEncoder(s)
	if err != nil {
		return 0, fmt.Errorf("bound the shard size: %w", err)
	}
	defer enc.Close()
	per := int64(enc.Bound(int(s.ChunkBytes())))
	n := s.ChunksPerShard()
	index := 16*n + 4 // (offset, nbytes) per chunk and a crc32c
	return n*per + index, nil
}

// isURL reports whether a store argument is a URL (s3://...).
func isURL(store string) bool { return sink.IsURL(store) }
