package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/sink"
	"github.com/zwrite/zwrite/internal/sink/s3"
	"github.com/zwrite/zwrite/internal/sink/s3/s3test"
	"github.com/zwrite/zwrite/internal/zarr"
)

// The S3 tests run the real binary against a real S3 server (versitygw,
// started by the test on loopback), with the server's credentials and
// endpoint in the environment the way AWS tools take them.

// runS3 runs the binary with srv's environment.
func runS3(t *testing.T, srv *s3test.Server, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	return runEnv(t, srv.EnvList(), stdin, args...)
}

// runEnv runs the binary with the environment env (KEY=VALUE lines).
func runEnv(t *testing.T, env []string, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run zwrite %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.Bytes(), errb.String()
}

func chachaBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// TestS3RoundTrip writes a store to S3 for every codec and blosc shuffle
// (a ragged array of small shards, one PUT each, and one whose shards are
// multipart uploads), reads it back through S3 with cat, verify and info,
// and has the independent reader (zarrita) read the server's backing
// directory, which holds the objects as files.
func TestS3RoundTrip(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	dir := t.TempDir()
	var manifest []interopEntry
	cases := []struct {
		name                string
		shape, chunk, shard string
		dtype               string
		frames              int64
	}{
		{"ragged", "0,33,40", "4,16,16", "8,32,48", "uint16", 21},
		// 24 MiB of incompressible frames, 16 MiB shards: every shard is a
		// multipart upload (two or more 8 MiB parts), the last row partial.
		{"multipart", "0,1024,1024", "8,512,512", "16,1024,1024", "uint8", 24},
	}
	for _, c := range cases {
		raw := chachaBytes(int(c.frames*frameBytes(t, c.shape, c.dtype)), byte(c.frames))
		rawPath := filepath.Join(dir, c.name+".raw")
		if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		shape, _ := parseDims("shape", c.shape)
		shape[0] = c.frames
		for _, cv := range interopCodecs { // every codec and blosc shuffle
			cargs, suffix, zshuffle := cv.flags(t)
			name := c.name + suffix
			args := append([]string{"append", "--shape", c.shape, "--dtype", c.dtype,
				"--chunk", c.chunk, "--shard", c.shard, rawPath}, cargs...)
			url := "s3://bkt/runs/" + name + ".zarr"
			args = append(args, "-o", url)
			t.Run(name, func(t *testing.T) {
				code, _, stderr := runS3(t, srv, nil, args...)
				if code != 0 {
					t.Fatalf("zwrite %q: exit %d:\n%s", args, code, stderr)
				}
				if !strings.Contains(stderr, url) {
					t.Errorf("summary does not name the store:\n%s", stderr)
				}
				code, out, stderr := runS3(t, srv, nil, "cat", url)
				if code != 0 || !bytes.Equal(out, raw) {
					t.Fatalf("cat %s: exit %d, %d bytes (want %d, equal %v):\n%s", url, code, len(out), len(raw), bytes.Equal(out, raw), stderr)
				}
				if code, _, stderr := runS3(t, srv, nil, "verify", url, "--raw", rawPath); code != 0 {
					t.Fatalf("verify: exit %d:\n%s", code, stderr)
				}
				code, out, stderr = runS3(t, srv, nil, "info", url)
				if code != 0 || !strings.Contains(string(out), url) {
					t.Fatalf("info: exit %d:\n%s%s", code, out, stderr)
				}
				// Objects on the server: the array, no lock, nothing else.
				keys := backingKeys(t, srv, "runs/"+name+".zarr")
				if !slices.Contains(keys, "zarr.json") || slices.Contains(keys, sink.LockName) {
					t.Fatalf("objects %v", keys)
				}
			})
			manifest = append(manifest, interopEntry{name, filepath.Join(srv.Root, "bkt", "runs", name+".zarr"), rawPath, cv.codec, zshuffle, c.dtype, shape})
		}
	}
	node, script, ok := interopReader(t)
	if !ok {
		return
	}
	mb, _ := json.Marshal(manifest)
	mpath := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(mpath, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, script, mpath).CombinedOutput()
	t.Logf("zarrita check:\n%s", out)
	if err != nil {
		t.Fatalf("the independent reader disagrees with the input: %v", err)
	}
}

