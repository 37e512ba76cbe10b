package s3

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// CeilingConfig is the upload Ceiling measures: what a run of zwrite
// wrote to object storage, to be repeated through minio-go alone.
type CeilingConfig struct {
	// Target is the run's output (s3://BUCKET/PREFIX); the measured
	// objects go below it, under a random name, and are removed after.
	Target string
	// Endpoint is as sink.Options.Endpoint.
	Endpoint string
	// Objects and Bytes: as many objects, as many bytes in all (split
	// evenly), as the run wrote.
	Objects int
	Bytes   int64
	// MaxObjectSize is what the run gave sink.Options: the part size
	// follows from it as the store's does (PartSize).
	MaxObjectSize int64
	// Parts is the number of part uploads at once (0: the store's pool
	// size for that part size, PoolParts).
	Parts int
}

// CeilingResult is what Ceiling measured.
type CeilingResult struct {
	Objects  int
	Bytes    int64
	PartSize int64
	Parts    int
	Seconds  float64
	GBps     float64 // Bytes / Seconds / 1e9
}

// Ceiling measures the same-run ceiling for writing to object storage:
// it uploads cfg.Bytes as cfg.Objects objects through minio-go alone —
// the same part size and number of parts in flight as a store, one PUT
// for an object smaller than a part, else a multipart upload; no
// pipeline, no copy into part buffers (every part is sent from one
// prepared buffer) — and returns the rate. Credentials and endpoint come
// from the environment as for a store. The timed upload includes the
// requests a store makes (initiate, parts, complete); removing the
// objects afterwards is not timed.
func Ceiling(ctx context.Context, cfg CeilingConfig) (CeilingResult, error) {
	return ceiling(ctx, cfg, os.Getenv, defaultTuning)
}

func ceiling(ctx context.Context, cfg CeilingConfig, getenv environ, tune tuning) (CeilingResult, error) {
	var res CeilingResult
	if cfg.Objects <= 0 || cfg.Bytes < 0 {
		return res, fmt.Errorf("ceiling: want at least one object and no negative size (got %d objects, %d bytes)", cfg.Objects, cfg.Bytes)
	}
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	t, err := parseTarget(u)
	if err != nil {
		return res, fmt.Errorf("ceiling %s: %w", cfg.Target, err)
	}
	ps, err := PartSize(cfg.MaxObjectSize)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	parts := cfg.Parts
	if parts <= 0 {
		parts = poolParts(&tune, ps)
	}
	c, err := resolveConfig(getenv, cfg.Endpoint, true)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	cl, err := newClient(c, t.bucket, tune)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	dir := join(t.prefix, ".zwrite-ceiling-"+strconv.FormatUint(rand.Uint64(), 36))
	largest := cfg.Bytes - cfg.Bytes/int64(cfg.Objects)*int64(cfg.Objects-1) // the last object takes the remainder
	src := make([]byte, min(ps, max(largest, 1)))
	rand.NewChaCha8([32]byte{1}).Read(src) // incompressible, like compressed shards

	up := &ceilingRun{c: cl, ctx: ctx, sem: make(chan struct{}, parts), src: src, ps: ps}
	keys := make([]string, cfg.Objects)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Objects {
		size := cfg.Bytes / int64(cfg.Objects)
		if i == cfg.Objects-1 {
			size = cfg.Bytes - size*int64(cfg.Objects-1)
		}
		keys[i] = join(dir, strconv.Itoa(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			up.object(keys[i], size)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	// Remove what was written, whatever happened, within the cleanup
	// bound, and any upload left unfinished.
	cctx, cancel := context.WithTimeout(context.Background(), 4*tune.cleanup)
	defer cancel()
	derr := cl.deleteKeys(cctx, keys)
	if _, err := cl.abortUploads(cctx, dirPrefix(dir)); derr == nil {
		derr = err
	}
	if up.err != nil {
		return res, fmt.Errorf("ceiling: %w", up.err)
	}
	if derr != nil {
		return res, fmt.Errorf("ceiling: remove the measured objects under %s: %w", location(t.bucket, dir), derr)
	}
	res = CeilingResult{Objects: cfg.Objects, Bytes: cfg.Bytes, PartSize: ps, Parts: parts, Seconds: secs}
	if secs > 0 {
		res.GBps = float64(cfg.Bytes) / secs / 1e9
	}
	return res, nil
}

// ceilingRun uploads the objects of one Ceiling: sem bounds the
// requests in flight as the store's pool bounds its parts.
type ceilingRun struct {
	c   *client
	ctx context.Context
	sem chan struct{}
	src []byte
	ps  int64

	mu  sync.Mutex
	err error
}

func (r *ceilingRun) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

func (r *ceilingRun) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err != nil || r.ctx.Err() != nil
}

// request runs fn holding one of the slots.
func (r *ceilingRun) request(what string, size int64, fn func(ctx context.Context) error) error {
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		return errAborted
	}
	defer func() { <-r.sem }()
	return r.c.do(r.ctx, what, size, fn)
}

func (r *ceilingRun) object(key string, size int64) {
	c := r.c
	if size < r.ps {
		err := r.request("put "+key, size, func(ctx context.Context) error {
			_, err := c.core.PutObject(ctx, c.bucket, key, bytes.NewReader(r.src[:size]), size, "", "", minio.PutObjectOptions{DisableContentSha256: true})
			return err
		})
		if err != nil {
			r.fail(err)
		}
		return
	}
	var id string
	err := r.request("start upload of "+key, 0, func(ctx context.Context) error {
		var err error
		id, err = c.core.NewMultipartUpload(ctx, c.bucket, key, minio.PutObjectOptions{})
		return err
	})
	if err != nil {
		r.fail(err)
		return
	}
	n := int((size + r.ps - 1) / r.ps)
	done := make([]minio.CompletePart, n)
	var wg sync.WaitGroup
	for p := range n {
		if r.failed() {
			break
		}
		psz := min(r.ps, size-int64(p)*r.ps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.request(fmt.Sprintf("upload part %d of %s", p+1, key), psz, func(ctx context.Context) error {
				op, err := c.core.PutObjectPart(ctx, c.bucket, key, id, p+1, bytes.NewReader(r.src[:psz]), psz,
					minio.PutObjectPartOptions{DisableContentSha256: true})
				done[p] = minio.CompletePart{PartNumber: p + 1, ETag: op.ETag}
				return err
			})
			if err != nil {
				r.fail(err)
			}
		}()
	}
	wg.Wait()
	if r.failed() {
		return
	}
	err = r.request("complete upload of "+key, size, func(ctx context.Context) error {
		_, err := c.core.CompleteMultipartUpload(ctx, c.bucket, key, id, done, minio.PutObjectOptions{})
		return err
	})
	if err != nil {
		r.fail(err)
	}
}
