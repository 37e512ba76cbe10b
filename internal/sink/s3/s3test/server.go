// Package s3test starts a real S3 server for tests: versitygw (a Go
// module, built once with `go install` into the user's cache directory
// and reused) serving a temp directory with its posix backend on a free
// loopback port, with root credentials set by the test. Proxy puts an
// HTTP proxy between client and server that can stall, throttle or
// answer 503 SlowDown. Tests skip, saying why, only where versitygw can
// be neither found nor built (no network and no cache).
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Module and Version are the versitygw the tests run.
const (
	Module  = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
)

// Credentials and region of every server Start makes.
const (
	AccessKey = "zwrite-test"
	SecretKey = "zwrite-test-secret"
	Region    = "us-east-1"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the versitygw binary: $ZWRITE_VERSITYGW if set, else
// the cached build, building it first if needed (a minute or two, once
// per machine). It skips the test when that is impossible.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	if binErr != nil {
		t.Skipf("no S3 server for this test: %v", binErr)
	}
	return binPath
}

func findOrBuild() (string, error) {
	if p := os.Getenv("ZWRITE_VERSITYGW"); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to build versitygw into: %w", err)
	}
	dir := filepath.Join(cache, "zwrite-test", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Test binaries of several packages may get here at once: one builds,
	// the others wait for it.
	lf, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", Module+"@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=-buildvcs=false")
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return "", fmt.Errorf("go install %s@%s failed (no network and no cached build in %s?): %v\n%s", Module, Version, dir, err, tail)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's URL (http://127.0.0.1:PORT).
	Endpoint string
	// Root is the backing directory: object KEY of bucket B is the file
	// Root/B/KEY.
	Root string

	t    testing.TB
	bin  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

// Start starts a server serving a new temp directory; it is stopped
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{t: t, bin: bin, Root: t.TempDir(), log: &syncBuffer{}}
	for try := 0; ; try++ {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.addr = addr
		s.Endpoint = "http://" + addr
		err = s.start()
		if err == nil {
			break
		}
		if try >= 3 {
			t.Fatalf("start versitygw: %v\n%s", err, s.log.String())
		}
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs the server on s.addr and waits until it answers.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "--port", s.addr, "--access", AccessKey, "--secret", SecretKey,
		"--region", Region, "--quiet", "posix", s.Root)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited at start")
		default:
		}
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("versitygw did not answer within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: like a crash, nothing is flushed) and
// waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for try := 0; try < 50; try++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may still be held
	}
	s.t.Fatalf("restart versitygw: %v\n%s", err, s.log.String())
}

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Client is a minio-go client for the server (for setting up tests).
func (s *Server) Client() *minio.Client {
	s.t.Helper()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(name string) {
	s.t.Helper()
	if err := s.Client().MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: Region}); err != nil {
		s.t.Fatalf("make bucket %s: %v", name, err)
	}
}

// Env is the environment that points AWS tools (and zwrite) at the
// server with its root credentials, clearing every other AWS setting.
func (s *Server) Env() map[string]string {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     AccessKey,
		"AWS_SECRET_ACCESS_KEY": SecretKey,
		"AWS_REGION":            Region,
		"AWS_ENDPOINT_URL":      s.Endpoint,
	}
	for _, k := range ClearedEnv {
		if _, ok := env[k]; !ok {
			env[k] = ""
		}
	}
	return env
}

// ClearedEnv are the AWS variables Env sets (empty when not its own), so
// that a developer's own AWS settings never reach a test.
var ClearedEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
}

// SetEnv sets Env for the rest of the test (t.Setenv: not with
// t.Parallel).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	// No ~/.aws of the developer's either.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
}

// EnvList is Env as KEY=VALUE lines for exec.Cmd.Env, appended to the
// rest of os.Environ.
func (s *Server) EnvList() []string {
	env := s.Env()
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	none := filepath.Join(s.Root, ".no-aws-settings")
	return append(out, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_CONFIG_FILE="+none)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ErrStopped is what a stalled proxy request gets when the proxy closes.
var ErrStopped = errors.New("proxy stopped")
