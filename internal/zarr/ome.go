package zarr

// OME-Zarr 0.5 image metadata: the attributes.ome object of an image
// group, built from what the writer knows (BuildImage), written as a group
// zarr.json (MarshalImage) and read back (ParseImage, ParseImageGroup).
//
// Decisions, written down once (the spec: https://ngff.openmicroscopy.org/0.5/):
//
//   - Axis types. InferAxisType gives t → time, c → channel, z/y/x → space
//     (either case) and no type for any other name; the caller overrides
//     per axis (ParseAxisType: space, time, channel, a custom type, or
//     "none"). Types must follow the spec's order: [time] [channel or one
//     custom/untyped axis] then 2 or 3 space axes.
//   - Units. A space or time axis takes one of the spec's unit names
//     (SpaceUnits, TimeUnits; ParseUnit also accepts the usual symbols such
//     as um, µm, ms and returns the spec name); a channel axis takes none;
//     a custom or untyped axis takes any unit (the spec lists none).
//   - Scale. Level k's scale is pixel[d] × 2^k along reduced axes and
//     pixel[d] elsewhere (pixel defaults to 1, the spec's "factor relative
//     to level 0" for axes without a physical size); see levelTransform for
//     why the nominal 2^k is right at an odd-sized edge.
//   - Translation. Pixel coordinates are pixel centres. mean, min and max
//     reduce a block of 2 per reduced axis to one pixel standing for the
//     whole block, centred between its elements, so level k's origin moves
//     by (2^k − 1)/2 × pixel[d] along reduced axes; decimate keeps the
//     first (even) element of each block, which is where it was, so it has
//     no translation. Level 0 has none.
//   - Method. multiscales[0].type is the method name (mean, min, max,
//     decimate) and metadata records it with the reduced axes, the factor,
//     the size and edge rules and, for mean, the rounding rule, under
//     "software": "zwrite", which is how ParseImage recognises ours
//     (Multiscale.Downsampling).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
)

// OMEVersion is the OME-Zarr metadata version written and read here.
const OMEVersion = "0.5"

// MaxLevels bounds ImageOptions.Levels: 2^31 is far beyond any image
// (every reduced axis reaches 1 element long before), and it keeps 2^k and
// (2^k − 1)/2 exact in float64.
const MaxLevels = 32

// The spec's limits on the axes of an image.
const (
	minAxes = 2
	maxAxes = 5
)

// AxisType is an axis's "type": space, time, channel, a custom string, or
// none (the empty string, written without a type field).
type AxisType string

const (
	AxisUntyped AxisType = ""
	AxisSpace   AxisType = "space"
	AxisTime    AxisType = "time"
	AxisChannel AxisType = "channel"
)

// String returns the type as zarr.json spells it, "none" for no type.
func (t AxisType) String() string {
	if t == AxisUntyped {
		return "none"
	}
	return string(t)
}

// known reports whether t is one of the spec's three types.
func (t AxisType) known() bool { return t == AxisSpace || t == AxisTime || t == AxisChannel }

// ParseAxisType accepts space, time and channel case-insensitively, "none"
// (or an empty string) for no type, and any other name of letters, digits,
// '_', '-' and '.' as a custom type, kept as given.
func ParseAxisType(s string) (AxisType, error) {
	s = strings.TrimSpace(s)
	for _, t := range []AxisType{AxisSpace, AxisTime, AxisChannel} {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	if s == "" || strings.EqualFold(s, "none") {
		return AxisUntyped, nil
	}
	if err := checkCustomType(s); err != nil {
		return "", err
	}
	return AxisType(s), nil
}

func checkCustomType(s string) error {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("axis type %q: want space, time, channel, none, or a custom name of letters, digits, '_', '-' and '.'", s)
		}
	}
	return nil
}

// InferAxisType is the type an axis gets from its name alone: t → time,
// c → channel, z, y, x → space (either case), anything else no type.
func InferAxisType(name string) AxisType {
	switch strings.ToLower(name) {
	case "t":
		return AxisTime
	case "c":
		return AxisChannel
	case "z", "y", "x":
		return AxisSpace
	}
	return AxisUntyped
}

// Axis is one entry of multiscales[].axes.
type Axis struct {
	Name string
	Type AxisType
	// Unit is "" for none.
	Unit string
}

// DefaultAxes names the axes and gives each the type InferAxisType finds,
// no unit. Callers override types and set units per axis.
func DefaultAxes(names []string) []Axis {
	axes := make([]Axis, len(names))
	for i, n := range names {
		axes[i] = Axis{Name: n, Type: InferAxisType(n)}
	}
	return axes
}

