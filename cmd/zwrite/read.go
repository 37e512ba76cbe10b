package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/zarr"
)

// openStore opens the array store at path (a directory, or a URL such as
// s3://BUCKET/PREFIX read from endpoint) for reading, with a message that
// says what is wrong with a path that is no store.
func openStore(path, endpoint string) (*zarr.Array, error) {
	if isURL(path) {
		fsys, err := sink.OpenFS(path, endpoint)
		if err != nil {
			return nil, s3Hint(err)
		}
		return openArray(path, fsys)
	}
	if endpoint != "" {
		return nil, usagef("--s3-endpoint is for s3:// stores; %s is a directory", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store %s is a file; want a Zarr store directory", path)
	}
	return openArray(path, os.DirFS(path))
}

func openArray(path string, fsys fs.FS) (*zarr.Array, error) {
	a, err := zarr.Open(fsys)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store %s has no zarr.json; it is not a Zarr v3 array store (or a writer never got to write one)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return a, nil
}

// interruptible runs fn and returns its error, or ctx's as soon as ctx
// ends. The reading commands hold nothing that needs cleaning up, so on an
// interrupt they leave fn to die with the process rather than wait for a
// long read to finish.
func interruptible(ctx context.Context, fn func() error) error {
	_, err := interruptibleValue(ctx, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// interruptibleValue is interruptible for a fn with a result (a.Usage,
// a.Verify). On an interrupt it returns the zero value: fn's own result is
// handed over only through the channel, so nothing races with a fn that
// is still running.
func interruptibleValue[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

// storeArg checks that exactly one STORE is given.
func storeArg(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		return usagef("no STORE given")
	case 1:
		return nil
	}
	return usagef("one STORE at a time; got %d arguments (%q ...)", len(args), args[1])
}
