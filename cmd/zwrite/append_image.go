package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/pyramid"
	"github.com/zwrite/zwrite/internal/zarr"
)

// imageOptions are append's flags for OME-Zarr images and group stores.
type imageOptions struct {
	levels    string
	method    string
	downDims  string
	ome       bool
	units     string
	pixelSize string
	axisTypes string
	name      string
	arrayPath string
	// Set by validate.
	downMethod    downsample.Method
	reduce        []bool
	nLevels       int // 0: a bare array
	axesResolved  []zarr.Axis
	pixelResolved []float64
}

func (o *imageOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.levels, "levels", "", "write an OME-Zarr image with N levels, each halving the reduced axes (N >= 1, or auto: until the smallest level fits in one chunk); needs --dims")
	f.StringVar(&o.method, "downsample", "mean", "how a level is made from the one above: mean (integers rounded half to even), min, max or decimate")
	f.StringVar(&o.downDims, "downsample-dims", "", "the axes each level halves, by name from --dims, e.g. y,x or t,z,y,x (default: every space axis)")
	f.BoolVar(&o.ome, "ome", false, "write an OME-Zarr image (a group with one level) even without --levels")
	f.StringVar(&o.units, "units", "", "physical units per axis, e.g. t=millisecond,y=micrometer,x=micrometer (OME-NGFF unit names or symbols such as um, ms)")
	f.StringVar(&o.pixelSize, "pixel-size", "", "level 0's physical size of one element per axis, e.g. z=2,y=0.65,x=0.65 (default 1)")
	f.StringVar(&o.axisTypes, "axis-types", "", "axis types where the name does not say (t is time, c channel, z/y/x space), e.g. ch=channel")
	f.StringVar(&o.name, "image-name", "", "the image's name in its OME metadata (default: the store's base name)")
	f.StringVar(&o.arrayPath, "array", "", "write the array (or image) at this path inside a group store, e.g. cam1 or pos3/raw; parent groups are created; other nodes are never touched")
}

// image reports whether append writes an OME image rather than an array.
func (o *imageOptions) image() bool { return o.nLevels > 0 }

// validate checks the image flags against the array's spec. f tells which
// were given.
func (o *imageOptions) validate(f *pflag.FlagSet, spec *zarr.Spec) error {
	imageFlags := []string{"downsample", "downsample-dims", "units", "pixel-size", "axis-types", "image-name"}
	switch {
	case o.levels != "":
		if spec.DimNames == nil {
			return usagef("--levels writes an OME-Zarr image, whose axes need names: give --dims (e.g. t,y,x)")
		}
	case o.ome:
		if spec.DimNames == nil {
			return usagef("--ome writes an OME-Zarr image, whose axes need names: give --dims (e.g. t,y,x)")
		}
	default:
		for _, n := range imageFlags {
			if f.Changed(n) {
				return usagef("--%s is for OME-Zarr images: give --levels N (or --ome) with it", n)
			}
		}
		if o.arrayPath != "" {
			if err := checkNodePath(o.arrayPath); err != nil {
				return err
			}
		}
		return nil
	}
	if o.arrayPath != "" {
		if err := checkNodePath(o.arrayPath); err != nil {
			return err
		}
	}
	var err error
	if o.downMethod, err = downsample.ParseMethod(o.method); err != nil {
		return &usageError{fmt.Errorf("--downsample: %w", err)}
	}
	axes := zarr.DefaultAxes(spec.DimNames)
	if o.axisTypes != "" {
		pairs, err := namedValues("axis-types", o.axisTypes, spec.DimNames)
		if err != nil {
			return err
		}
		for i, v := range pairs {
			if v == "" {
				continue
			}
			if axes[i].Type, err = zarr.ParseAxisType(v); err != nil {
				return &usageError{fmt.Errorf("--axis-types %s: %w", spec.DimNames[i], err)}
			}
		}
	}
	// Reduced axes: named ones, or every space axis.
	o.reduce = make([]bool, spec.Rank())
	if o.downDims != "" {
		for _, n := range strings.Split(o.downDims, ",") {
			i := indexOf(spec.DimNames, strings.TrimSpace(n))
			if i < 0 {
				return usagef("--downsample-dims %q: %q is not one of --dims %s", o.downDims, n, strings.Join(spec.DimNames, ","))
			}
			o.reduce[i] = true
		}
	} else {
		for i, a := range axes {
			o.reduce[i] = a.Type == zarr.AxisSpace
		}
	}
	o.nLevels = 1
	switch {
	case o.levels == "auto":
		o.nLevels = pyramid.AutoLevels(*spec, o.reduce)
	case o.levels != "":
		n, err := strconv.Atoi(o.levels)
		if err != nil || n < 1 || n > pyramid.MaxLevels {
			return usagef("--levels %q: want 1 to %d, or auto", o.levels, pyramid.MaxLevels)
		}
		o.nLevels = n
	}
	if o.units != "" {
		pairs, err := namedValues("units", o.units, spec.DimNames)
		if err != nil {
			return err
		}
		for i, v := range pairs {
			if v == "" {
				continue
			}
			if axes[i].Unit, err = zarr.ParseUnit(axes[i].Type, v); err != nil {
				return &usageError{fmt.Errorf("--units %s: %w", spec.DimNames[i], err)}
			}
		}
	}
	pixel := make([]float64, spec.Rank())
	for i := range pixel {
		pixel[i] = 1
	}
	if o.pixelSize != "" {
		pairs, err := namedValues("pixel-size", o.pixelSize, spec.DimNames)
		if err != nil {
			return err
		}
		for i, v := range pairs {
			if v == "" {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x > 0) {
				return usagef("--pixel-size %s=%s: want a positive number", spec.DimNames[i], v)
			}
			pixel[i] = x
		}
	}
	if _, err := pyramid.LevelSpecs(*spec, o.nLevels, o.reduce); err != nil {
		return usagef("--levels %d: %v", o.nLevels, err)
	}
	o.axesResolved, o.pixelResolved = axes, pixel
	if _, err := o.buildImage(spec, ""); err != nil {
		return err
	}
	return nil
}

