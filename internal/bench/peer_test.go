package bench

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/zarr"
)

const peerScript = "../../scripts/peer/tensorstore_bench.py"

// numpyPython finds a python3 that has numpy (the peer script's parts
// before tensorstore need only numpy), or skips saying why.
func numpyPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if err := exec.Command(p, "-c", "import numpy").Run(); err == nil {
			return p
		}
	}
	t.Skip("no python3 with numpy here (apt-get install python3-numpy); the peer script's checks need it")
	return ""
}

// TestPeerFills: the peer script's numpy fills give exactly zwrite's bytes
// (its own --check-fill, against FillFrames output), and the camera fill,
// which has no numpy port, is refused unless its frames come from a file.
func TestPeerFills(t *testing.T) {
	py := numpyPython(t)
	dir := t.TempDir()
	for _, kind := range Fills {
		// Two dtypes: an integer and a float conversion (each run starts
		// a python with numpy, the slow part of this test).
		for _, dt := range []zarr.DType{zarr.Uint16, zarr.Float32} {
			t.Run(kind.String()+"/"+dt.String(), func(t *testing.T) {
				spec := &zarr.Spec{Shape: []int64{0, 2, 24, 40}, DType: dt}
				raw := filepath.Join(dir, kind.String()+dt.String()+".raw")
				buf := make([]byte, 8*spec.FrameBytes())
				if err := FillFrames(kind, spec, 0, buf); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(raw, buf, 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(py, peerScript, "--shape", "0,2,24,40", "--chunk", "8,1,8,8",
					"--shard", "16,2,24,40", "--dtype", dt.String(), "--fill", kind.String(), "--check-fill", raw)
				out, err := cmd.CombinedOutput()
				if kind == FillCamera {
					if err == nil || !strings.Contains(string(out), "no numpy port") {
						t.Fatalf("--check-fill camera: %v, %s; want a refusal", err, out)
					}
					return
				}
				if err != nil || !strings.Contains(string(out), "matches") {
					t.Fatalf("numpy's %s differs from zwrite's: %v\n%s", kind, err, out)
				}
			})
		}
	}
	t.Run("camera without a file", func(t *testing.T) {
		out, err := exec.Command(py, peerScript, "--scenario", "orca2", "--fill", "camera", "--plan").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "zwrite synth --fill camera") {
			t.Fatalf("%v, %s; want a refusal naming zwrite synth", err, out)
		}
	})
}

// TestPeerInput: with --input the peer writes the whole file: frames =
// file size / frame bytes, in whole shard rows (the last one partial), and
// a file that is not whole frames is refused.
func TestPeerInput(t *testing.T) {
	py := numpyPython(t)
	raw := filepath.Join(t.TempDir(), "in.raw")
	spec := &zarr.Spec{Shape: []int64{0, 2, 24, 40}, DType: zarr.Uint16}
	fb := spec.FrameBytes()
	tests := []struct {
		name   string
		frames int64
		extra  int64
		shape  string
		rows   int
		err    string
	}{
		{"whole rows", 32, 0, "0,2,24,40", 2, ""},
		{"partial last row", 37, 0, "5,2,24,40", 3, ""},
		{"partial frame", 3, 7, "0,2,24,40", 0, "not a whole number"},
		{"empty", 0, 0, "0,2,24,40", 0, "not a whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(raw, make([]byte, tc.frames*fb+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, peerScript, "--shape", tc.shape, "--chunk", "8,1,8,8",
				"--shard", "16,2,24,40", "--fill", "camera", "--input", raw, "--plan").Output()
			if tc.err != "" {
				if err == nil || !strings.Contains(stderrOf(err), tc.err) {
					t.Fatalf("%v %s; want an error mentioning %q", err, out, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, stderrOf(err))
			}
			var plan struct {
				Shape      []int64 `json:"shape"`
				Frames     int64   `json:"frames"`
				Rows       int     `json:"rows"`
				InputBytes int64   `json:"input_bytes"`
				Prefill    bool    `json:"prefill"`
			}
			if err := json.Unmarshal(out, &plan); err != nil {
				t.Fatalf("plan %q: %v", out, err)
			}
			if plan.Frames != tc.frames || plan.Shape[0] != tc.frames || plan.Rows != tc.rows ||
				plan.InputBytes != tc.frames*fb || plan.Prefill {
				t.Fatalf("plan %+v; want %d frames in %d rows, %d bytes, not prefilled", plan, tc.frames, tc.rows, tc.frames*fb)
			}
		})
	}
}

// stderrOf is what a failed command wrote to stderr, or the error itself.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return err.Error()
}
