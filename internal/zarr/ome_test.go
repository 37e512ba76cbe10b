package zarr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// imageCase is one BuildImage input of the table the tests (and the schema
// check in ome_schema_test.go) run over.
type imageCase struct {
	name string
	o    ImageOptions
}

// axisSet is a set of axes with the units and pixel sizes it is tried with.
type axisSet struct {
	name  string
	axes  []Axis
	pixel []float64 // nil: default
	shape []int64   // level 0; dim 0 may be 0 (growing)
}

func axisSets() []axisSet {
	um := func(n string) Axis { return Axis{Name: n, Type: AxisSpace, Unit: "micrometer"} }
	return []axisSet{
		{"yx", DefaultAxes([]string{"y", "x"}), nil, []int64{512, 640}},
		{"yx-nm", []Axis{{"y", AxisSpace, "nanometer"}, {"x", AxisSpace, "nanometer"}}, []float64{6.5, 6.5}, []int64{2048, 2304}},
		{"zyx", []Axis{um("z"), um("y"), um("x")}, []float64{2, 0.325, 0.325}, []int64{0, 2048, 2048}},
		{"tyx", []Axis{{"t", AxisTime, "millisecond"}, um("y"), um("x")}, []float64{10, 0.1, 0.1}, []int64{0, 1024, 1024}},
		{"tzyx", []Axis{{"t", AxisTime, "second"}, um("z"), um("y"), um("x")}, []float64{1.5, 1, 0.5, 0.5}, []int64{7, 33, 129, 67}},
		{"czyx", []Axis{{"c", AxisChannel, ""}, um("z"), um("y"), um("x")}, []float64{1, 4, 0.13, 0.13}, []int64{3, 64, 1001, 999}},
		{"cyx", DefaultAxes([]string{"c", "y", "x"}), nil, []int64{2, 300, 301}},
		{"tczyx", []Axis{{"t", AxisTime, "minute"}, {"c", AxisChannel, ""}, um("z"), um("y"), um("x")},
			[]float64{0.5, 1, 1e-3, 2.5e-4, 2.5e-4}, []int64{0, 4, 100, 512, 512}},
		{"tcyx-upper", DefaultAxes([]string{"T", "C", "Y", "X"}), nil, []int64{0, 2, 96, 96}},
		{"untyped-yx", []Axis{{"q", AxisUntyped, ""}, {"y", AxisSpace, "inch"}, {"x", AxisSpace, "inch"}}, []float64{3, 0.01, 0.01}, []int64{5, 64, 64}},
		{"custom-zyx", []Axis{{"angle", "angle", "degree"}, um("z"), um("y"), um("x")}, []float64{15, 1, 1, 1}, []int64{24, 40, 64, 64}},
		{"ty-x-custom-units", []Axis{{"t", AxisTime, "hour"}, {"y", AxisSpace, "millimeter"}, {"x", AxisSpace, "millimeter"}}, []float64{24, 0.05, 0.05}, []int64{365, 200, 300}},
	}
}

// imageCases crosses the axis sets with levels 1 to 6, the reduced axes
// (nil = the space axes; every axis but the channel; the first space axis
// only) and every method.
func imageCases() []imageCase {
	var cases []imageCase
	for _, s := range axisSets() {
		for levels := 1; levels <= 6; levels++ {
			reduces := map[string][]bool{"space": nil}
			if levels > 1 {
				all := make([]bool, len(s.axes))
				first := make([]bool, len(s.axes))
				firstSet := false
				for d, a := range s.axes {
					all[d] = a.Type != AxisChannel
					if a.Type == AxisSpace && !firstSet {
						first[d], firstSet = true, true
					}
				}
				reduces["all"] = all
				reduces["first"] = first
			}
			for rname, r := range reduces {
				for _, m := range imageMethods {
					cases = append(cases, imageCase{
						name: fmt.Sprintf("%s/L%d/%s/%s", s.name, levels, rname, m),
						o: ImageOptions{Name: s.name, Axes: s.axes, PixelSize: s.pixel, Shape: s.shape,
							Levels: levels, Reduce: r, Method: m, Version: "test"},
					})
				}
			}
		}
	}
	return cases
}

