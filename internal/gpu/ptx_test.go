package gpu

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// cuhInclude matches the includes the source hash follows (scripts/ptx.sh
// uses the same pattern): local "*.cuh" headers.
var cuhInclude = regexp.MustCompile(`(?m)^[ \t]*#[ \t]*include[ \t]*"([^"]*\.cuh)"`)

// sourceHash is the hash scripts/ptx.sh records for kernels/name.cu: the
// sha256 of the .cu followed by every .cuh it includes, recursively, depth
// first in order of first inclusion.
func sourceHash(name string) (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	var walk func(f string) error
	walk = func(f string) error {
		if seen[f] {
			return nil
		}
		seen[f] = true
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		h.Write(b)
		for _, m := range cuhInclude.FindAllSubmatch(b, -1) {
			if err := walk(filepath.Dir(f) + "/" + string(m[1])); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(filepath.Join("kernels", name+".cu")); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// kernelNames lists kernels/*.cu.
func kernelNames(t *testing.T) []string {
	t.Helper()
	srcs, err := filepath.Glob("kernels/*.cu")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, src := range srcs {
		names = append(names, strings.TrimSuffix(filepath.Base(src), ".cu"))
	}
	return names
}

// TestPTXMatchesSource fails when a kernels/*.cu (or a header it includes)
// changed without regenerating its PTX (make ptx), or a PTX has no source.
// It needs no GPU.
func TestPTXMatchesSource(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range kernelNames(t) {
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, err := sourceHash(name)
			if err != nil {
				t.Fatal(err)
			}
			ptx, err := embeddedPTX(name)
			if err != nil {
				t.Fatalf("kernels/%s.cu has no PTX: %v", name, err)
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

// requiredCubins are the archs make ptx always builds (the newest arch of
// the nvcc in use comes on top).
var requiredCubins = []string{"sm_80", "sm_86", "sm_89", "sm_90"}

// cubinEntry is one line of ptx/cubins.txt.
type cubinEntry struct {
	arch, module, source, sum string
	size                      int
}

func parseCubinManifest(b []byte) ([]cubinEntry, error) {
	var out []cubinEntry
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d %q: want 5 fields", i+1, line)
		}
		size, err := strconv.Atoi(f[4])
		if err != nil {
			return nil, fmt.Errorf("line %d %q: size: %v", i+1, line, err)
		}
		if _, _, ok := parseArch(f[0]); !ok || len(f[2]) != 64 || len(f[3]) != 64 {
			return nil, fmt.Errorf("line %d %q: want ARCH MODULE SOURCE-SHA256 CUBIN-SHA256 SIZE", i+1, line)
		}
		out = append(out, cubinEntry{arch: f[0], module: f[1], source: f[2], sum: f[3], size: size})
	}
	return out, nil
}

// TestCubinsMatchSource is TestPTXMatchesSource for the embedded cubins:
// every kernel has the required archs, every cubin is in ptx/cubins.txt
// with the hash of the source it was built from (which must be today's)
// and its own hash and size (a cubin replaced without the manifest fails).
func TestCubinsMatchSource(t *testing.T) {
	raw, err := ptxFS.ReadFile("ptx/cubins.txt")
	if err != nil {
		t.Fatalf("no ptx/cubins.txt: run make ptx where nvcc exists (%v)", err)
	}
	entries, err := parseCubinManifest(raw)
	if err != nil {
		t.Fatalf("ptx/cubins.txt: %v", err)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		file := e.module + "." + e.arch + ".cubin"
		listed[file] = true
		t.Run(e.module+"/"+e.arch, func(t *testing.T) {
			want, err := sourceHash(e.module)
			if err != nil {
				t.Fatalf("cubin of a module without source: %v", err)
			}
			if e.source != want {
				t.Fatalf("ptx/%s was built from a different %s.cu (sha256 %s, source now %s); run make ptx where nvcc exists", file, e.module, e.source, want)
			}
			b, err := ptxFS.ReadFile("ptx/" + file)
			if err != nil {
				t.Fatalf("ptx/cubins.txt lists a missing cubin: %v", err)
			}
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != e.sum || len(b) != e.size {
				t.Fatalf("ptx/%s (%d bytes) is not the cubin ptx/cubins.txt records (%d bytes); run make ptx", file, len(b), e.size)
			}
		})
	}
	ents, _ := fs.ReadDir(ptxFS, "ptx")
	for _, d := range ents {
		if strings.HasSuffix(d.Name(), ".cubin") && !listed[d.Name()] {
			t.Errorf("ptx/%s is not in ptx/cubins.txt; run make ptx", d.Name())
		}
	}
	for _, name := range kernelNames(t) {
		for _, arch := range requiredCubins {
			if !listed[name+"."+arch+".cubin"] {
				t.Errorf("kernels/%s.cu has no %s cubin; run make ptx", name, arch)
			}
		}
	}
}

func TestParseCubinManifest(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		name, in string
		n        int
		ok       bool
	}{
		{"good", "sm_80 lz4 " + h + " " + h + " 100\nsm_90 zstd " + h + " " + h + " 7\n", 2, true},
		{"empty", "", 0, true},
		{"short", "sm_80 lz4 " + h + "\n", 0, false},
		{"bad arch", "gfx90 lz4 " + h + " " + h + " 1\n", 0, false},
		{"bad size", "sm_80 lz4 " + h + " " + h + " x\n", 0, false},
		{"short hash", "sm_80 lz4 abcd " + h + " 1\n", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCubinManifest([]byte(tc.in))
			if (err == nil) != tc.ok || len(got) != tc.n {
				t.Fatalf("parseCubinManifest(%q) = %d entries, %v; want %d, ok %v", tc.in, len(got), err, tc.n, tc.ok)
			}
		})
	}
}

// TestPickCubin: the highest minor of the card's major that does not
// exceed the card's, never another major, "" (PTX) when none fits.
func TestPickCubin(t *testing.T) {
	all := []string{"sm_80", "sm_86", "sm_89", "sm_90", "sm_120"}
	tests := []struct {
		name         string
		archs        []string
		major, minor int
		want         string
	}{
		{"A100", all, 8, 0, "sm_80"},
		{"A10 takes sm_86", all, 8, 6, "sm_86"},
		{"Orin 8.7 takes sm_86", all, 8, 7, "sm_86"},
		{"L40 takes sm_89", all, 8, 9, "sm_89"},
		{"H100", all, 9, 0, "sm_90"},
		{"B200 10.0: no cubin of its major", all, 10, 0, ""},
		{"RTX 5090 12.0", all, 12, 0, "sm_120"},
		{"GB10 12.1 runs sm_120", all, 12, 1, "sm_120"},
		{"Turing 7.5: nothing, and the PTX needs 8.0", all, 7, 5, ""},
		{"only sm_80 on an L40", []string{"sm_80"}, 8, 9, "sm_80"},
		{"sm_86 does not run on 8.0", []string{"sm_86", "sm_89"}, 8, 0, ""},
		{"no cross-major down", []string{"sm_80"}, 9, 0, ""},
		{"variants and junk ignored", []string{"sm_90a", "sm_9", "sm_x0", "compute_90", "sm_090"}, 9, 0, ""},
		{"none", nil, 9, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickCubin(tc.archs, tc.major, tc.minor); got != tc.want {
				t.Fatalf("pickCubin(%v, %d.%d) = %q, want %q", tc.archs, tc.major, tc.minor, got, tc.want)
			}
		})
	}
}

// TestEmbeddedCubinsLoadable: every kernel has cubins the picker finds for
// the cards it is built for, and on a GPU the module loads from the cubin
// (no JIT) and says so.
func TestEmbeddedCubinsLoadable(t *testing.T) {
	set := imageSet{fsys: ptxFS, dir: "ptx"}
	for _, name := range kernelNames(t) {
		archs := set.cubinArchs(name)
		sort.Strings(archs)
		for _, cc := range [][2]int{{8, 0}, {8, 6}, {8, 9}, {9, 0}} {
			want := fmt.Sprintf("sm_%d%d", cc[0], cc[1])
			if got := pickCubin(archs, cc[0], cc[1]); got != want {
				t.Errorf("%s on a %d.%d card picks %q from %v, want %s", name, cc[0], cc[1], got, archs, want)
			}
		}
	}
	if err := Available(); err != nil {
		t.Logf("no GPU, so no load check: %v", err)
		return
	}
	if os.Getenv(PTXDirEnv) != "" {
		t.Skipf("%s is set: the loaded images are not the embedded ones", PTXDirEnv)
	}
	d, err := OpenDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	ma, mi := d.ComputeCapability()
	for _, name := range kernelNames(t) {
		m, err := d.LoadModule(name)
		if err != nil {
			t.Fatal(err)
		}
		l := m.Loaded()
		m.Unload()
		t.Logf("%s on %s (%d.%d): %s in %v %s", name, d.Name(), ma, mi, l.Image, l.Load, l.Fallback)
		if arch := pickCubin(set.cubinArchs(name), ma, mi); arch != "" && l.Image != arch+" cubin" {
			t.Errorf("%s: loaded %q (%s), want the %s cubin", name, l.Image, l.Fallback, arch)
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