// buildImage makes the image's OME metadata; errors name the flags.
func (o *imageOptions) buildImage(spec *zarr.Spec, version string) (*zarr.Image, error) {
	img, err := zarr.BuildImage(zarr.ImageOptions{
		Name: o.name, Axes: o.axesResolved, PixelSize: o.pixelResolved, Shape: spec.Shape,
		Levels: o.nLevels, Reduce: o.reduce, Method: o.downMethod.String(), Version: version,
	})
	var ie *zarr.ImageError
	if errors.As(err, &ie) {
		flag := map[zarr.ImageField]string{
			zarr.FieldAxes: "--dims", zarr.FieldAxisType: "--axis-types", zarr.FieldUnit: "--units",
			zarr.FieldPixelSize: "--pixel-size", zarr.FieldShape: "--shape", zarr.FieldLevels: "--levels",
			zarr.FieldReduce: "--downsample-dims", zarr.FieldMethod: "--downsample",
		}[ie.Field]
		if flag == "" {
			flag = "image"
		}
		return nil, usagef("%s: %v", flag, ie)
	}
	return img, err
}

// namedValues parses "name=value,..." into one value per dimension ("" for
// those not named).
func namedValues(flag, s string, names []string) ([]string, error) {
	out := make([]string, len(names))
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("--%s %q: want name=value pairs, e.g. y=0.65,x=0.65", flag, s)
		}
		i := indexOf(names, strings.TrimSpace(k))
		if i < 0 {
			return nil, usagef("--%s %q: %q is not one of --dims %s", flag, s, k, strings.Join(names, ","))
		}
		if out[i] != "" {
			return nil, usagef("--%s %q: %q is given twice", flag, s, k)
		}
		out[i] = strings.TrimSpace(v)
	}
	return out, nil
}

func indexOf(names []string, n string) int {
	for i, x := range names {
		if x == n {
			return i
		}
	}
	return -1
}

// checkNodePath refuses an --array path that is not a plain relative path.
func checkNodePath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return usagef("--array %q: want a relative path inside the store, such as cam1 or pos3/raw", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || part == "c" || strings.HasPrefix(part, ".") || strings.HasPrefix(part, "__") {
			return usagef("--array %q: %q cannot name a node (no empty, dot or \"c\" parts; names starting with \".\" or \"__\" are reserved)", p, part)
		}
	}
	return nil
}
