package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// tuning holds the knobs of the client and the store; the zero value is
// never used (defaultTuning), tests shrink the waits.
type tuning struct {
	// tries is how often a request is sent before its error is final;
	// only transient errors (5xx, SlowDown, resets, timeouts) are retried.
	tries int
	// backoff is the wait after the first failure; it doubles per try up
	// to maxBackoff, with jitter (AWS's advice for SlowDown).
	backoff, maxBackoff time.Duration
	// tryTimeout bounds one request with no body; a request with a body
	// gets size/minRate more. A server that accepts a request and never
	// answers is then a transient error, not a hang.
	tryTimeout time.Duration
	minRate    int64
	// cleanup bounds the requests made while giving up (aborting an
	// upload, removing what a failed run wrote, releasing the lock), so a
	// dead server cannot hold the end of a run for long.
	cleanup time.Duration
	// parts is the number of part buffers the store shares between its
	// files: at most this many parts are uploaded at once (see pool).
	parts int
	// maxPoolBytes caps parts*partSize: very large parts get fewer buffers.
	maxPoolBytes int64
}

// defaultTuning: 6 tries with waits of about 0.2, 0.4, 0.8, 1.6 and 3.2 s
// (about 6 s in all, jittered) ride out a restarting server or a burst of
// SlowDown and still report a dead server within seconds. 16 parts of
// 8 MiB (the default part size) are 128 MiB of buffers, enough to keep a
// 10 Gbit/s link busy at 10 ms round trips.
var defaultTuning = tuning{
	tries:        6,
	backoff:      200 * time.Millisecond,
	maxBackoff:   5 * time.Second,
	tryTimeout:   60 * time.Second,
	minRate:      1 << 20,
	cleanup:      10 * time.Second,
	parts:        16,
	maxPoolBytes: 1 << 30,
}

// timeout bounds one try of a request carrying size bytes.
func (t *tuning) timeout(size int64) time.Duration {
	d := t.tryTimeout
	if t.minRate > 0 && size > 0 {
		d += time.Duration(float64(size) / float64(t.minRate) * float64(time.Second))
	}
	return d
}

// wait is the backoff before try n+1 (n >= 1): base*2^(n-1), capped,
// half of it jittered.
func (t *tuning) wait(n int) time.Duration {
	d := t.backoff << min(n-1, 20)
	if d > t.maxBackoff || d <= 0 {
		d = t.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// client is a minio-go client bound to one bucket, with zwrite's retry
// policy and error messages.
type client struct {
	core   *minio.Core
	cfg    *config
	bucket string
	tune   tuning
}

func newClient(cfg *config, bucket string, tune tuning) (*client, error) {
	tr, err := minio.DefaultTransport(cfg.secure)
	if err != nil {
		return nil, err
	}
	// Every part in flight and every I/O lane needs its own connection;
	// minio-go's default keeps 16 idle per host, which would make a busy
	// run reconnect all the time.
	tr.MaxIdleConnsPerHost = 256
	tr.MaxIdleConns = 256
	var creds *credentials.Credentials
	if cfg.anonymous {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	} else {
		creds = credentials.NewStaticV4(cfg.access, cfg.secret, cfg.token)
	}
	host, lookup := cfg.host, minio.BucketLookupPath
	if !cfg.custom() {
		host, lookup = "s3.amazonaws.com", minio.BucketLookupAuto
	}
	core, err := minio.NewCore(host, &minio.Options{
		Creds:        creds,
		Secure:       cfg.secure,
		Transport:    tr,
		Region:       cfg.region,
		BucketLookup: lookup,
		// Retries are ours (do): they know which errors are transient,
		// how long to wait, and say how often they tried.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", cfg.endpoint, err)
	}
	core.SetAppInfo("zwrite", "")
	return &client{core: core, cfg: cfg, bucket: bucket, tune: tune}, nil
}

// cleanupTries is how often a request made while giving up is tried: a
// server that failed the run is likely down, and the end of the run must
// not wait out the whole retry schedule once more per request. probeTries
// is for the first request of a run: a wrong endpoint is reported within
// a second, a server still starting gets a moment.
const (
	cleanupTries = 2
	probeTries   = 3
)

// withTries is c trying each request at most n times.
func (c *client) withTries(n int) *client {
	q := *c
	q.tune.tries = min(q.tune.tries, n)
	return &q
}

// errAborted is what a request returns once its file or run was aborted.
var errAborted = errors.New("aborted")

// do runs fn, a request carrying size bytes, until it succeeds, fails
// with an error that is not transient, or has been tried tune.tries
// times. Each try gets its own timeout; cancelling ctx ends it at once
// with errAborted. The error names what (e.g. "put c/0/1 part 3") and
// says what went wrong in words.
func (c *client) do(ctx context.Context, what string, size int64, fn func(ctx context.Context) error) error {
	return c.doTries(ctx, what, size, c.tune.tries, fn)
}

func (c *client) doTries(ctx context.Context, what string, size int64, tries int, fn func(ctx context.Context) error) error {
	start := time.Now()
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, c.tune.timeout(size))
		err := fn(tctx)
		timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errAborted
		}
		if timedOut {
			err = &timeoutError{after: c.tune.timeout(size)}
		}
		if !transient(err) || try >= tries {
			return c.explain(what, err, try, time.Since(start))
		}
		t := time.NewTimer(c.tune.wait(try))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errAborted
		}
	}
}

