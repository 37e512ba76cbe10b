package s3

import (
	"context"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
)

// testTuning keeps the tests quick: few tries, short waits, small pool.
var testTuning = tuning{
	tries:        4, // not probeTries, so that the probe's own count shows
	backoff:      10 * time.Millisecond,
	maxBackoff:   50 * time.Millisecond,
	tryTimeout:   10 * time.Second,
	minRate:      1 << 20,
	cleanup:      3 * time.Second,
	parts:        4,
	maxPoolBytes: 1 << 30,
}

// testEnv is a real versitygw with one bucket, and the environment that
// names it.
type testEnv struct {
	srv    *s3test.Server
	bucket string
	env    map[string]string
	tune   tuning
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	env := srv.Env()
	env["HOME"] = t.TempDir() // no ~/.aws of the developer's
	return &testEnv{srv: srv, bucket: "bkt", env: env, tune: testTuning}
}

func (e *testEnv) getenv(k string) string { return e.env[k] }

// with returns a copy of e whose environment has the changes kv.
func (e *testEnv) with(kv ...string) *testEnv {
	c := *e
	c.env = map[string]string{}
	for k, v := range e.env {
		c.env[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		c.env[kv[i]] = kv[i+1]
	}
	return &c
}

func (e *testEnv) url(prefix string) *url.URL {
	u, err := url.Parse(location(e.bucket, prefix))
	if err != nil {
		panic(err)
	}
	return u
}

func (e *testEnv) open(prefix string, o sink.Options) (sink.Store, error) {
	return openStore(e.url(prefix), o, e.getenv, e.tune)
}

func (e *testEnv) mustOpen(t *testing.T, prefix string, o sink.Options) *store {
	t.Helper()
	st, err := e.open(prefix, o)
	if err != nil {
		t.Fatalf("open %s: %v", prefix, err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*store)
}

// put writes objects directly (not through zwrite): key -> content.
func (e *testEnv) put(t *testing.T, objs map[string]string) {
	t.Helper()
	c := e.srv.Client()
	for k, v := range objs {
		if _, err := c.PutObject(context.Background(), e.bucket, k, strings.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

// keys lists every object under prefix (relative keys, sorted), through
// the backing directory, so that it does not trust our client.
func (e *testEnv) keys(t *testing.T, prefix string) []string {
	t.Helper()
	root := filepath.Join(e.srv.Root, e.bucket)
	var out []string
	filepath.WalkDir(filepath.Join(root, filepath.FromSlash(prefix)), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && strings.HasPrefix(d.Name(), ".sgwtmp") {
			return filepath.SkipDir // versitygw's own (unfinished uploads)
		}
		if d.Type().IsRegular() {
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(rel, prefix), "/"))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// read returns an object's content from the backing directory.
func (e *testEnv) read(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.srv.Root, e.bucket, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uploads lists the unfinished multipart uploads in the bucket.
func (e *testEnv) uploads(t *testing.T) []string {
	t.Helper()
	c := minio.Core{Client: e.srv.Client()}
	res, err := c.ListMultipartUploads(context.Background(), e.bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range res.Uploads {
		out = append(out, u.Key)
	}
	return out
}

// waitNoUploads waits (bounded) for background aborts to reach the
// server, and fails if any upload is left.
func (e *testEnv) waitNoUploads(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := e.uploads(t)
		if len(u) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("unfinished uploads left on the server: %v", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0], key[1] = byte(seed), byte(n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writeAll writes data to f in pieces of random sizes up to maxPiece.
func writeAll(f sink.File, data []byte, maxPiece int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(maxPiece))
		if _, err := f.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// within runs fn and fails the test if it takes longer than d (a hang
// bound, not a speed claim).
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
