package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// binary is the zwrite built once for the tests that need a real process
// (signals, shell pipelines, the interop check). In-process tests call
// execute directly, so the race detector sees the whole command.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zwrite-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "zwrite")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-o", binary, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build zwrite for the tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the built binary with stdin and returns exit code, stdout and
// stderr.
func run(t testing.TB, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
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

// mustZw runs zwrite in-process and fails the test unless it exits 0.
func mustZw(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	code, out, stderr := zw(t, context.Background(), stdin, args...)
	if code != 0 {
		t.Fatalf("zwrite %q: exit %d:\n%s", args, code, stderr)
	}
	return out
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int64, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
