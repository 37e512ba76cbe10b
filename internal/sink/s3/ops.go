package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// The requests the store and the reader make, each with retries and an
// error that names the key.

// object is one listed key, relative to the listed prefix.
type object struct {
	rel  string
	size int64
	mod  time.Time
}

// listAll lists every key under prefix (which ends in "/" or is ""),
// relative to it. A directory marker for the prefix itself is skipped.
func (c *client) listAll(ctx context.Context, prefix string) ([]object, error) {
	var out []object
	token := ""
	for {
		var res minio.ListBucketV2Result
		err := c.do(ctx, "list "+location(c.bucket, prefix), 0, func(ctx context.Context) error {
			var err error
			res, err = c.core.ListObjectsV2(c.bucket, prefix, "", token, "", 1000)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, o := range res.Contents {
			rel, ok := strings.CutPrefix(o.Key, prefix)
			if !ok || rel == "" {
				continue
			}
			out = append(out, object{rel: rel, size: o.Size, mod: o.LastModified})
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return out, nil
		}
		token = res.NextContinuationToken
	}
}

// listDir lists the names directly under prefix (which ends in "/" or is
// ""): objects, and sub-prefixes (directories, names without the "/").
func (c *client) listDir(ctx context.Context, prefix string) (files []object, dirs []string, err error) {
	token := ""
	for {
		var res minio.ListBucketV2Result
		err := c.do(ctx, "list "+location(c.bucket, prefix), 0, func(ctx context.Context) error {
			var err error
			res, err = c.core.ListObjectsV2(c.bucket, prefix, "", token, "/", 1000)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		for _, o := range res.Contents {
			rel, ok := strings.CutPrefix(o.Key, prefix)
			if !ok || rel == "" || strings.Contains(rel, "/") {
				continue
			}
			files = append(files, object{rel: rel, size: o.Size, mod: o.LastModified})
		}
		for _, p := range res.CommonPrefixes {
			rel, ok := strings.CutPrefix(p.Prefix, prefix)
			rel = strings.TrimSuffix(rel, "/")
			if !ok || rel == "" || strings.Contains(rel, "/") {
				continue
			}
			dirs = append(dirs, rel)
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return files, dirs, nil
		}
		token = res.NextContinuationToken
	}
}

// errTooLarge: getSmall's object is larger than asked for.
var errTooLarge = errors.New("too large")

// getSmall reads a whole small object of at most limit bytes and returns
// it with its ETag; a missing object is an error notFound recognises.
func (c *client) getSmall(ctx context.Context, key string, limit int64) ([]byte, string, error) {
	var b []byte
	var etag string
	err := c.do(ctx, "read "+location(c.bucket, key), 0, func(ctx context.Context) error {
		r, info, _, err := c.core.GetObject(ctx, c.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		if info.Size > limit {
			return errTooLarge
		}
		b, err = io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > limit {
			return errTooLarge
		}
		etag = info.ETag
		return nil
	})
	return b, etag, err
}

// condition is a conditional PUT's precondition.
type condition int

const (
	always      condition = iota
	ifAbsent              // If-None-Match: *
	ifUnchanged           // If-Match: etag
)

// errPrecondition: a conditional PUT found the object in another state.
var errPrecondition = errors.New("precondition failed")

// putSmall writes a small object in one PUT, conditionally. It returns
// the new ETag, or errPrecondition when the condition does not hold.
func (c *client) putSmall(ctx context.Context, key string, data []byte, cond condition, etag string) (string, error) {
	var out string
	err := c.do(ctx, "write "+location(c.bucket, key), int64(len(data)), func(ctx context.Context) error {
		opts := minio.PutObjectOptions{DisableContentSha256: true}
		switch cond {
		case ifAbsent:
			opts.SetMatchETagExcept("*")
		case ifUnchanged:
			opts.SetMatchETag(etag)
		}
		info, err := c.core.PutObject(ctx, c.bucket, key, bytes.NewReader(data), int64(len(data)), "", "", opts)
		if isCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
			return errPrecondition
		}
		out = info.ETag
		return err
	})
	return out, err
}

// deleteKeys removes keys (absent ones are no error), in batches, with
// retries for the ones that failed transiently.
func (c *client) deleteKeys(ctx context.Context, keys []string) error {
	left := slices.Clone(keys)
	start := time.Now()
	for try := 1; len(left) > 0; try++ {
		ch := make(chan minio.ObjectInfo)
		go func() {
			defer close(ch)
			for _, k := range left {
				select {
				case ch <- minio.ObjectInfo{Key: k}:
				case <-ctx.Done():
					return
				}
			}
		}()
		var failed []string
		var last error
		for e := range c.core.RemoveObjects(ctx, c.bucket, ch, minio.RemoveObjectsOptions{}) {
			if e.Err == nil || isCode(e.Err, "NoSuchKey") {
				continue
			}
			if !transient(e.Err) || try >= c.tune.tries {
				return c.explain("remove "+location(c.bucket, e.ObjectName), e.Err, try, time.Since(start))
			}
			failed, last = append(failed, e.ObjectName), e.Err
		}
		if ctx.Err() != nil {
			return errAborted
		}
		if len(failed) > 0 {
			t := time.NewTimer(c.tune.wait(try))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("remove %s: %s: %w", location(c.bucket, failed[0]), describe(last), errAborted)
			}
		}
		left = failed
	}
	return nil
}

// abortUploads aborts every unfinished multipart upload under prefix
// (which ends in "/" or is ""), and returns how many there were. Uploads
// are never visible; this frees what crashed writers left on the server.
func (c *client) abortUploads(ctx context.Context, prefix string) (int, error) {
	n := 0
	keyMarker, idMarker := "", ""
	for {
		var res minio.ListMultipartUploadsResult
		err := c.do(ctx, "list unfinished uploads under "+location(c.bucket, prefix), 0, func(ctx context.Context) error {
			var err error
			res, err = c.core.ListMultipartUploads(ctx, c.bucket, prefix, keyMarker, idMarker, "", 1000)
			return err
		})
		if err != nil {
			return n, err
		}
		for _, u := range res.Uploads {
			if !strings.HasPrefix(u.Key, prefix) {
				continue
			}
			err := c.do(ctx, "abort the unfinished upload of "+location(c.bucket, u.Key), 0, func(ctx context.Context) error {
				err := c.core.AbortMultipartUpload(ctx, c.bucket, u.Key, u.UploadID)
				if isCode(err, "NoSuchUpload") {
					return nil
				}
				return err
			})
			if err != nil {
				return n, err
			}
			n++
		}
		if !res.IsTruncated || (res.NextKeyMarker == "" && res.NextUploadIDMarker == "") {
			return n, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
