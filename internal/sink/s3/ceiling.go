package s3

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// CeilingConfig is the upload Ceiling measures: what a run of zwrite
// wrote to object storage, to be repeated through minio-go alone.
type CeilingConfig struct {
	// Target is the run's output (s3://BUCKET/PREFIX); the measured
	// objects go beside it, under a hidden random prefix
	// (PARENT/.NAME.zwrite-ceiling-RANDOM, or .zwrite-ceiling-RANDOM in
	// the bucket's root for a store there), and are removed after.
	Target string
	// Endpoint is as sink.Options.Endpoint.
	Endpoint string
	// Sizes are the objects to upload, one per entry, in order: the run's
	// shard objects.
	Sizes []int64
	// MaxObjectSize is what the run gave sink.Options: the part size
	// follows from it as the store's does (PartSize).
	MaxObjectSize int64
	// Parts is the number of part uploads at once (0: the store's pool
	// size for that part size, PoolParts).
	Parts int
	// Lanes is the number of objects uploaded at once, each lane taking
	// the next object when its last one is complete: the shard files the
	// pipeline has open at once (a shard row's, written and committed
	// together; 0: every object at once).
	Lanes int
}

// CeilingResult is what Ceiling measured.
type CeilingResult struct {
	Objects  int
	Bytes    int64
	PartSize int64
	Parts    int
	Lanes    int
	Scratch  string // s3://BUCKET/KEY the objects were uploaded under
	Seconds  float64
	GBps     float64 // Bytes / Seconds / 1e9
}

// Ceiling measures the same-run ceiling for writing to object storage:
// it uploads cfg.Sizes objects through minio-go alone with the requests
// and the concurrency of a store — one PUT, sent by its lane, for an
// object smaller than a part; else a multipart upload whose full parts
// wait for one of cfg.Parts slots as a store's wait for a pool buffer,
// and whose last, partial part the lane sends itself before completing
// the upload — but no pipeline and no copy into part buffers (the parts are
// sent from buffers filled before the clock starts, as many as the
// store's pool and files hold), and returns the rate. Credentials
// and endpoint come from the environment as for a store. The timed
// upload includes every request a store makes (initiate, parts,
// complete); removing the objects afterwards is not timed.
func Ceiling(ctx context.Context, cfg CeilingConfig) (CeilingResult, error) {
	return ceiling(ctx, cfg, os.Getenv, defaultTuning)
}