// timeoutError: a try got no (complete) answer in time.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer within %v", e.after.Round(time.Second))
}

// transient reports whether a request that failed with err may succeed
// when sent again: the server was busy or failing (5xx, SlowDown and its
// kin, 408, 429), the connection broke or could not be made, or the try
// timed out. Refusals (credentials, permissions, missing bucket, bad
// requests) and unknown host names are final.
func transient(err error) bool {
	var te *timeoutError
	if errors.As(err, &te) {
		return true
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		switch er.Code {
		case "SlowDown", "SlowDownWrite", "SlowDownRead", "RequestTimeout", "InternalError",
			"ServiceUnavailable", "Throttling", "ThrottlingException", "RequestLimitExceeded",
			"RequestThrottled", "RequestTimeTooSkewed":
			return true
		}
		return er.StatusCode >= 500 || er.StatusCode == 408 || er.StatusCode == 429
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// unreachable reports whether err means the server could not be talked
// to at all (rather than answering with an error).
func unreachable(err error) bool {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		return false
	}
	var te *timeoutError
	var ne net.Error
	return errors.As(err, &te) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// EndpointError: the S3 endpoint could not be reached (refused, reset,
// no answer, unknown host).
type EndpointError struct {
	Endpoint string // the endpoint URL
	From     string // where it was configured ("" for AWS's default)
	Err      error
}

func (e *EndpointError) Error() string {
	from := ""
	if e.From != "" {
		from = " (from " + e.From + ")"
	}
	return fmt.Sprintf("cannot reach the S3 endpoint %s%s: %v; check that the server is running and the endpoint is right", e.Endpoint, from, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }

// CredentialsError: the server refused the credentials.
type CredentialsError struct {
	Endpoint string
	From     string // where the credentials came from
	Code     string // the server's error code (InvalidAccessKeyId, ...)
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("S3 at %s refused the credentials from %s (%s); check the access key ID and secret access key (and AWS_SESSION_TOKEN for temporary ones)", e.Endpoint, e.From, e.Code)
}

// BucketError: the bucket does not exist.
type BucketError struct{ Bucket, Endpoint string }

func (e *BucketError) Error() string {
	return fmt.Sprintf("bucket %q does not exist at %s; create it first (e.g. aws s3 mb s3://%s), or check the bucket name and the endpoint", e.Bucket, e.Endpoint, e.Bucket)
}

// explain turns a request's final error into one that says what to do.
func (c *client) explain(what string, err error, tries int, took time.Duration) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		switch er.Code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
			"InvalidSecurity", "AuthorizationHeaderMalformed", "InvalidClientTokenId",
			"XAdminUserNotFound": // versitygw's answer to an unknown access key
			return fmt.Errorf("%s: %w", what, &CredentialsError{Endpoint: c.cfg.endpoint, From: c.cfg.credsFrom, Code: er.Code})
		case "NoSuchBucket":
			return fmt.Errorf("%s: %w", what, &BucketError{Bucket: c.bucket, Endpoint: c.cfg.endpoint})
		case "AccessDenied":
			return fmt.Errorf("%s: access denied (%s) for the credentials from %s; they need permission to list, read, write and delete objects in bucket %s", what, describe(err), c.cfg.credsFrom, c.bucket)
		}
	}
	retried := ""
	if tries > 1 {
		retried = fmt.Sprintf(", still after %d tries over %v", tries, took.Round(100*time.Millisecond))
	}
	if unreachable(err) {
		return fmt.Errorf("%s: %w", what, &EndpointError{Endpoint: c.cfg.endpoint, From: c.cfg.endpointFrom, Err: errors.New(describe(err) + retried)})
	}
	if transient(err) {
		return &reqError{fmt.Sprintf("%s: the server is busy or failing: %s%s; try again later", what, describe(err), retried), err}
	}
	return &reqError{what + ": " + describe(err), err}
}

// reqError is a request's final error in words, wrapping the client's.
type reqError struct {
	msg string
	err error
}

func (e *reqError) Error() string { return e.msg }
func (e *reqError) Unwrap() error { return e.err }

// describe says in words what went wrong: the server's error code and
// message, or the transport's error without the request URL (long, and
// full of signature parameters).
func describe(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		s := er.Code
		if s == "" {
			s = strings.ToLower(fmt.Sprint(er.StatusCode))
		}
		if er.Message != "" && er.Message != er.Code {
			s += ": " + strings.TrimSuffix(er.Message, ".")
		}
		return fmt.Sprintf("%s (HTTP %d)", s, er.StatusCode)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + " " + oe.Net + " " + addrString(oe.Addr) + ": " + oe.Err.Error()
	}
	return err.Error()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// isCode reports whether err is the server's error code.
func isCode(err error, codes ...string) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	for _, c := range codes {
		if er.Code == c {
			return true
		}
	}
	return false
}

// notFound reports whether err says the object does not exist.
func notFound(err error) bool {
	var er minio.ErrorResponse
	// By code only: servers answer 404 for other things too (versitygw:
	// an unknown access key), which must not read as "no such object".
	return errors.As(err, &er) && (er.Code == "NoSuchKey" || er.Code == "NotFound")
}