// SpaceUnits and TimeUnits are the unit names the 0.5 spec lists for space
// and time axes (valid UDUNITS-2 names).
var (
	SpaceUnits = []string{"angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer",
		"foot", "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
		"mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter", "yard",
		"yoctometer", "yottameter", "zeptometer", "zettameter"}
	TimeUnits = []string{"attosecond", "centisecond", "day", "decisecond", "exasecond", "femtosecond",
		"gigasecond", "hectosecond", "hour", "kilosecond", "megasecond", "microsecond", "millisecond",
		"minute", "nanosecond", "petasecond", "picosecond", "second", "terasecond", "yoctosecond",
		"yottasecond", "zeptosecond", "zettasecond"}
)

// unitSymbols maps the symbols people type to the spec's names. Symbols
// are case-sensitive (Mm is not mm); full names are matched in any case.
var unitSymbols = map[AxisType]map[string]string{
	AxisSpace: {
		"Å": "angstrom", "\u212b": "angstrom", "pm": "picometer", "nm": "nanometer", "um": "micrometer",
		"µm": "micrometer", "μm": "micrometer", "mm": "millimeter", "cm": "centimeter",
		"m": "meter", "km": "kilometer",
	},
	AxisTime: {
		"fs": "femtosecond", "ps": "picosecond", "ns": "nanosecond", "us": "microsecond",
		"µs": "microsecond", "μs": "microsecond", "ms": "millisecond", "s": "second",
		"min": "minute", "h": "hour", "d": "day",
	},
}

// ParseUnit checks a unit for an axis of type t and returns the name to
// write: for space and time axes one of SpaceUnits or TimeUnits (a name in
// any case, or a symbol such as um, µm, nm, ms, s); for a channel axis it
// is an error (channels have no physical unit); for custom and untyped
// axes any non-empty unit is returned as given. An empty s returns "".
func ParseUnit(t AxisType, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	var list []string
	switch t {
	case AxisChannel:
		return "", fmt.Errorf("unit %q: a channel axis has no unit", s)
	case AxisSpace:
		list = SpaceUnits
	case AxisTime:
		list = TimeUnits
	default:
		return s, nil
	}
	for _, u := range list {
		if strings.EqualFold(s, u) || strings.EqualFold(s, u+"s") {
			return u, nil
		}
	}
	if u, ok := unitSymbols[t][s]; ok {
		return u, nil
	}
	return "", fmt.Errorf("unit %q is not a %s unit of OME-Zarr 0.5 (want one of %s; symbols like %s work too)",
		s, t, strings.Join(list, ", "), map[AxisType]string{AxisSpace: "nm, um, mm", AxisTime: "ms, s, min"}[t])
}

// ImageField says which input of an image an ImageError is about, so that
// the CLI can name its flag.
type ImageField int

const (
	// FieldAxes: the axis names, their number and their order by type.
	FieldAxes ImageField = iota + 1
	FieldAxisType
	FieldUnit
	FieldPixelSize
	FieldShape
	FieldLevels
	FieldReduce
	FieldMethod
	// FieldDatasets: the levels' paths and transforms (parsed documents).
	FieldDatasets
)

func (f ImageField) String() string {
	switch f {
	case FieldAxes:
		return "axes"
	case FieldAxisType:
		return "axis type"
	case FieldUnit:
		return "unit"
	case FieldPixelSize:
		return "pixel size"
	case FieldShape:
		return "shape"
	case FieldLevels:
		return "levels"
	case FieldReduce:
		return "reduced axes"
	case FieldMethod:
		return "method"
	case FieldDatasets:
		return "datasets"
	}
	return fmt.Sprintf("field(%d)", int(f))
}

// ImageError is a user error in image metadata: which input, which axis
// (Axis = -1 when it is about no single one) and why.
type ImageError struct {
	Field  ImageField
	Axis   int
	Name   string // the axis name, when Axis >= 0
	Reason string
}