func ceiling(ctx context.Context, cfg CeilingConfig, getenv environ, tune tuning) (CeilingResult, error) {
	var res CeilingResult
	var total, largest int64
	for _, s := range cfg.Sizes {
		if s < 0 {
			return res, fmt.Errorf("ceiling: object size %d is negative", s)
		}
		total += s
		largest = max(largest, s)
	}
	if len(cfg.Sizes) == 0 || cfg.Parts < 0 || cfg.Lanes < 0 {
		return res, fmt.Errorf("ceiling: want at least one object and no negative concurrency (got %d objects, %d parts, %d lanes)", len(cfg.Sizes), cfg.Parts, cfg.Lanes)
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
	if parts == 0 {
		parts = poolParts(&tune, ps)
	}
	lanes := cfg.Lanes
	if lanes == 0 || lanes > len(cfg.Sizes) {
		lanes = len(cfg.Sizes)
	}
	c, err := resolveConfig(getenv, cfg.Endpoint, true)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	cl, err := newClient(c, t.bucket, tune)
	if err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	dir := scratchPrefix(t.prefix, strconv.FormatUint(rand.Uint64(), 36))
	// One buffer per part in flight, as the store's pool has, and one per
	// lane for its puts and last parts, as each store file has its own:
	// the same memory the store sends from. (One buffer sent for every
	// part stays in the cache, which no real upload's bytes do; on the
	// GPU machine that made the ceiling 2-5 % higher: run 9 in
	// docs/bench/2026-12-02-h200/notes.md.)
	bufLen := int(min(ps, max(largest, 1)))
	sem := make(chan []byte, parts)
	fill := rand.NewChaCha8([32]byte{1}) // incompressible, like compressed shards
	for range parts {
		b := make([]byte, bufLen)
		fill.Read(b)
		sem <- b
	}
	own := make([][]byte, lanes)
	for l := range own {
		own[l] = make([]byte, bufLen)
		fill.Read(own[l])
	}

	up := &ceilingRun{c: cl, ctx: ctx, sem: sem, ps: ps,
		tr: newTracer(getenv, fmt.Sprintf("ceiling %s: %d objects, part %s, %d parts, %d lanes", location(t.bucket, dir), len(cfg.Sizes), sizeString(ps), parts, lanes))}
	defer up.tr.flush()
	keys := make([]string, len(cfg.Sizes))
	for i := range keys {
		keys[i] = join(dir, strconv.Itoa(i))
	}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Go(func() {
			for !up.failed() {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				up.object(keys[i], cfg.Sizes[i], own[l])
			}
		})
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
	if err := up.firstErr(); err != nil {
		return res, fmt.Errorf("ceiling: %w", err)
	}
	if derr != nil {
		return res, fmt.Errorf("ceiling: remove the measured objects under %s: %w", location(t.bucket, dir), derr)
	}
	res = CeilingResult{Objects: len(cfg.Sizes), Bytes: total, PartSize: ps, Parts: parts, Lanes: lanes,
		Scratch: location(t.bucket, dir), Seconds: secs}
	if secs > 0 {
		res.GBps = float64(total) / secs / 1e9
	}
	return res, nil
}

// scratchPrefix is where a Ceiling for the store at prefix uploads:
// beside the store, not in it (an interrupted measurement must not leave
// keys a later --overwrite would find foreign), under a hidden name
// that says what it is.
func scratchPrefix(prefix, random string) string {
	if prefix == "" {
		return ".zwrite-ceiling-" + random
	}
	parent, name := path.Split(prefix)
	return parent + "." + name + ".zwrite-ceiling-" + random
}

// ceilingRun uploads the objects of one Ceiling: sem bounds the full
// parts in flight as the store's pool bounds its parts.
type ceilingRun struct {
	c   *client
	ctx context.Context
	sem chan []byte // the part buffers not uploading
	ps  int64
	tr  *tracer

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

func (r *ceilingRun) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return r.err
}

func (r *ceilingRun) failed() bool { return r.firstErr() != nil }

// object uploads one object on the calling lane: its requests are the
// lane's, but for the full parts of a multipart upload, which hold a
// slot while they run (the lane waits for a free one, as a store's file
// waits for a pool buffer).
func (r *ceilingRun) object(key string, size int64, own []byte) {
	c, tr := r.c, r.tr
	if size < r.ps {
		defer tr.add(opPut, key, 0, size, tr.begin())
		err := c.do(r.ctx, "put "+key, size, func(ctx context.Context) error {
			_, err := c.core.PutObject(ctx, c.bucket, key, bytes.NewReader(own[:size]), size, "", "", minio.PutObjectOptions{DisableContentSha256: true})
			return err
		})
		if err != nil {
			r.fail(err)
		}
		return
	}
	var id string
	t0 := tr.begin()
	err := c.do(r.ctx, "start upload of "+key, 0, func(ctx context.Context) error {
		var err error
		id, err = c.core.NewMultipartUpload(ctx, c.bucket, key, minio.PutObjectOptions{})
		return err
	})
	tr.add(opInit, key, 0, 0, t0)
	if err != nil {
		r.fail(err)
		return
	}
	n := int((size + r.ps - 1) / r.ps)
	done := make([]minio.CompletePart, n)
	part := func(p int, op traceOp, src []byte) error {
		psz := min(r.ps, size-int64(p)*r.ps)
		defer tr.add(op, key, p+1, psz, tr.begin())
		return c.do(r.ctx, fmt.Sprintf("upload part %d of %s", p+1, key), psz, func(ctx context.Context) error {
			op, err := c.core.PutObjectPart(ctx, c.bucket, key, id, p+1, bytes.NewReader(src[:psz]), psz,
				minio.PutObjectPartOptions{DisableContentSha256: true})
			done[p] = minio.CompletePart{PartNumber: p + 1, ETag: op.ETag}
			return err
		})
	}
	var wg sync.WaitGroup
	for p := range n {
		if r.failed() {
			break
		}
		if int64(p+1)*r.ps > size {
			// The partial last part: sent by the lane, as a store's
			// Commit sends it.
			if err := part(p, opLast, own); err != nil {
				r.fail(err)
			}
			break
		}
		t0 := tr.begin()
		var buf []byte
		select {
		case buf = <-r.sem:
		case <-r.ctx.Done():
		}
		tr.add(opPoolWait, key, p+1, 0, t0)
		if r.ctx.Err() != nil {
			if buf != nil {
				r.sem <- buf
			}
			break
		}
		wg.Go(func() {
			defer func() { r.sem <- buf }()
			if err := part(p, opPart, buf); err != nil {
				r.fail(err)
			}
		})
	}
	wg.Wait()
	if r.failed() {
		return
	}
	t0 = tr.begin()
	err = c.do(r.ctx, "complete upload of "+key, size, func(ctx context.Context) error {
		_, err := c.core.CompleteMultipartUpload(ctx, c.bucket, key, id, done, minio.PutObjectOptions{})
		return err
	})
	tr.add(opComplete, key, n, size, t0)
	if err != nil {
		r.fail(err)
	}
}
