package zarr

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// omeChecker returns node and the path of scripts/interop/ome_check.mjs,
// or skips (fails under ZWRITE_INTEROP=require, as `make test` sets) when
// Node or the npm packages are missing.
func omeChecker(t *testing.T) (node, script string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(interopDir, "ome_check.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	required := os.Getenv("ZWRITE_INTEROP") == "require"
	node, err = exec.LookPath("node")
	if err != nil {
		if required {
			t.Fatal("node is not installed; the OME-Zarr schema check needs Node.js")
		}
		t.Skip("node is not installed; run `make test` for the OME-Zarr schema check")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "ajv")); err != nil {
		if required {
			t.Fatal("scripts/interop/node_modules/ajv is missing; run `make interop-deps` (npm ci)")
		}
		t.Skip("scripts/interop/node_modules/ajv is missing; run `make interop-deps` for the OME-Zarr schema check")
	}
	return node, script
}

// writeImage writes img's group zarr.json into dir and, for each level, an
// array zarr.json with dimension_names = the axis names and the shape the
// level has (level 0's shape, halved rounding up along reduced axes).
func writeImage(t *testing.T, dir string, img *Image, shape []int64) string {
	t.Helper()
	b, err := MarshalImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return writeImageJSON(t, dir, b, img, shape)
}