func (e *ImageError) Error() string {
	if e.Axis >= 0 {
		return fmt.Sprintf("%s of axis %d (%q): %s", e.Field, e.Axis, e.Name, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

func imageErr(f ImageField, reason string, args ...any) *ImageError {
	return &ImageError{Field: f, Axis: -1, Reason: fmt.Sprintf(reason, args...)}
}

func axisErr(f ImageField, axes []Axis, i int, reason string, args ...any) *ImageError {
	return &ImageError{Field: f, Axis: i, Name: axes[i].Name, Reason: fmt.Sprintf(reason, args...)}
}

// Downsampling methods as multiscales[].type names them: the names of
// internal/downsample's methods (a test keeps the two lists equal).
var imageMethods = []string{"mean", "min", "max", "decimate"}

// ImageOptions is what BuildImage makes an image's metadata from. The zero
// value of every field but Axes means its default.
type ImageOptions struct {
	// Name is multiscales[0].name; "" writes "image" (the strict schema
	// requires a name).
	Name string
	// Axes are the dimensions in array order, taken as given (use
	// DefaultAxes for the inferred types). Units go through ParseUnit, so
	// a symbol such as um is written as the spec's name.
	Axes []Axis
	// PixelSize is the level-0 physical size of one element per axis; nil
	// means 1 everywhere. A channel axis must have 1.
	PixelSize []float64
	// Shape is the level-0 array shape, used only to refuse levels that
	// would repeat the one above; nil skips that check, and Shape[0] == 0
	// is a growing dim 0 whose length is not known yet.
	Shape []int64
	// Levels is the number of levels including level 0; 0 means 1.
	Levels int
	// Reduce marks the axes each level halves; nil means every space axis.
	// A channel axis is never reduced. Ignored when Levels is 1.
	Reduce []bool
	// Method is mean, min, max or decimate (internal/downsample's names,
	// case-insensitive); "" means mean.
	Method string
	// Version is zwrite's version, recorded in metadata; "" leaves it out.
	Version string
}

// Image is the ome attribute of an OME-Zarr 0.5 image group.
type Image struct {
	// Version is OMEVersion.
	Version     string
	Multiscales []Multiscale
}

// Multiscale is one entry of ome.multiscales.
type Multiscale struct {
	Name     string
	Axes     []Axis
	Datasets []Dataset
	// Transform applies to every level after the level's own; nil when
	// absent (zwrite writes none).
	Transform *Transform
	// Type is the downsampling method's name ("" when absent).
	Type string
	// Metadata is the metadata object, compact JSON (nil when absent).
	Metadata json.RawMessage
	// Downsampling is what zwrite recorded in Metadata; nil for images of
	// other writers.
	Downsampling *Downsampling
}

// Transform is a coordinateTransformations list as 0.5 restricts it: one
// scale, then optionally one translation.
type Transform struct {
	Scale []float64
	// Translation is nil when absent.
	Translation []float64
}

// Dataset is one level: the array's path in the group and its transform.
type Dataset struct {
	Path string
	Transform
}

// Downsampling is how zwrite made each level from the one above.
type Downsampling struct {
	Method string
	Reduce []bool
}

// BuildImage makes the metadata of an image of o.Levels levels at paths
// "0", "1", …: level k's scale is o.PixelSize × 2^k along reduced axes,
// with the translation the method implies (see the decisions at the top of
// this file). Errors are *ImageError naming the input and axis at fault.
func BuildImage(o ImageOptions) (*Image, error) {
	n := len(o.Axes)
	levels := o.Levels
	if levels == 0 {
		levels = 1
	}
	if levels < 1 || levels > MaxLevels {
		return nil, imageErr(FieldLevels, "%d levels (want 1 to %d)", o.Levels, MaxLevels)
	}
	axes := append([]Axis(nil), o.Axes...)
	for i, a := range axes {
		if a.Type != AxisUntyped && !a.Type.known() {
			if err := checkCustomType(string(a.Type)); err != nil {
				return nil, axisErr(FieldAxisType, axes, i, "%v", err)
			}
		}
		if a.Unit != "" {
			u, err := ParseUnit(a.Type, a.Unit)
			if err != nil {
				return nil, axisErr(FieldUnit, axes, i, "%v", err)
			}
			axes[i].Unit = u
		}
	}
	if err := validateAxes(axes); err != nil {
		return nil, err
	}

	pixel := o.PixelSize
	if pixel == nil {
		pixel = make([]float64, n)
		for d := range pixel {
			pixel[d] = 1
		}
	}
	if len(pixel) != n {
		return nil, imageErr(FieldPixelSize, "%d values for %d axes", len(pixel), n)
	}
	for d, p := range pixel {
		if math.IsNaN(p) || math.IsInf(p, 0) || p <= 0 {
			return nil, axisErr(FieldPixelSize, axes, d, "%v: want a positive finite number", p)
		}
		if axes[d].Type == AxisChannel && p != 1 {
			return nil, axisErr(FieldPixelSize, axes, d, "%v: a channel axis has no physical size (want 1)", p)
		}
	}

	reduce := append([]bool(nil), o.Reduce...) // kept in the result: not the caller's slice
	if levels == 1 {
		reduce = make([]bool, n)
	} else if o.Reduce == nil {
		reduce = make([]bool, n)
		for d, a := range axes {
			reduce[d] = a.Type == AxisSpace
		}
	}
	if len(reduce) != n {
		return nil, imageErr(FieldReduce, "%d flags for %d axes", len(reduce), n)
	}
	reduced := false
	for d, r := range reduce {
		if r && axes[d].Type == AxisChannel {
			return nil, axisErr(FieldReduce, axes, d, "a channel axis cannot be downsampled (channels are not neighbours)")
		}
		reduced = reduced || r
	}
	if levels > 1 && !reduced {
		return nil, imageErr(FieldReduce, "no axis is reduced, so all %d levels would be the same", levels)
	}

	if o.Shape != nil {
		if err := checkLevelShapes(axes, o.Shape, reduce, levels); err != nil {
			return nil, err
		}
	}

	method := "mean"
	if o.Method != "" {
		method = ""
		for _, m := range imageMethods {
			if strings.EqualFold(strings.TrimSpace(o.Method), m) {
				method = m
			}
		}
		if method == "" {
			return nil, imageErr(FieldMethod, "%q (want %s)", o.Method, strings.Join(imageMethods, ", "))
		}
	}

	ms := Multiscale{Name: o.Name, Axes: axes, Type: method}
	if ms.Name == "" {
		ms.Name = "image"
	}
	for k := 0; k < levels; k++ {
		tr := levelTransform(pixel, reduce, k, method)
		for d := range tr.Scale {
			if math.IsInf(tr.Scale[d], 0) || (tr.Translation != nil && math.IsInf(tr.Translation[d], 0)) {
				return nil, axisErr(FieldPixelSize, axes, d, "%v × 2^%d overflows", pixel[d], k)
			}
		}
		ms.Datasets = append(ms.Datasets, Dataset{Path: fmt.Sprint(k), Transform: tr})
	}
	md, err := json.Marshal(downsampleMetadata(axes, reduce, levels, method, o.Version))
	if err != nil {
		return nil, fmt.Errorf("build image metadata: %w", err)
	}
	ms.Metadata = md
	ms.Downsampling = &Downsampling{Method: method, Reduce: reduce}
	if levels == 1 {
		ms.Downsampling.Reduce = make([]bool, n)
	}
	img := &Image{Version: OMEVersion, Multiscales: []Multiscale{ms}}
	if err := img.Validate(); err != nil {
		// BuildImage checked everything Validate does; reaching here is a bug.
		return nil, fmt.Errorf("build image metadata: %w", err)
	}
	return img, nil
}

// levelTransform is level k's scale and translation.
//
// Scale: pixel × 2^k along reduced axes, even where a level-(k−1) size is
// odd and the last block holds one element, not two. A level is one
// regular grid (one scale and one translation per axis), so the edge pixel
// cannot be placed on its own; 2^k places every full block exactly, where
// any other value (say the shape ratio 5/3 for 5 → 3) would misplace every
// pixel and drift from level to level; and 2^k is what readers assume when
// they overlay levels: the level-k grid is the level-0 grid coarsened by
// 2^k, extending past the data at an odd edge as if the image were padded
// to an even size there. The edge pixel's value comes from the elements
// that exist (internal/downsample), so its footprint is nominal, its value
// real.
//
// Translation: for mean, min and max, a level-k pixel stands for the 2^k
// level-0 pixels of its block, whose centre lies (2^k − 1)/2 pixels past
// the first one; decimate keeps the first pixel itself: no translation.
func levelTransform(pixel []float64, reduce []bool, k int, method string) Transform {
	n := len(pixel)
	f := float64(uint64(1) << k) // exact: k < MaxLevels
	tr := Transform{Scale: make([]float64, n)}
	shift := method != "decimate" && k > 0
	if shift {
		tr.Translation = make([]float64, n)
	}
	for d, p := range pixel {
		tr.Scale[d] = p
		if reduce[d] {
			tr.Scale[d] = p * f
			if shift {
				tr.Translation[d] = (f - 1) / 2 * p
			}
		}
	}
	return tr
}

// checkLevelShapes refuses a level that would equal the one above it:
// every reduced axis of known length already 1 element long. A reduced
// axis that reaches 1 while others go on is fine (ceil(1/2) = 1 keeps it).
// A growing dim 0 (0) has no known length and never counts as 1.
func checkLevelShapes(axes []Axis, shape []int64, reduce []bool, levels int) error {
	if len(shape) != len(axes) {
		return imageErr(FieldShape, "%d dimensions for %d axes", len(shape), len(axes))
	}
	for d, s := range shape {
		if s < 0 || (s == 0 && d > 0) {
			return axisErr(FieldShape, axes, d, "length %d (want at least 1; only dim 0 may be 0, growing)", s)
		}
	}
	cur := append([]int64(nil), shape...)
	for k := 1; k < levels; k++ {
		done := true
		for d, r := range reduce {
			if r && cur[d] != 1 {
				done = false
			}
		}
		if done {
			return imageErr(FieldLevels, "%d levels: level %d would equal level %d (every reduced axis is 1 element long there); use at most %d levels",
				levels, k, k-1, k)
		}
		for d, r := range reduce {
			if r {
				cur[d] = (cur[d] + 1) / 2
			}
		}
	}
	return nil
}

// metadataJSON is what zwrite records in multiscales[].metadata. Key names
// are camelCase, the spec's naming style.
type metadataJSON struct {
	Software    string   `json:"software"`
	Version     string   `json:"version,omitempty"`
	Method      string   `json:"method"`
	Description string   `json:"description"`
	ReducedAxes []string `json:"reducedAxes"`
	Factor      int      `json:"factor"`
	Size        string   `json:"size"`
	Edge        string   `json:"edge"`
	Rounding    string   `json:"rounding,omitempty"`
}

const zwriteSoftware = "zwrite"

func downsampleMetadata(axes []Axis, reduce []bool, levels int, method, version string) metadataJSON {
	names := []string{}
	if levels > 1 {
		for d, r := range reduce {
			if r {
				names = append(names, axes[d].Name)
			}
		}
	}
	what := map[string]string{
		"mean":     "the mean of each block",
		"min":      "the minimum of each block (NaN propagates)",
		"max":      "the maximum of each block (NaN propagates)",
		"decimate": "the first element of each block (even indices)",
	}[method]
	md := metadataJSON{
		Software: zwriteSoftware,
		Version:  version,
		Method:   method,
		Description: "level k+1 is level k reduced by 2 along the reduced axes: " + what +
			" of up to 2 elements per reduced axis",
		ReducedAxes: names,
		Factor:      2,
		Size:        "ceil(n/2) along reduced axes",
		Edge:        "a block at an odd-sized edge reduces only the elements that exist",
	}
	if method == "mean" {
		md.Rounding = "integers: the exact sum divided by the count of elements, rounded half to even; floats: the float64 sum (compensated for float64) divided by the count, rounded once to the type"
	}
	return md
}

// Validate checks what the 0.5 spec requires of an image's multiscales
// (MUST rules, plus positive scales): 2 to 5 axes with unique names, typed
// in order [time] [channel or one custom/untyped axis] 2 or 3 space axes;
// at least one dataset, paths unique; exactly one scale per level,
// optionally a translation, each as long as the axes, scales positive and
// never shrinking from one level to the next (levels go from largest to
// smallest). Units are not checked (the spec only recommends its lists).
func (img *Image) Validate() error {
	if img.Version != OMEVersion {
		return fmt.Errorf("ome.version: %q (want %q)", img.Version, OMEVersion)
	}
	if len(img.Multiscales) == 0 {
		return fmt.Errorf("ome.multiscales: empty")
	}
	for i := range img.Multiscales {
		if err := img.Multiscales[i].Validate(); err != nil {
			return fmt.Errorf("ome.multiscales[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks one multiscale as Image.Validate does.
func (ms *Multiscale) Validate() error {
	if err := validateAxes(ms.Axes); err != nil {
		return err
	}
	if len(ms.Datasets) == 0 {
		return imageErr(FieldDatasets, "no levels")
	}
	paths := map[string]bool{}
	for k, ds := range ms.Datasets {
		if ds.Path == "" || paths[ds.Path] {
			return imageErr(FieldDatasets, "level %d: path %q is empty or repeated", k, ds.Path)
		}
		paths[ds.Path] = true
		if err := ds.Transform.validate(len(ms.Axes)); err != nil {
			return imageErr(FieldDatasets, "level %d (%q): %v", k, ds.Path, err)
		}
		if k > 0 {
			prev := ms.Datasets[k-1].Scale
			for d, s := range ds.Scale {
				if s < prev[d] {
					return imageErr(FieldDatasets, "level %d (%q): scale %v of axis %q is below level %d's %v (levels go from largest to smallest)",
						k, ds.Path, s, ms.Axes[d].Name, k-1, prev[d])
				}
			}
		}
	}
	if ms.Transform != nil {
		if err := ms.Transform.validate(len(ms.Axes)); err != nil {
			return imageErr(FieldDatasets, "coordinateTransformations: %v", err)
		}
	}
	if dn := ms.Downsampling; dn != nil && len(dn.Reduce) != len(ms.Axes) {
		return imageErr(FieldReduce, "%d flags for %d axes", len(dn.Reduce), len(ms.Axes))
	}
	return nil
}

func (tr *Transform) validate(n int) error {
	if len(tr.Scale) != n {
		return fmt.Errorf("scale has %d values for %d axes", len(tr.Scale), n)
	}
	for d, s := range tr.Scale {
		if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 {
			return fmt.Errorf("scale[%d] = %v (want a positive finite number)", d, s)
		}
	}
	if tr.Translation != nil {
		if len(tr.Translation) != n {
			return fmt.Errorf("translation has %d values for %d axes", len(tr.Translation), n)
		}
		for d, t := range tr.Translation {
			if math.IsNaN(t) || math.IsInf(t, 0) {
				return fmt.Errorf("translation[%d] = %v (want a finite number)", d, t)
			}
		}
	}
	return nil
}

// validateAxes checks the spec's rules on axes: count, unique names, and
// the order by type.
func validateAxes(axes []Axis) error {
	n := len(axes)
	if n < minAxes || n > maxAxes {
		return imageErr(FieldAxes, "%d axes (an OME-Zarr image has %d to %d)", n, minAxes, maxAxes)
	}
	seen := map[string]int{}
	for i, a := range axes {
		if a.Name == "" {
			return axisErr(FieldAxes, axes, i, "the name is empty")
		}
		if j, ok := seen[a.Name]; ok {
			return axisErr(FieldAxes, axes, i, "the name is also axis %d's (names must be unique)", j)
		}
		seen[a.Name] = i
	}
	// The order: [time] [channel/custom/untyped] space space [space].
	space, other, untyped := 0, -1, 0
	for i, a := range axes {
		switch a.Type {
		case AxisTime:
			if i != 0 {
				return axisErr(FieldAxes, axes, i, "a time axis must come first")
			}
		case AxisSpace:
			space++
		default:
			if other >= 0 {
				return axisErr(FieldAxes, axes, i, "a second non-space axis besides time (axis %d, %q): at most one channel or custom axis", other, axes[other].Name)
			}
			other = i
			if a.Type == AxisUntyped {
				untyped++
			}
		}
		if a.Type != AxisSpace && space > 0 {
			return axisErr(FieldAxes, axes, i, "a %s axis after a space axis (space axes come last)", a.Type)
		}
	}
	if space < 2 || space > 3 {
		return imageErr(FieldAxes, "%d space axes (want 2 or 3)", space)
	}
	// The 0.5 schema counts the space axes with "contains" {type: space},
	// which an axis without a type also matches, and allows at most 3: so
	// an untyped axis beside 3 space axes is invalid there.
	if untyped > 0 && space == 3 {
		return axisErr(FieldAxisType, axes, other, "an axis without a type beside 3 space axes is invalid in OME-Zarr 0.5 (its schema counts it as a fourth space axis); give it a type: channel or a custom one")
	}
	return nil
}

// Factors is level k's scale relative to level 0, per axis (2^k along the
// axes zwrite reduces). k must be a level of ms.
func (ms *Multiscale) Factors(k int) []float64 {
	f := make([]float64, len(ms.Axes))
	for d := range f {
		f[d] = ms.Datasets[k].Scale[d] / ms.Datasets[0].Scale[d]
	}
	return f
}

// JSON shapes of the ome attribute, fields in the order written.

type imageAttrsJSON struct {
	OME imageJSON `json:"ome"`
}

type imageJSON struct {
	Version     string           `json:"version"`
	Multiscales []multiscaleJSON `json:"multiscales"`
}

type multiscaleJSON struct {
	Name                      string          `json:"name,omitempty"`
	Axes                      []axisJSON      `json:"axes"`
	Datasets                  []datasetJSON   `json:"datasets"`
	CoordinateTransformations []transformJSON `json:"coordinateTransformations,omitempty"`
	Type                      string          `json:"type,omitempty"`
	Metadata                  json.RawMessage `json:"metadata,omitempty"`
}

type axisJSON struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	Unit string `json:"unit,omitempty"`
}

type datasetJSON struct {
	Path                      string          `json:"path"`
	CoordinateTransformations []transformJSON `json:"coordinateTransformations"`
}

type transformJSON struct {
	Type        string    `json:"type"`
	Scale       []float64 `json:"scale,omitempty"`
	Translation []float64 `json:"translation,omitempty"`
}

func (tr *Transform) toJSON() []transformJSON {
	out := []transformJSON{{Type: "scale", Scale: tr.Scale}}
	if tr.Translation != nil {
		out = append(out, transformJSON{Type: "translation", Translation: tr.Translation})
	}
	return out
}

// ImageAttributes returns the attributes object of img's group zarr.json,
// {"ome": {...}}, compact, for callers that add it to a group of their
// own. It validates img first.
func ImageAttributes(img *Image) (json.RawMessage, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("marshal image metadata: %w", err)
	}
	a := imageAttrsJSON{OME: imageJSON{Version: img.Version}}
	for _, ms := range img.Multiscales {
		m := multiscaleJSON{Name: ms.Name, Type: ms.Type, Metadata: ms.Metadata}
		for _, ax := range ms.Axes {
			m.Axes = append(m.Axes, axisJSON{Name: ax.Name, Type: string(ax.Type), Unit: ax.Unit})
		}
		for _, ds := range ms.Datasets {
			m.Datasets = append(m.Datasets, datasetJSON{Path: ds.Path, CoordinateTransformations: ds.Transform.toJSON()})
		}
		if ms.Transform != nil {
			m.CoordinateTransformations = ms.Transform.toJSON()
		}
		a.OME.Multiscales = append(a.OME.Multiscales, m)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("marshal image metadata: %w", err)
	}
	return b, nil
}

// MarshalImage returns the group zarr.json of an image: MarshalGroup of
// ImageAttributes (deterministic: fixed field order, two-space indent,
// trailing newline). Only the fields Image models are written.
func MarshalImage(img *Image) ([]byte, error) {
	a, err := ImageAttributes(img)
	if err != nil {
		return nil, err
	}
	return MarshalGroup(a)
}

// ParseImageGroup reads an image's group zarr.json: ParseGroup, then
// ParseImage of its attributes.
func ParseImageGroup(b []byte) (*Image, error) {
	a, err := ParseGroup(b)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("parse image: the group has no attributes (not an OME-Zarr image)")
	}
	return ParseImage(a)
}

// ParseImage reads the ome attribute of an image group from the group's
// attributes object, written by zwrite or another OME-Zarr 0.5 writer.
// Fields the model has no place for (omero, @id, custom keys) are allowed
// and skipped; the fields it reads must have the types the schema gives,
// and the result must pass Image.Validate. Errors name the JSON path.
func ParseImage(attrs []byte) (*Image, error) {
	img, err := parseImage(attrs)
	if err != nil {
		return nil, fmt.Errorf("parse image: %w", err)
	}
	return img, nil
}

func parseImage(attrs []byte) (*Image, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &top); err != nil || top == nil {
		return nil, fmt.Errorf("attributes: want a JSON object, got %s", clip(attrs))
	}
	raw, ok := top["ome"]
	if !ok {
		if _, old := top["multiscales"]; old {
			return nil, fmt.Errorf("attributes.multiscales outside attributes.ome is OME-Zarr 0.4 or older; only %s is read", OMEVersion)
		}
		return nil, fmt.Errorf("attributes.ome: missing (not an OME-Zarr image)")
	}
	var ome map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ome); err != nil || ome == nil {
		return nil, fmt.Errorf("ome: want an object, got %s", clip(raw))
	}
	img := &Image{}
	if err := json.Unmarshal(ome["version"], &img.Version); err != nil {
		return nil, fmt.Errorf("ome.version: want a string, got %s", clip(ome["version"]))
	}
	if img.Version != OMEVersion {
		return nil, fmt.Errorf("ome.version: %q not supported (want %q)", img.Version, OMEVersion)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(ome["multiscales"], &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("ome.multiscales: want a non-empty list, got %s", clip(ome["multiscales"]))
	}
	for i, r := range list {
		ms, err := parseMultiscale(r, fmt.Sprintf("ome.multiscales[%d]", i))
		if err != nil {
			return nil, err
		}
		img.Multiscales = append(img.Multiscales, *ms)
	}
	if err := img.Validate(); err != nil {
		return nil, err
	}
	return img, nil
}

// field unmarshals an optional member of obj into v; a present member of
// the wrong type is an error naming path.key.
func field(obj map[string]json.RawMessage, key, path string, v any, want string) (bool, error) {
	raw, ok := obj[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil || string(bytes.TrimSpace(raw)) == "null" {
		return true, fmt.Errorf("%s.%s: want %s, got %s", path, key, want, clip(raw))
	}
	return true, nil
}

func parseMultiscale(raw json.RawMessage, path string) (*Multiscale, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%s: want an object, got %s", path, clip(raw))
	}
	ms := &Multiscale{}
	if _, err := field(obj, "name", path, &ms.Name, "a string"); err != nil {
		return nil, err
	}
	if _, err := field(obj, "type", path, &ms.Type, "a string"); err != nil {
		return nil, err
	}
	if m, ok := obj["metadata"]; ok {
		var o map[string]json.RawMessage
		if err := json.Unmarshal(m, &o); err != nil || o == nil {
			return nil, fmt.Errorf("%s.metadata: want an object, got %s", path, clip(m))
		}
		// Compact, so that a parsed image marshals to the same bytes as
		// the one it was written from.
		var c bytes.Buffer
		if err := json.Compact(&c, m); err != nil {
			return nil, fmt.Errorf("%s.metadata: %w", path, err)
		}
		ms.Metadata = c.Bytes()
	}

	var axes []map[string]json.RawMessage
	if ok, err := field(obj, "axes", path, &axes, "a list of objects"); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s.axes: missing", path)
		}
		return nil, err
	}
	for i, a := range axes {
		p := fmt.Sprintf("%s.axes[%d]", path, i)
		if a == nil {
			return nil, fmt.Errorf("%s: want an object, got null", p)
		}
		var ax Axis
		if ok, err := field(a, "name", p, &ax.Name, "a string"); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s.name: missing", p)
			}
			return nil, err
		}
		var typ string
		if _, err := field(a, "type", p, &typ, "a string"); err != nil {
			return nil, err
		}
		ax.Type = AxisType(typ)
		if _, err := field(a, "unit", p, &ax.Unit, "a string"); err != nil {
			return nil, err
		}
		ms.Axes = append(ms.Axes, ax)
	}

	var datasets []map[string]json.RawMessage
	if ok, err := field(obj, "datasets", path, &datasets, "a list of objects"); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s.datasets: missing", path)
		}
		return nil, err
	}
	for k, d := range datasets {
		p := fmt.Sprintf("%s.datasets[%d]", path, k)
		if d == nil {
			return nil, fmt.Errorf("%s: want an object, got null", p)
		}
		var ds Dataset
		if ok, err := field(d, "path", p, &ds.Path, "a string"); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s.path: missing", p)
			}
			return nil, err
		}
		tr, err := parseTransforms(d["coordinateTransformations"], p+".coordinateTransformations")
		if err != nil {
			return nil, err
		}
		ds.Transform = *tr
		ms.Datasets = append(ms.Datasets, ds)
	}
	if raw, ok := obj["coordinateTransformations"]; ok {
		tr, err := parseTransforms(raw, path+".coordinateTransformations")
		if err != nil {
			return nil, err
		}
		ms.Transform = tr
	}
	if err := ms.parseDownsampling(path); err != nil {
		return nil, err
	}
	return ms, nil
}

