package gpu

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPTXMatchesSource fails when a kernels/*.cu changed without
// regenerating its PTX (make ptx), or a PTX has no source. It needs no GPU.
func TestPTXMatchesSource(t *testing.T) {
	srcs, err := filepath.Glob("kernels/*.cu")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".cu")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			code, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(code)
			want := hex.EncodeToString(sum[:])
			ptx, err := embeddedPTX(name)
			if err != nil {
				t.Fatalf("%s has no PTX: %v", src, err)
			}
			got, ok := ptxSourceHash(ptx)
			if !ok {
				t.Fatalf("ptx/%s.ptx does not start with a \"// sha256 HEX %s.cu\" line; regenerate with make ptx", name, name)
			}
			if got != want {
				t.Fatalf("ptx/%s.ptx was built from a different %s.cu (sha256 %s, source now %s); run make ptx where nvcc exists", name, name, got, want)
			}
		})
	}
	for _, name := range PTXNames() {
		if !seen[name] {
			t.Errorf("ptx/%s.ptx has no kernels/%s.cu", name, name)
		}
	}
}

func TestPTXSourceHash(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"good", "// sha256 " + strings.Repeat("ab", 32) + " tile.cu\n//\n.version 8.0\n", strings.Repeat("ab", 32), true},
		{"missing", ".version 8.0\n", "", false},
		{"short hash", "// sha256 abcd tile.cu\n", "", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ptxSourceHash([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ptxSourceHash(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// ptxSourceHash reads the hash from a PTX file's first line.
func ptxSourceHash(ptx []byte) (string, bool) {
	line, _, _ := bufio.NewReader(bytes.NewReader(ptx)).ReadLine()
	f := strings.Fields(string(line))
	if len(f) < 3 || f[0] != "//" || f[1] != "sha256" || len(f[2]) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(f[2]); err != nil {
		return "", false
	}
	return f[2], true
}