// TestBuildImage builds every case, checks the level transforms against
// where the pixels are (see placement), and round-trips the group
// zarr.json through ParseImageGroup.
func TestBuildImage(t *testing.T) {
	for _, tc := range imageCases() {
		t.Run(tc.name, func(t *testing.T) {
			img, err := BuildImage(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Multiscales) != 1 {
				t.Fatalf("%d multiscales", len(img.Multiscales))
			}
			ms := img.Multiscales[0]
			if ms.Name != tc.o.Name || ms.Type != tc.o.Method || len(ms.Datasets) != tc.o.Levels {
				t.Fatalf("name %q type %q levels %d", ms.Name, ms.Type, len(ms.Datasets))
			}
			reduce := tc.o.Reduce
			if reduce == nil {
				reduce = make([]bool, len(tc.o.Axes))
				for d, a := range tc.o.Axes {
					reduce[d] = a.Type == AxisSpace && tc.o.Levels > 1
				}
			}
			if !reflect.DeepEqual(ms.Downsampling, &Downsampling{Method: tc.o.Method, Reduce: reduce}) {
				t.Errorf("downsampling = %+v, want %s %v", ms.Downsampling, tc.o.Method, reduce)
			}
			pixel := tc.o.PixelSize
			if pixel == nil {
				pixel = []float64{1, 1, 1, 1, 1}[:len(tc.o.Axes)]
			}
			for k, ds := range ms.Datasets {
				if ds.Path != fmt.Sprint(k) {
					t.Errorf("level %d path %q", k, ds.Path)
				}
				for d := range tc.o.Axes {
					checkPlacement(t, k, d, ds.Transform, pixel[d], reduce[d], tc.o.Method)
				}
			}

			b, err := MarshalImage(img)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseImageGroup(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(back, img) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", back, img)
			}
			b2, err := MarshalImage(back)
			if err != nil || string(b2) != string(b) {
				t.Fatalf("re-marshal differs (err %v)", err)
			}
		})
	}
}

// checkPlacement checks level k's transform along one axis by where its
// pixels lie: it follows the centres of the level-0 pixels of a few blocks
// through k reductions the way the method makes them (a mean, min or max
// pixel stands for its whole block, centred on the centres it reduces;
// decimate keeps the first) and compares with index × scale + translation.
// Pixel centres of level 0 are at index × pixel.
func checkPlacement(t *testing.T, k, d int, tr Transform, pixel float64, reduce bool, method string) {
	t.Helper()
	const n = 64 // level-0 pixels followed (2^6 covers 6 reductions of full blocks)
	pos := make([]float64, n)
	for i := range pos {
		pos[i] = float64(i) * pixel
	}
	if reduce {
		for step := 0; step < k; step++ {
			next := make([]float64, len(pos)/2)
			for j := range next {
				if method == "decimate" {
					next[j] = pos[2*j]
				} else {
					next[j] = (pos[2*j] + pos[2*j+1]) / 2
				}
			}
			pos = next
		}
	}
	tol := 1e-12 * math.Max(1, math.Abs(pixel)*n)
	for j := 0; j < len(pos) && j < 3; j++ {
		off := 0.0
		if tr.Translation != nil {
			off = tr.Translation[d]
		}
		if got := float64(j)*tr.Scale[d] + off; math.Abs(got-pos[j]) > tol {
			t.Errorf("level %d axis %d: pixel %d at %v, its block is centred at %v (scale %v, translation %v)",
				k, d, j, got, pos[j], tr.Scale, tr.Translation)
		}
	}
	if (tr.Translation != nil) != (k > 0 && method != "decimate") {
		t.Errorf("level %d (%s): translation %v", k, method, tr.Translation)
	}
}