// interopReader finds Node and the interop script, as TestInterop does
// (required under `make test`).
func interopReader(t *testing.T) (node, script string, ok bool) {
	t.Helper()
	script, err := filepath.Abs("../../scripts/interop/check.mjs")
	if err != nil {
		t.Fatal(err)
	}
	required := os.Getenv("ZWRITE_INTEROP") == "require"
	node, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "zarrita"))
	}
	if err != nil {
		if required {
			t.Fatalf("the independent reader is not installed (%v); run `make interop-deps`", err)
		}
		t.Logf("skipping the independent reader: %v", err)
		return "", "", false
	}
	return node, script, true
}

// backingKeys lists the objects under prefix from the server's directory.
func backingKeys(t *testing.T, srv *s3test.Server, prefix string) []string {
	t.Helper()
	root := filepath.Join(srv.Root, "bkt", filepath.FromSlash(prefix))
	var keys []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(keys)
	return keys
}

// TestS3ServerKilled: the server dies while zwrite uploads a shard row.
// zwrite fails (exit 1) saying the endpoint cannot be reached; once the
// server is back, the store holds only the complete shard rows committed
// before, names exactly them, and verifies.
func TestS3ServerKilled(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	const url = "s3://bkt/killed.zarr"
	frame := int(frameBytes(t, "0,1024,1024", "uint8"))
	raw := chachaBytes(52*frame, 7)
	cmd := exec.Command(binary, "append", "-o", url, "--shape", "0,1024,1024", "--dtype", "uint8",
		"--chunk", "4,512,512", "--shard", "16,1024,1024", "--codec", "lz4", "--flush-interval", "100ms")
	cmd.Env = srv.EnvList()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Rows 0 and 1 (32 frames) and half of row 2; wait until the first
	// two are committed (zarr.json names them).
	if _, err := stdin.Write(raw[:40*frame]); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(srv.Root, "bkt", "killed.zarr", "zarr.json")
	deadline := time.Now().Add(60 * time.Second)
	for shape0(t, meta) < 32 {
		if time.Now().After(deadline) {
			t.Fatalf("rows 0 and 1 were never committed:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And until row 2's shard is a multipart upload in progress: the
	// server then dies mid-upload.
	core := minio.Core{Client: srv.Client()}
	for {
		res, err := core.ListMultipartUploads(context.Background(), "bkt", "killed.zarr/c/2/", "", "", "", 10)
		if err == nil && len(res.Uploads) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("row 2 never started uploading (%v):\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Stop()
	stdin.Write(raw[40*frame:])
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("zwrite did not end within 60 s of the server's death:\n%s", stderr.String())
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("zwrite: %v, want exit 1:\n%s", err, stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "cannot reach the S3 endpoint "+srv.Endpoint) || !strings.Contains(msg, "holds the first 32 frames") {
		t.Fatalf("message does not say the endpoint is unreachable and what the store holds:\n%s", msg)
	}
	t.Logf("zwrite said: %s", msg)
	srv.Restart()
	code, _, verr := runS3(t, srv, nil, "verify", url)
	if code != 0 {
		t.Fatalf("verify after restart: exit %d:\n%s", code, verr)
	}
	code, out, cerr := runS3(t, srv, nil, "cat", url)
	if code != 0 || !bytes.Equal(out, raw[:32*frame]) {
		t.Fatalf("cat after restart: exit %d, %d bytes, want the first 32 frames:\n%s", code, len(out), cerr)
	}
	keys := backingKeys(t, srv, "killed.zarr")
	var shards []string
	for _, k := range keys {
		if strings.HasPrefix(k, "c/") {
			shards = append(shards, k)
		}
	}
	if want := []string{"c/0/0/0", "c/1/0/0"}; !slices.Equal(shards, want) {
		t.Fatalf("shards %v, want only the committed rows %v (objects: %v)", shards, want, keys)
	}
	// The dead writer's lock (the server was gone when it ended) is taken
	// over by the next writer of this host, with a note.
	code, _, aerr := runS3(t, srv, raw[:frame], "append", "-o", url, "--overwrite", "--shape", "0,1024,1024", "--dtype", "uint8", "--chunk", "4,512,512")
	if code != 0 || (slices.Contains(keys, sink.LockName) && !strings.Contains(aerr, "no longer running")) {
		t.Fatalf("append over the killed run's store: exit %d:\n%s", code, aerr)
	}
}

// shape0 reads shape[0] of the zarr.json at path (-1 when absent).
func shape0(t *testing.T, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	var m struct {
		Shape []int64 `json:"shape"`
	}
	if json.Unmarshal(b, &m) != nil || len(m.Shape) == 0 {
		return -1
	}
	return m.Shape[0]
}

// TestS3Refusals: what is wrong with an S3 output or store is said in
// words, with the flag or setting that changes it, and nothing is
// written: a prefix holding other data (--overwrite refused, listing it),
// wrong credentials, a missing bucket, an unreachable endpoint, a node
// another zwrite is writing.
func TestS3Refusals(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	c := srv.Client()
	for k, v := range map[string]string{"data/zarr.json": `{"zarr_format": 3, "node_type": "array"}`, "data/c/0/0": "x", "data/notes.txt": "mine",
		"busy/.zwrite-lock": string(busyLock()), "cut/.zwrite-removing": "", "cut/c/0/0": "x"} {
		if _, err := c.PutObject(context.Background(), "bkt", k, strings.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	raw := make([]byte, 4*4*2)
	app := []string{"append", "--shape", "0,4,4", "--dtype", "u16", "--chunk", "1,4,4"}
	tests := []struct {
		name string
		env  []string // extra KEY=VALUE
		args []string
		code int
		want []string
	}{
		{"not a store", nil, append(app, "-o", "s3://bkt/data", "--overwrite"), exitUsage,
			[]string{"s3://bkt/data holds 1 entries that are not part of a Zarr store and would be lost: notes.txt"}},
		{"exists", nil, append(app, "-o", "s3://bkt/data"), exitUsage, []string{"already exists", "--overwrite"}},
		{"wrong secret", []string{"AWS_SECRET_ACCESS_KEY=wrong"}, append(app, "-o", "s3://bkt/new"), 1,
			[]string{"refused the credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (SignatureDoesNotMatch)"}},
		{"missing bucket", nil, append(app, "-o", "s3://nobucket/new"), 1, []string{`bucket "nobucket" does not exist`, "create it first"}},
		{"unreachable", nil, append(app, "-o", "s3://bkt/new", "--s3-endpoint", "http://127.0.0.1:1"), 1,
			[]string{"cannot reach the S3 endpoint http://127.0.0.1:1 (from the endpoint given)", "connection refused", "--s3-endpoint names another"}},
		{"locked", nil, append(app, "-o", "s3://bkt/busy"), 1, []string{"s3://bkt/busy is being written by another zwrite"}},
		{"resume of a removal cut short", nil, append(app, "-o", "s3://bkt/cut", "--resume"), exitUsage,
			[]string{"began to remove it and did not finish", "with --overwrite instead of --resume"}},
		// 1 MiB shards: up to 2 MiB of buffer each, two rows open.
		{"pending below the upload buffers", nil, []string{"append", "--shape", "0,1024,1024", "--dtype", "u8", "--chunk", "1,1024,1024",
			"-o", "s3://bkt/new", "--max-pending", "1MiB"}, exitUsage,
			[]string{"--max-pending: a pending bound of", "of upload buffers", "allow at least"}},
		{"endpoint for a directory", nil, append(app, "-o", filepath.Join(t.TempDir(), "d"), "--s3-endpoint", "http://x:1"), exitUsage, []string{"--s3-endpoint is for s3:// outputs"}},
		{"read endpoint for a directory", nil, []string{"info", t.TempDir(), "--s3-endpoint", "http://x:1"}, exitUsage, []string{"--s3-endpoint is for s3:// stores"}},
		{"cat of nothing", nil, []string{"cat", "s3://bkt/nothing"}, 1, []string{"has no zarr.json"}},
		{"verify unreachable", nil, []string{"verify", "s3://bkt/data", "--s3-endpoint", "http://127.0.0.1:1"}, 1, []string{"cannot reach the S3 endpoint", "--s3-endpoint names another"}},
		{"info wrong key", []string{"AWS_ACCESS_KEY_ID=nobody"}, []string{"info", "s3://bkt/data"}, 1, []string{"refused the credentials"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := backingKeys(t, srv, "")
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = append(srv.EnvList(), tc.env...)
			cmd.Stdin = bytes.NewReader(raw)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr
			start := time.Now()
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, stderr.String())
			}
			if after := backingKeys(t, srv, ""); !slices.Equal(after, before) {
				t.Errorf("a refused run changed the bucket: %v, was %v", after, before)
			}
			t.Logf("%s: %v", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// busyLock is a lock of this host held by a live zwrite: this test
// process (its command line names zwrite: zwrite.test).
func busyLock() []byte {
	l := sink.SelfLockInfo()
	l.Command = fmt.Sprintf("zwrite append (pid %d)", os.Getpid())
	return l.Bytes()
}

// TestMaxShardBytes: the bound append gives object storage holds every
// shard of incompressible data (each codec's worst case: blosc's header
// with every shuffle, zstd's frame and block headers with our encoder and
// klauspost's), and is tight (within 1%), so part sizes are not chosen
// for shards ten times larger.
func TestMaxShardBytes(t *testing.T) {
	dir := t.TempDir()
	raw := chachaBytes(20*256*64*2, 3) // no edge chunks: padding would compress
	rawPath := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"none", []string{"--codec", "none"}},
		{"zstd", []string{"--codec", "zstd"}},
		{"zstd-level19", []string{"--codec", "zstd", "--level", "19"}},
		{"lz4-byte", []string{"--codec", "lz4", "--shuffle", "byte"}},
		{"lz4-bit", []string{"--codec", "lz4", "--shuffle", "bit"}},
		{"lz4-none", []string{"--codec", "lz4", "--shuffle", "none"}},
		{"blosc-zstd-byte", []string{"--codec", "blosc-zstd", "--shuffle", "byte"}},
		{"blosc-zstd-bit", []string{"--codec", "blosc-zstd", "--shuffle", "bit"}},
		{"blosc-zstd-none", []string{"--codec", "blosc-zstd", "--shuffle", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := filepath.Join(dir, tc.name+".zarr")
			args := append([]string{"append", "-o", store, "--shape", "0,256,64", "--dtype", "u16", "--chunk", "4,128,64", "--shard", "8,256,64", rawPath}, tc.flags...)
			mustZw(t, nil, args...)
			spec := appendSpec(t, args)
			bound, err := maxShardBytes(&spec)
			if err != nil {
				t.Fatal(err)
			}
			var largest int64
			filepath.WalkDir(filepath.Join(store, "c"), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					fi, _ := d.Info()
					largest = max(largest, fi.Size())
				}
				return nil
			})
			if largest == 0 || largest > bound || float64(bound-largest) > 0.01*float64(bound) {
				t.Fatalf("largest shard %d bytes, bound %d", largest, bound)
			}
		})
	}
}

// appendSpec is the spec append's validate makes of args (append's
// command line, "append" first).
func appendSpec(t *testing.T, args []string) zarr.Spec {
	t.Helper()
	o := &appendOptions{}
	fs := pflag.NewFlagSet("append", pflag.ContinueOnError)
	o.addFlags(fs, stdio{err: io.Discard})
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(fs); err != nil {
		t.Fatal(err)
	}
	return o.spec
}

// TestS3ResumePartSize: a resume of an s3:// store uploads in the parts
// the run that made it chose, sized from the store's shards: shards of up
// to 156 GiB (160,000 frames of 1 MiB, uncompressed) need parts above the
// 8 MiB default (10,000 of which hold 78 GiB), and a resume that took the
// default would fail at part 10,001 of its first large shard. The part
// size is read from the header ZWRITE_S3_TRACE writes.
func TestS3ResumePartSize(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	dir := t.TempDir()
	frame := int(frameBytes(t, "0,1024,1024", "uint8"))
	raw := chachaBytes(24*frame, 17)
	first, second := filepath.Join(dir, "first.raw"), filepath.Join(dir, "second.raw")
	writeFile(t, first, raw[:16*frame])
	writeFile(t, second, raw[16*frame:])
	const url = "s3://bkt/huge.zarr"
	create := []string{"append", "-o", url, "--shape", "0,1024,1024", "--dtype", "u8", "--chunk", "8,1024,1024", "--shard", "160000,1024,1024", "--codec", "none", first}
	spec := appendSpec(t, create)
	bound, err := maxShardBytes(&spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s3.PartSize(bound)
	if err != nil {
		t.Fatal(err)
	}
	if def, _ := s3.PartSize(0); want <= def {
		t.Fatalf("the test's shards (at most %d bytes) fit the default parts of %d bytes: it would show nothing", bound, def)
	}
	for _, run := range []struct {
		name string
		args []string
	}{
		{"create", create},
		{"resume", []string{"append", "-o", url, "--resume", second}},
	} {
		trace := filepath.Join(dir, run.name+".trace")
		code, _, stderr := runEnv(t, append(srv.EnvList(), s3.TraceEnv+"="+trace), nil, run.args...)
		if code != 0 {
			t.Fatalf("%s: zwrite %q: exit %d:\n%s", run.name, run.args, code, stderr)
		}
		if got := tracePartSize(t, trace); got != want {
			t.Errorf("%s: parts of %d bytes, want %d (for shards of up to %d bytes)", run.name, got, want, bound)
		}
	}
	code, out, stderr := runS3(t, srv, nil, "cat", url)
	if code != 0 || !bytes.Equal(out, raw) {
		t.Fatalf("cat: exit %d, %d bytes (want %d, equal %v):\n%s", code, len(out), len(raw), bytes.Equal(out, raw), stderr)
	}
}

// tracePartSize reads the part size from the sink's header line of an
// upload trace ("=== sink s3://...: part 17.0 MiB, ...").
func tracePartSize(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(b), "\n")
	m := regexp.MustCompile(`^=== sink .*: part ([0-9.]+) (KiB|MiB|GiB),`).FindStringSubmatch(head)
	if m == nil {
		t.Fatalf("trace %s has no sink header with a part size: %q", path, head)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]float64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	return int64(v * unit)
}

// TestS3Profile: credentials and endpoint from a named profile in
// ~/.aws (no AWS variable but AWS_PROFILE and HOME): a store goes to the
// real server and back; a profile that is in neither file is refused in
// words, before anything is written. The default profile holds wrong
// keys, so a run that ignored AWS_PROFILE would be refused too.
func TestS3Profile(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	home := t.TempDir()
	aws := filepath.Join(home, ".aws")
	if err := os.Mkdir(aws, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(aws, "credentials"), []byte(fmt.Sprintf(
		"[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n[lab]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		s3test.AccessKey, s3test.SecretKey)))
	writeFile(t, filepath.Join(aws, "config"), []byte(fmt.Sprintf(
		"[profile lab]\nregion = %s\nendpoint_url = %s\n", s3test.Region, srv.Endpoint)))
	// The test's environment without any AWS setting (unset, not empty)
	// or HOME; then the profile.
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && !slices.Contains(s3test.ClearedEnv, k) {
			base = append(base, kv)
		}
	}
	env := func(profile string) []string {
		return append(slices.Clip(base), "HOME="+home, "AWS_PROFILE="+profile)
	}

	raw := chachaBytes(6*16*16*2, 9)
	const url = "s3://bkt/profile.zarr"
	if code, _, stderr := runEnv(t, env("lab"), raw, "append", "-o", url, "--shape", "0,16,16", "--dtype", "u16", "--chunk", "2,16,16", "--shard", "4,16,16"); code != 0 {
		t.Fatalf("append with AWS_PROFILE=lab: exit %d:\n%s", code, stderr)
	}
	if code, out, stderr := runEnv(t, env("lab"), nil, "cat", url); code != 0 || !bytes.Equal(out, raw) {
		t.Fatalf("cat with AWS_PROFILE=lab: exit %d, %d bytes (want %d):\n%s", code, len(out), len(raw), stderr)
	}

	missing := fmt.Sprintf(`AWS profile "nosuch" is in neither %s nor %s; check AWS_PROFILE`, filepath.Join(aws, "credentials"), filepath.Join(aws, "config"))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"append", []string{"append", "-o", "s3://bkt/other.zarr", "--shape", "0,16,16", "--dtype", "u16", "--chunk", "2,16,16"}},
		{"resume", []string{"append", "-o", url, "--resume"}},
		{"cat", []string{"cat", url}},
	} {
		t.Run("missing profile/"+tc.name, func(t *testing.T) {
			before := backingKeys(t, srv, "")
			code, _, stderr := runEnv(t, env("nosuch"), raw, tc.args...)
			if code != 1 || !strings.Contains(stderr, missing) {
				t.Errorf("exit %d, want 1 and a message with %q:\n%s", code, missing, stderr)
			}
			if after := backingKeys(t, srv, ""); !slices.Equal(after, before) {
				t.Errorf("a refused run changed the bucket: %v, was %v", after, before)
			}
		})
	}
}

// TestS3InProcess runs append and cat in this process (so the race
// detector sees the pipeline's I/O lanes driving the S3 sink): several
// shards of a row written at once, each a multipart upload, over more
// batches than the pipeline's depth.
func TestS3InProcess(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("bkt")
	srv.SetEnv(t)
	raw := chachaBytes(36*512*1024, 11) // 36 frames of 512 KiB: 2 shards of 8 MiB + per row
	const url = "s3://bkt/inproc.zarr"
	mustZw(t, raw, "append", "-o", url, "--shape", "0,512,1024", "--dtype", "u8", "--chunk", "4,128,256",
		"--shard", "32,256,1024", "--codec", "zstd", "--depth", "3", "--io-workers", "2")
	if out := mustZw(t, nil, "cat", url); out != string(raw) {
		t.Fatalf("cat: %d bytes, want %d", len(out), len(raw))
	}
	mustZw(t, nil, "verify", url)
}