// parseTransforms reads a coordinateTransformations list as 0.5 allows
// it: a scale, then optionally a translation, both inline lists.
func parseTransforms(raw json.RawMessage, path string) (*Transform, error) {
	if raw == nil {
		return nil, fmt.Errorf("%s: missing", path)
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s: want a non-empty list of objects, got %s", path, clip(raw))
	}
	tr := &Transform{}
	for i, t := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		if t == nil {
			return nil, fmt.Errorf("%s: want an object, got null", p)
		}
		var typ string
		if ok, err := field(t, "type", p, &typ, "a string"); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s.type: missing", p)
			}
			return nil, err
		}
		if _, ok := t["path"]; ok {
			return nil, fmt.Errorf("%s.path: a %s stored as binary data is not supported (want it inline)", p, typ)
		}
		var dst *[]float64
		switch {
		case typ == "scale" && i == 0:
			dst = &tr.Scale
		case typ == "translation" && i == 1:
			dst = &tr.Translation
		case typ == "scale" || typ == "translation":
			return nil, fmt.Errorf("%s: %s in position %d (want one scale, then optionally one translation)", p, typ, i)
		default:
			return nil, fmt.Errorf("%s.type: %q (0.5 allows only scale and translation)", p, typ)
		}
		if ok, err := field(t, typ, p, dst, "a list of numbers"); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s.%s: missing", p, typ)
			}
			return nil, err
		}
		if *dst == nil {
			*dst = []float64{}
		}
	}
	return tr, nil
}

// parseDownsampling reads zwrite's own metadata (software "zwrite") into
// ms.Downsampling; other writers' metadata is left alone.
func (ms *Multiscale) parseDownsampling(path string) error {
	if ms.Metadata == nil {
		return nil
	}
	var md struct {
		Software    string   `json:"software"`
		Method      string   `json:"method"`
		ReducedAxes []string `json:"reducedAxes"`
	}
	if json.Unmarshal(ms.Metadata, &md) != nil || md.Software != zwriteSoftware {
		return nil
	}
	p := path + ".metadata"
	known := false
	for _, m := range imageMethods {
		known = known || md.Method == m
	}
	if !known {
		return fmt.Errorf("%s.method: %q (want %s)", p, md.Method, strings.Join(imageMethods, ", "))
	}
	dn := &Downsampling{Method: md.Method, Reduce: make([]bool, len(ms.Axes))}
	for _, name := range md.ReducedAxes {
		found := false
		for d, a := range ms.Axes {
			if a.Name == name && !dn.Reduce[d] {
				dn.Reduce[d], found = true, true
			}
		}
		if !found {
			return fmt.Errorf("%s.reducedAxes: %q is not an axis or is listed twice", p, name)
		}
	}
	ms.Downsampling = dn
	return nil
}