// TestImageGolden pins the exact bytes of a few images.
func TestImageGolden(t *testing.T) {
	um := func(n string) Axis { return Axis{Name: n, Type: AxisSpace, Unit: "micrometer"} }
	tests := []struct {
		name string
		o    ImageOptions
	}{
		{"tczyx-mean", ImageOptions{Name: "frames",
			Axes:      []Axis{{"t", AxisTime, "millisecond"}, {"c", AxisChannel, ""}, um("z"), um("y"), um("x")},
			PixelSize: []float64{100, 1, 2, 0.5, 0.5}, Shape: []int64{0, 3, 64, 512, 512}, Levels: 3, Method: "mean", Version: "v1.2.3"}},
		{"yx-decimate", ImageOptions{Axes: DefaultAxes([]string{"y", "x"}), Levels: 2, Method: "decimate"}},
		{"zyx-min-one-level", ImageOptions{Name: "z", Axes: []Axis{um("z"), um("y"), um("x")}, Method: "min"}},
		{"tyx-max-reduce-t", ImageOptions{Name: "movie", Axes: []Axis{{"t", AxisTime, "second"}, um("y"), um("x")},
			PixelSize: []float64{0.1, 0.2, 0.2}, Levels: 3, Reduce: []bool{true, true, true}, Method: "max"}},
		{"custom-axis", ImageOptions{Name: "angles", Axes: []Axis{{"a", "angle", "degree"}, um("z"), um("y"), um("x")},
			Levels: 2, Reduce: []bool{false, false, true, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := BuildImage(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			b, err := MarshalImage(img)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "image-"+tc.name+".json", b)
		})
	}
}

// TestBuildImageDefaults: the zero values mean one level, mean, the space
// axes reduced, pixel size 1, the name "image".
func TestBuildImageDefaults(t *testing.T) {
	img, err := BuildImage(ImageOptions{Axes: DefaultAxes([]string{"c", "y", "x"})})
	if err != nil {
		t.Fatal(err)
	}
	ms := img.Multiscales[0]
	if ms.Name != "image" || ms.Type != "mean" || len(ms.Datasets) != 1 || ms.Datasets[0].Translation != nil ||
		!reflect.DeepEqual(ms.Datasets[0].Scale, []float64{1, 1, 1}) {
		t.Fatalf("defaults: %+v", ms)
	}
	img, err = BuildImage(ImageOptions{Axes: DefaultAxes([]string{"t", "c", "z", "y", "x"}), Levels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Multiscales[0].Datasets[1].Scale; !reflect.DeepEqual(got, []float64{1, 1, 2, 2, 2}) {
		t.Fatalf("default reduce: level 1 scale %v, want the space axes halved", got)
	}
	// Units given as symbols are written as the spec's names.
	img, err = BuildImage(ImageOptions{Axes: []Axis{{"t", AxisTime, "ms"}, {"y", AxisSpace, "µm"}, {"x", AxisSpace, "Micrometers"}}})
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, a := range img.Multiscales[0].Axes {
		units = append(units, a.Unit)
	}
	if !reflect.DeepEqual(units, []string{"millisecond", "micrometer", "micrometer"}) {
		t.Fatalf("units %q", units)
	}
}

func TestBuildImageErrors(t *testing.T) {
	yx := DefaultAxes([]string{"y", "x"})
	czyx := DefaultAxes([]string{"c", "z", "y", "x"})
	tests := []struct {
		name  string
		o     ImageOptions
		field ImageField
		axis  int
		want  string
	}{
		{"one axis", ImageOptions{Axes: DefaultAxes([]string{"x"})}, FieldAxes, -1, "1 axes"},
		{"six axes", ImageOptions{Axes: []Axis{{"t", AxisTime, ""}, {"c", AxisChannel, ""}, {"w", "wave", ""}, {"z", AxisSpace, ""}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxes, -1, "6 axes"},
		{"no axes", ImageOptions{}, FieldAxes, -1, "0 axes"},
		{"duplicate name", ImageOptions{Axes: DefaultAxes([]string{"y", "y"})}, FieldAxes, 1, "unique"},
		{"empty name", ImageOptions{Axes: []Axis{{"", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxes, 0, "empty"},
		{"time not first", ImageOptions{Axes: DefaultAxes([]string{"z", "t", "y", "x"})}, FieldAxes, 1, "time axis must come first"},
		{"channel after space", ImageOptions{Axes: DefaultAxes([]string{"y", "x", "c"})}, FieldAxes, 2, "after a space axis"},
		{"two channels", ImageOptions{Axes: []Axis{{"c", AxisChannel, ""}, {"d", AxisChannel, ""}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxes, 1, "at most one channel or custom axis"},
		{"channel and custom", ImageOptions{Axes: []Axis{{"c", AxisChannel, ""}, {"p", "phase", ""}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxes, 1, "at most one"},
		{"one space axis", ImageOptions{Axes: DefaultAxes([]string{"c", "x"})}, FieldAxes, -1, "1 space axes"},
		{"four space axes", ImageOptions{Axes: []Axis{{"w", AxisSpace, ""}, {"z", AxisSpace, ""}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxes, -1, "4 space axes"},
		{"untyped beside three space", ImageOptions{Axes: DefaultAxes([]string{"q", "z", "y", "x"})}, FieldAxisType, 0, "give it a type"},
		{"bad custom type", ImageOptions{Axes: []Axis{{"p", "a b", ""}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldAxisType, 0, "axis type"},
		{"time unit on space", ImageOptions{Axes: []Axis{{"y", AxisSpace, "second"}, {"x", AxisSpace, ""}}}, FieldUnit, 0, "not a space unit"},
		{"space unit on time", ImageOptions{Axes: []Axis{{"t", AxisTime, "micrometer"}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldUnit, 0, "not a time unit"},
		{"unknown space unit", ImageOptions{Axes: []Axis{{"y", AxisSpace, "furlong"}, {"x", AxisSpace, ""}}}, FieldUnit, 0, "furlong"},
		{"unit on channel", ImageOptions{Axes: []Axis{{"c", AxisChannel, "nm"}, {"y", AxisSpace, ""}, {"x", AxisSpace, ""}}}, FieldUnit, 0, "channel axis has no unit"},
		{"pixel count", ImageOptions{Axes: yx, PixelSize: []float64{1}}, FieldPixelSize, -1, "1 values for 2 axes"},
		{"pixel zero", ImageOptions{Axes: yx, PixelSize: []float64{1, 0}}, FieldPixelSize, 1, "positive"},
		{"pixel negative", ImageOptions{Axes: yx, PixelSize: []float64{-1, 1}}, FieldPixelSize, 0, "positive"},
		{"pixel NaN", ImageOptions{Axes: yx, PixelSize: []float64{math.NaN(), 1}}, FieldPixelSize, 0, "positive finite"},
		{"pixel Inf", ImageOptions{Axes: yx, PixelSize: []float64{1, math.Inf(1)}}, FieldPixelSize, 1, "positive finite"},
		{"pixel on channel", ImageOptions{Axes: czyx, PixelSize: []float64{2, 1, 1, 1}}, FieldPixelSize, 0, "channel axis has no physical size"},
		{"pixel overflow", ImageOptions{Axes: yx, PixelSize: []float64{1, 1e300}, Levels: MaxLevels}, FieldPixelSize, 1, "overflows"},
		{"levels negative", ImageOptions{Axes: yx, Levels: -1}, FieldLevels, -1, "-1 levels"},
		{"levels too many", ImageOptions{Axes: yx, Levels: MaxLevels + 1}, FieldLevels, -1, "want 1 to 32"},
		{"reduce count", ImageOptions{Axes: yx, Levels: 2, Reduce: []bool{true}}, FieldReduce, -1, "1 flags for 2 axes"},
		{"reduce channel", ImageOptions{Axes: czyx, Levels: 2, Reduce: []bool{true, true, true, true}}, FieldReduce, 0, "channel axis cannot be downsampled"},
		{"reduce nothing", ImageOptions{Axes: yx, Levels: 2, Reduce: []bool{false, false}}, FieldReduce, -1, "no axis is reduced"},
		{"method", ImageOptions{Axes: yx, Levels: 2, Method: "gaussian"}, FieldMethod, -1, `"gaussian" (want mean, min, max, decimate)`},
		{"shape rank", ImageOptions{Axes: yx, Shape: []int64{4}}, FieldShape, -1, "1 dimensions for 2 axes"},
		{"shape zero", ImageOptions{Axes: yx, Shape: []int64{4, 0}}, FieldShape, 1, "length 0"},
		{"shape negative", ImageOptions{Axes: yx, Shape: []int64{-1, 4}}, FieldShape, 0, "length -1"},
		{"levels beyond 1 element", ImageOptions{Axes: yx, Shape: []int64{4, 3}, Levels: 4}, FieldLevels, -1, "level 3 would equal level 2"},
		{"levels beyond 1 element, one axis", ImageOptions{Axes: DefaultAxes([]string{"t", "y", "x"}), Shape: []int64{0, 1, 2}, Levels: 3, Reduce: []bool{false, true, true}}, FieldLevels, -1, "use at most 2 levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildImage(tc.o)
			var ie *ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want an *ImageError", err, err)
			}
			if ie.Field != tc.field || ie.Axis != tc.axis || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q (field %v, axis %d), want field %v, axis %d, mentioning %q", err, ie.Field, ie.Axis, tc.field, tc.axis, tc.want)
			}
			if ie.Axis >= 0 && (ie.Name != tc.o.Axes[ie.Axis].Name || !strings.Contains(err.Error(), fmt.Sprintf("axis %d (%q)", ie.Axis, ie.Name))) {
				t.Fatalf("err = %q names axis %q", err, ie.Name)
			}
		})
	}
}

// TestBuildImageShapeLimit: the level count BuildImage accepts for a shape
// is the number of distinct level shapes, and a growing dim 0 sets no limit.
func TestBuildImageShapeLimit(t *testing.T) {
	tests := []struct {
		shape  []int64
		reduce []bool
		max    int
	}{
		{[]int64{1, 1}, []bool{true, true}, 1},
		{[]int64{2, 1}, []bool{true, true}, 2},
		{[]int64{5, 3}, []bool{true, true}, 4}, // 5,3 → 3,2 → 2,1 → 1,1
		{[]int64{1024, 7}, []bool{true, true}, 11},
		{[]int64{1024, 7}, []bool{false, true}, 4},
		{[]int64{0, 7}, []bool{true, true}, MaxLevels},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.shape, tc.reduce), func(t *testing.T) {
			axes := DefaultAxes([]string{"y", "x"})
			for levels := 1; levels <= MaxLevels; levels++ {
				_, err := BuildImage(ImageOptions{Axes: axes, Shape: tc.shape, Levels: levels, Reduce: tc.reduce})
				if ok := err == nil; ok != (levels <= tc.max) {
					t.Fatalf("%d levels: err = %v, want the limit at %d", levels, err, tc.max)
				}
			}
		})
	}
}

func TestParseAxisType(t *testing.T) {
	tests := []struct {
		in   string
		want AxisType
		err  bool
	}{
		{"space", AxisSpace, false}, {"SPACE", AxisSpace, false}, {" Time ", AxisTime, false},
		{"channel", AxisChannel, false}, {"none", AxisUntyped, false}, {"", AxisUntyped, false},
		{"angle", "angle", false}, {"Phase_2.b-x", "Phase_2.b-x", false},
		{"a b", "", true}, {"a/b", "", true}, {"\"", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAxisType(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseAxisType(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
	if AxisUntyped.String() != "none" || AxisSpace.String() != "space" {
		t.Errorf("String: %v %v", AxisUntyped, AxisSpace)
	}
}

func TestInferAxisType(t *testing.T) {
	want := map[string]AxisType{"t": AxisTime, "T": AxisTime, "c": AxisChannel, "C": AxisChannel,
		"z": AxisSpace, "y": AxisSpace, "x": AxisSpace, "X": AxisSpace, "q": AxisUntyped, "time": AxisUntyped, "": AxisUntyped}
	for name, w := range want {
		if got := InferAxisType(name); got != w {
			t.Errorf("InferAxisType(%q) = %q, want %q", name, got, w)
		}
	}
}

func TestParseUnit(t *testing.T) {
	tests := []struct {
		typ  AxisType
		in   string
		want string
		err  string
	}{
		{AxisSpace, "micrometer", "micrometer", ""},
		{AxisSpace, "MicroMeter", "micrometer", ""},
		{AxisSpace, "micrometers", "micrometer", ""},
		{AxisSpace, "um", "micrometer", ""},
		{AxisSpace, "µm", "micrometer", ""},
		{AxisSpace, "μm", "micrometer", ""},
		{AxisSpace, "Å", "angstrom", ""},
		{AxisSpace, "\u212b", "angstrom", ""}, // ANGSTROM SIGN
		{AxisSpace, "nm", "nanometer", ""},
		{AxisSpace, "m", "meter", ""},
		{AxisSpace, "parsec", "parsec", ""},
		{AxisSpace, "", "", ""},
		{AxisSpace, "Mm", "", "not a space unit"}, // symbols are case-sensitive
		{AxisSpace, "second", "", "not a space unit"},
		{AxisSpace, "pixel", "", "want one of angstrom"},
		{AxisTime, "s", "second", ""},
		{AxisTime, "ms", "millisecond", ""},
		{AxisTime, "us", "microsecond", ""},
		{AxisTime, "Minutes", "minute", ""},
		{AxisTime, "day", "day", ""},
		{AxisTime, "frame", "", "not a time unit"},
		{AxisTime, "nm", "", "not a time unit"},
		{AxisChannel, "nm", "", "channel axis has no unit"},
		{AxisChannel, "", "", ""},
		{AxisUntyped, "degree", "degree", ""},
		{"angle", "radian", "radian", ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.typ)+"/"+tc.in, func(t *testing.T) {
			got, err := ParseUnit(tc.typ, tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseUnit(%s, %q) = %q, %v; want %q", tc.typ, tc.in, got, err, tc.want)
			}
		})
	}
	// Every listed name parses to itself, and the two lists do not overlap.
	for typ, list := range map[AxisType][]string{AxisSpace: SpaceUnits, AxisTime: TimeUnits} {
		for _, u := range list {
			if got, err := ParseUnit(typ, u); err != nil || got != u {
				t.Errorf("ParseUnit(%s, %q) = %q, %v", typ, u, got, err)
			}
		}
	}
	for _, u := range SpaceUnits {
		if _, err := ParseUnit(AxisTime, u); err == nil {
			t.Errorf("space unit %q accepted for time", u)
		}
	}
}

// suiteDoc is one document of a JSON-schema suite in scripts/interop.
type suiteDoc struct {
	Description string          `json:"description"`
	Formerly    string          `json:"formerly"`
	Data        json.RawMessage `json:"data"`
	Valid       bool            `json:"valid"`
}

func readSuite(t testing.TB, path string) []suiteDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Tests []suiteDoc `json:"tests"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Tests
}

const interopDir = "../../scripts/interop"

// TestParseImageSuite reads the OME project's strict-image documents (all
// valid) and checks what the parser makes of them.
func TestParseImageSuite(t *testing.T) {
	docs := readSuite(t, filepath.Join(interopDir, "ngff-0.5", "strict_image_suite.json"))
	if len(docs) == 0 {
		t.Fatal("empty suite")
	}
	for _, doc := range docs {
		t.Run(doc.Formerly, func(t *testing.T) {
			img, err := ParseImage(doc.Data)
			if err != nil {
				t.Fatal(err)
			}
			ms := img.Multiscales[0]
			if ms.Downsampling != nil {
				t.Errorf("another writer's metadata read as zwrite's: %+v", ms.Downsampling)
			}
			if len(ms.Datasets[0].Scale) != len(ms.Axes) {
				t.Errorf("scale %v for %d axes", ms.Datasets[0].Scale, len(ms.Axes))
			}
			switch doc.Formerly {
			case "valid_strict/multiscales_example.json":
				if ms.Name != "example" || ms.Type != "gaussian" || len(ms.Datasets) != 3 ||
					!reflect.DeepEqual(ms.Datasets[2].Scale, []float64{1, 1, 2, 2, 2}) ||
					ms.Transform == nil || !reflect.DeepEqual(ms.Transform.Scale, []float64{0.1, 1, 1, 1, 1}) ||
					ms.Axes[0] != (Axis{"t", AxisTime, "millisecond"}) || ms.Axes[1] != (Axis{"c", AxisChannel, ""}) {
					t.Errorf("parsed %+v", ms)
				}
				if f := ms.Factors(2); !reflect.DeepEqual(f, []float64{1, 1, 4, 4, 4}) {
					t.Errorf("Factors(2) = %v", f)
				}
			case "valid_strict/image_omero.json":
				if !reflect.DeepEqual(ms.Datasets[0].Translation, []float64{0, 9, 0.5, 25.74, 21.58}) || ms.Datasets[1].Translation != nil {
					t.Errorf("translations %v %v", ms.Datasets[0].Translation, ms.Datasets[1].Translation)
				}
			case "valid_strict/image_metadata.json":
				if ms.Datasets[0].Path != "path/to/0" {
					t.Errorf("path %q", ms.Datasets[0].Path)
				}
			}
		})
	}
}

// TestParseImageAgreesWithSchema runs the parser over zwrite's suites:
// every document the schema rejects, the parser rejects too, except the
// strict-only rules (name, type, metadata are optional to a reader), the
// omero block (transitional, not read) and a repeated multiscale (a reader
// takes the first). The schema's valid documents
// the parser rejects are listed: rules the spec text has and the schema
// lacks (unique names, positive scales).
func TestParseImageAgreesWithSchema(t *testing.T) {
	goStricter := map[string]bool{
		"the schema does not check that scales are positive":                        true,
		"the schema does not require unique axis names, only distinct axis objects": true,
	}
	readerLax := map[string]bool{
		"strict: no name": true, "strict: no type": true, "strict: no metadata": true,
		"omero without channels": true, "an omero window without max": true,
		"two identical multiscales": true,
	}
	for _, f := range []string{"ome_strict_image_suite.json", "ome_image_suite.json"} {
		for _, doc := range readSuite(t, filepath.Join(interopDir, f)) {
			t.Run(f+"/"+doc.Description, func(t *testing.T) {
				_, err := ParseImage(doc.Data)
				want := doc.Valid
				if goStricter[doc.Description] {
					want = false
				}
				if readerLax[doc.Description] {
					want = true
				}
				if (err == nil) != want {
					t.Fatalf("ParseImage: err = %v; schema verdict valid=%v", err, doc.Valid)
				}
			})
		}
	}
}

func TestParseImageErrors(t *testing.T) {
	good := func() map[string]any {
		var m map[string]any
		b, _ := MarshalImage(mustBuild(t, ImageOptions{Axes: DefaultAxes([]string{"t", "y", "x"}), Levels: 2}))
		a, _ := ParseGroup(b)
		_ = json.Unmarshal(a, &m)
		return m
	}
	ms := func(m map[string]any) map[string]any {
		return m["ome"].(map[string]any)["multiscales"].([]any)[0].(map[string]any)
	}
	ds := func(m map[string]any, k int) map[string]any { return ms(m)["datasets"].([]any)[k].(map[string]any) }
	tests := []struct {
		name string
		mut  func(m map[string]any) any
		want string
	}{
		{"not an object", func(m map[string]any) any { return []int{1} }, "attributes: want a JSON object"},
		{"0.4 layout", func(m map[string]any) any { return map[string]any{"multiscales": []any{}} }, "0.4 or older"},
		{"no ome", func(m map[string]any) any { return map[string]any{"foo": 1} }, "attributes.ome: missing"},
		{"ome list", func(m map[string]any) any { return map[string]any{"ome": []any{}} }, "ome: want an object"},
		{"version", func(m map[string]any) any { m["ome"].(map[string]any)["version"] = "0.4"; return m }, `ome.version: "0.4" not supported`},
		{"version number", func(m map[string]any) any { m["ome"].(map[string]any)["version"] = 0.5; return m }, "ome.version: want a string"},
		{"no multiscales", func(m map[string]any) any { delete(m["ome"].(map[string]any), "multiscales"); return m }, "ome.multiscales: want a non-empty list"},
		{"name type", func(m map[string]any) any { ms(m)["name"] = 3; return m }, "ome.multiscales[0].name: want a string"},
		{"type null", func(m map[string]any) any { ms(m)["type"] = nil; return m }, "ome.multiscales[0].type: want a string"},
		{"metadata list", func(m map[string]any) any { ms(m)["metadata"] = []any{}; return m }, "metadata: want an object"},
		{"no axes", func(m map[string]any) any { delete(ms(m), "axes"); return m }, "axes: missing"},
		{"axis null", func(m map[string]any) any { ms(m)["axes"].([]any)[0] = nil; return m }, "axes[0]: want an object"},
		{"axis no name", func(m map[string]any) any { delete(ms(m)["axes"].([]any)[1].(map[string]any), "name"); return m }, "axes[1].name: missing"},
		{"axis type number", func(m map[string]any) any { ms(m)["axes"].([]any)[1].(map[string]any)["type"] = 1; return m }, "axes[1].type: want a string"},
		{"axis order", func(m map[string]any) any {
			a := ms(m)["axes"].([]any)
			a[0], a[1] = a[1], a[0]
			return m
		}, "time axis must come first"},
		{"no datasets", func(m map[string]any) any { delete(ms(m), "datasets"); return m }, "datasets: missing"},
		{"datasets empty", func(m map[string]any) any { ms(m)["datasets"] = []any{}; return m }, "no levels"},
		{"dataset no path", func(m map[string]any) any { delete(ds(m, 0), "path"); return m }, "datasets[0].path: missing"},
		{"dataset same path", func(m map[string]any) any { ds(m, 1)["path"] = "0"; return m }, `path "0" is empty or repeated`},
		{"no transforms", func(m map[string]any) any { delete(ds(m, 0), "coordinateTransformations"); return m }, "datasets[0].coordinateTransformations: missing"},
		{"transforms empty", func(m map[string]any) any { ds(m, 0)["coordinateTransformations"] = []any{}; return m }, "want a non-empty list"},
		{"translation first", func(m map[string]any) any {
			ct := ds(m, 1)["coordinateTransformations"].([]any)
			ct[0], ct[1] = ct[1], ct[0]
			return m
		}, "translation in position 0"},
		{"two scales", func(m map[string]any) any {
			ct := ds(m, 0)["coordinateTransformations"].([]any)
			ds(m, 0)["coordinateTransformations"] = append(ct, ct[0])
			return m
		}, "scale in position 1"},
		{"identity", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = append(ds(m, 0)["coordinateTransformations"].([]any), map[string]any{"type": "identity"})
			return m
		}, `"identity" (0.5 allows only scale and translation)`},
		{"scale by path", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = []any{map[string]any{"type": "scale", "path": "s.bin"}}
			return m
		}, "binary data is not supported"},
		{"scale missing", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = []any{map[string]any{"type": "scale"}}
			return m
		}, "coordinateTransformations[0].scale: missing"},
		{"scale strings", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = []any{map[string]any{"type": "scale", "scale": []any{"1", 1, 1}}}
			return m
		}, "scale: want a list of numbers"},
		{"scale short", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = []any{map[string]any{"type": "scale", "scale": []any{1, 1}}}
			return m
		}, "scale has 2 values for 3 axes"},
		{"scale zero", func(m map[string]any) any {
			ds(m, 0)["coordinateTransformations"] = []any{map[string]any{"type": "scale", "scale": []any{1, 0, 1}}}
			return m
		}, "scale[1] = 0"},
		{"translation short", func(m map[string]any) any {
			ds(m, 1)["coordinateTransformations"].([]any)[1].(map[string]any)["translation"] = []any{0}
			return m
		}, "translation has 1 values"},
		{"levels out of order", func(m map[string]any) any {
			d := ms(m)["datasets"].([]any)
			d[0], d[1] = d[1], d[0]
			return m
		}, "levels go from largest to smallest"},
		{"multiscale transform", func(m map[string]any) any {
			ms(m)["coordinateTransformations"] = []any{map[string]any{"type": "scale", "scale": []any{1}}}
			return m
		}, "coordinateTransformations: scale has 1 values"},
		{"zwrite method", func(m map[string]any) any { ms(m)["metadata"].(map[string]any)["method"] = "median"; return m }, `metadata.method: "median"`},
		{"zwrite reduced axis", func(m map[string]any) any {
			ms(m)["metadata"].(map[string]any)["reducedAxes"] = []any{"y", "q"}
			return m
		}, `metadata.reducedAxes: "q"`},
		{"zwrite reduced twice", func(m map[string]any) any {
			ms(m)["metadata"].(map[string]any)["reducedAxes"] = []any{"y", "y"}
			return m
		}, `listed twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			if _, err := ParseImage(mustJSON(t, m)); err != nil {
				t.Fatalf("the unchanged document fails: %v", err)
			}
			in := mustJSON(t, tc.mut(m))
			_, err := ParseImage(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q\ninput: %s", err, tc.want, in)
			}
		})
	}
}

func TestParseImageGroupErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"zarr_format":3,"node_type":"group"}`, "no attributes"},
		{`{"zarr_format":3,"node_type":"group","attributes":{}}`, "attributes.ome: missing"},
		{string(testArray(t)), "an array is not a group"},
	} {
		if _, err := ParseImageGroup([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseImageGroup(%.40s…): err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func mustBuild(t testing.TB, o ImageOptions) *Image {
	t.Helper()
	img, err := BuildImage(o)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func FuzzParseImage(f *testing.F) {
	for _, tc := range imageCases()[:40] {
		img, err := BuildImage(tc.o)
		if err != nil {
			f.Fatal(err)
		}
		a, err := ImageAttributes(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(a))
	}
	for _, p := range []string{"ngff-0.5/strict_image_suite.json", "ome_strict_image_suite.json", "ome_image_suite.json"} {
		for _, doc := range readSuite(f, filepath.Join(interopDir, p)) {
			f.Add([]byte(doc.Data))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := ParseImage(b)
		if err != nil {
			return
		}
		// Whatever parses is valid, marshals, and parses back the same.
		if err := img.Validate(); err != nil {
			t.Fatalf("parsed image fails Validate: %v", err)
		}
		out, err := MarshalImage(img)
		if err != nil {
			t.Fatalf("marshal parsed image: %v", err)
		}
		back, err := ParseImageGroup(out)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalized(back), normalized(img)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", back, img)
		}
	})
}

// normalized drops what a rewrite may legitimately change: the metadata's
// formatting (compared as parsed JSON by DeepEqual on the decoded value).
func normalized(img *Image) any {
	type ms struct {
		M    Multiscale
		Meta any
	}
	var out []ms
	for _, m := range img.Multiscales {
		var meta any
		_ = json.Unmarshal(m.Metadata, &meta)
		m.Metadata = nil
		out = append(out, ms{m, meta})
	}
	return out
}