func writeImageJSON(t *testing.T, dir string, group []byte, img *Image, shape []int64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "zarr.json")
	if err := os.WriteFile(file, group, 0o644); err != nil {
		t.Fatal(err)
	}
	ms := img.Multiscales[0]
	var names []string
	for _, a := range ms.Axes {
		names = append(names, a.Name)
	}
	cur := append([]int64(nil), shape...)
	if cur[0] == 0 {
		cur[0] = 5 // a growing dim 0 that has received 5 frames
	}
	for k, ds := range ms.Datasets {
		if k > 0 {
			for d, r := range ms.Downsampling.Reduce {
				if r {
					cur[d] = (cur[d] + 1) / 2
				}
			}
		}
		chunk := append([]int64{1}, cur[1:]...)
		s := Spec{Shape: append([]int64{0}, cur[1:]...), DType: Uint16, Chunk: chunk, Shard: chunk,
			Codec: CodecZstd, Level: 1, DimNames: names}
		ab, err := MarshalArray(&s, cur[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, ds.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ds.Path, "zarr.json"), ab, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

// TestImageSchema has ajv validate the group zarr.json of every BuildImage
// case against the OME-Zarr 0.5 image and strict-image schemas (the real
// schemas, copied into scripts/interop/ngff-0.5), with the level arrays'
// dimension_names and shapes, after the checker has run the suites that
// prove it says yes and no. Then it shows the check can fail.
func TestImageSchema(t *testing.T) {
	node, script := omeChecker(t)
	dir := t.TempDir()
	var files []string
	cases := map[string]string{}
	for i, tc := range imageCases() {
		img, err := BuildImage(tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		f := writeImage(t, filepath.Join(dir, fmt.Sprintf("case%03d", i)), img, tc.o.Shape)
		files = append(files, f)
		cases[f] = tc.name
	}
	out, err := exec.Command(node, append([]string{script, "--arrays"}, files...)...).CombinedOutput()
	if err != nil {
		var bad []string
		for _, line := range strings.Split(string(out), "\n") {
			for f, name := range cases {
				if strings.HasPrefix(line, f+":") && !strings.Contains(line, "valid OME-Zarr") {
					bad = append(bad, name)
				}
			}
		}
		t.Fatalf("the schema check fails (%v) for cases %q:\n%s", err, bad, out)
	}
	valid := strings.Count(string(out), ": valid OME-Zarr 0.5 image")
	if valid != len(files) || !strings.Contains(string(out), "suites: all") {
		t.Fatalf("%d of %d files reported valid:\n%s", valid, len(files), out)
	}
	t.Logf("ajv: %d images valid; %s", valid, strings.SplitN(string(out), "\n", 2)[0])

	// The check must be able to fail, for the schema and for the arrays.
	um := func(n string) Axis { return Axis{Name: n, Type: AxisSpace, Unit: "micrometer"} }
	base := ImageOptions{Name: "m", Axes: []Axis{{"t", AxisTime, "second"}, {"a", "angle", ""}, um("z"), um("y"), um("x")},
		Shape: []int64{3, 2, 9, 8, 8}, Levels: 3}
	mutations := []struct {
		name string
		edit func(ms map[string]any, dir string)
		want string
	}{
		{"no name (strict)", func(ms map[string]any, _ string) { delete(ms, "name") }, "not valid against strict_image.schema"},
		{"no metadata (strict)", func(ms map[string]any, _ string) { delete(ms, "metadata") }, "must have required property 'metadata'"},
		{"untyped axis beside 3 space axes", func(ms map[string]any, _ string) {
			delete(ms["axes"].([]any)[1].(map[string]any), "type")
		}, "must contain at least 2 and no more than 3 valid item(s)"},
		{"two scales", func(ms map[string]any, _ string) {
			ds := ms["datasets"].([]any)[1].(map[string]any)
			ct := ds["coordinateTransformations"].([]any)
			ds["coordinateTransformations"] = append(ct, ct[0])
		}, "not valid against image.schema"},
		{"version 0.4", func(ms map[string]any, _ string) {}, "must be equal to one of the allowed values"},
		{"dimension_names differ", func(_ map[string]any, dir string) {
			editJSON(t, filepath.Join(dir, "1", "zarr.json"), func(m map[string]any) { m["dimension_names"].([]any)[4] = "X" })
		}, `level "1": dimension_names`},
		{"level larger than the one before", func(_ map[string]any, dir string) {
			editJSON(t, filepath.Join(dir, "2", "zarr.json"), func(m map[string]any) { m["shape"].([]any)[3] = 9 })
		}, "is larger than the level before it"},
		{"a level missing", func(_ map[string]any, dir string) {
			if err := os.Remove(filepath.Join(dir, "2", "zarr.json")); err != nil {
				t.Fatal(err)
			}
		}, `level "2": ENOENT`},
	}
	for i, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			img := mustBuild(t, base)
			b, err := MarshalImage(img)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			ome := doc["attributes"].(map[string]any)["ome"].(map[string]any)
			if m.name == "version 0.4" {
				ome["version"] = "0.4"
			}
			d := filepath.Join(dir, fmt.Sprintf("mutation%d", i))
			f := writeImageJSON(t, d, nil, img, base.Shape)
			m.edit(ome["multiscales"].([]any)[0].(map[string]any), d)
			if err := os.WriteFile(f, mustJSON(t, doc), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(node, script, "--arrays", f).CombinedOutput()
			if err == nil || !strings.Contains(string(out), m.want) {
				t.Fatalf("err = %v, want a failure mentioning %q:\n%s", err, m.want, out)
			}
		})
	}
}

// TestImageSchemaSuites: the checker refuses to check anything when a
// suite verdict differs from ajv's, in either direction. It runs a copy of
// scripts/interop with one verdict flipped.
func TestImageSchemaSuites(t *testing.T) {
	node, script := omeChecker(t)
	src := filepath.Dir(script)
	tests := []struct {
		suite string
		index int
	}{
		{"ngff-0.5/strict_image_suite.json", 0}, // upstream: valid said invalid
		{"ome_strict_image_suite.json", 20},     // ours: an invalid case said valid
		{"ome_image_suite.json", 0},             // ours, image.schema
	}
	for _, tc := range tests {
		t.Run(tc.suite, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"ome_check.mjs", "ome_strict_image_suite.json", "ome_image_suite.json",
				"ngff-0.5/strict_image_suite.json"} {
				copyFile(t, filepath.Join(src, f), filepath.Join(dir, f))
			}
			schemas, err := filepath.Glob(filepath.Join(src, "ngff-0.5", "schemas", "*.schema"))
			if err != nil || len(schemas) == 0 {
				t.Fatalf("schemas: %v %v", schemas, err)
			}
			for _, f := range schemas {
				copyFile(t, f, filepath.Join(dir, "ngff-0.5", "schemas", filepath.Base(f)))
			}
			if err := os.Symlink(filepath.Join(src, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
				t.Fatal(err)
			}
			copied := filepath.Join(dir, "ome_check.mjs")
			if out, err := exec.Command(node, copied, "--suites").CombinedOutput(); err != nil {
				t.Fatalf("the unchanged copy fails: %v\n%s", err, out)
			}
			var verdict bool
			editJSON(t, filepath.Join(dir, tc.suite), func(m map[string]any) {
				c := m["tests"].([]any)[tc.index].(map[string]any)
				verdict = c["valid"].(bool)
				c["valid"] = !verdict
			})
			out, err := exec.Command(node, copied, "--suites").CombinedOutput()
			want := fmt.Sprintf("case %d (", tc.index)
			if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "no file was checked") {
				t.Fatalf("a flipped verdict (was valid=%v) went unnoticed (err %v):\n%s", verdict, err, out)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func editJSON(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if err := os.WriteFile(path, mustJSON(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
}
