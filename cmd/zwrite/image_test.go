package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/downsample"
	"github.com/zwrite/zwrite/internal/zarr"
)

// interopTools returns node and the interop script dir, skipping (or,
// under ZWRITE_INTEROP=require, failing) when they are missing.
func interopTools(t *testing.T) (node, dir string) {
	t.Helper()
	dir, err := filepath.Abs("../../scripts/interop")
	if err != nil {
		t.Fatal(err)
	}
	required := os.Getenv("ZWRITE_INTEROP") == "require"
	node, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "zarrita"))
	}
	if err != nil {
		if required {
			t.Fatalf("the interop check needs node and scripts/interop/node_modules (make interop-deps): %v", err)
		}
		t.Skipf("no node or npm packages (%v); run `make interop`", err)
	}
	return node, dir
}

// TestImageAppend: --levels writes an OME-Zarr 0.5 image whose group
// metadata passes the official schemas, whose every level equals the
// reference reduction of the level above (zwrite verify --raw), and which
// zarrita reads level by level.
func TestImageAppend(t *testing.T) {
	node, idir := interopTools(t)
	dir := t.TempDir()
	type entry struct {
		Name  string  `json:"name"`
		Store string  `json:"store"`
		Raw   string  `json:"raw"`
		Codec string  `json:"codec"`
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	}
	var manifest []entry
	var groups []string
	for _, tc := range []struct {
		name, shape, chunk, shard, dims, down, method, dtype, codec string
		frames                                                      int64
		levels                                                      int
	}{
		{"tyx-mean", "0,45,61", "4,16,16", "8,32,32", "t,y,x", "", "mean", "uint16", "zstd", 21, 4},
		{"tczyx-max", "0,2,7,33,20", "2,1,4,16,16", "4,1,4,16,16", "t,c,z,y,x", "", "max", "uint8", "lz4", 5, 3},
		{"zyx-time-too", "0,29,31", "3,8,8", "6,16,16", "t,y,x", "t,y,x", "mean", "int32", "zstd", 19, 3},
		{"yx-decimate", "0,50", "8,16", "16,32", "y,x", "", "decimate", "float32", "none", 41, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := zarr.Spec{DType: mustDType(t, tc.dtype)}
			shape, _ := parseDims("shape", tc.shape)
			shape[0] = tc.frames
			spec.Shape = shape
			raw := randomBytes(tc.frames*spec.FrameBytes(), uint64(tc.frames))
			if spec.DType == zarr.Float32 {
				for i := 3; i < len(raw); i += 4 {
					raw[i] &= 0x3f // finite floats
				}
			}
			in := filepath.Join(dir, tc.name+".raw")
			os.WriteFile(in, raw, 0o644)
			store := filepath.Join(dir, tc.name+".zarr")
			args := []string{"append", "-o", store, "--shape", tc.shape, "--dtype", tc.dtype, "--chunk", tc.chunk, "--shard", tc.shard,
				"--codec", tc.codec, "--dims", tc.dims, "--levels", fmt.Sprint(tc.levels), "--downsample", tc.method, "--depth", "2", in}
			if tc.down != "" {
				args = append(args, "--downsample-dims", tc.down)
			}
			mustZw(t, nil, args...)
			names := strings.Split(tc.dims, ",")
			reduce := make([]bool, len(names))
			for i, n := range names {
				reduce[i] = n == "x" || n == "y" || n == "z" || (tc.down != "" && strings.Contains(tc.down, n))
			}
			m, _ := downsample.ParseMethod(tc.method)
			level := raw
			for k := 0; k < tc.levels; k++ {
				lraw := filepath.Join(dir, fmt.Sprintf("%s-%d.raw", tc.name, k))
				os.WriteFile(lraw, level, 0o644)
				mustZw(t, nil, "verify", filepath.Join(store, fmt.Sprint(k)), "--raw", lraw)
				manifest = append(manifest, entry{fmt.Sprintf("%s/%d", tc.name, k), filepath.Join(tc.name+".zarr", fmt.Sprint(k)), filepath.Base(lraw), tc.codec, tc.dtype, append([]int64(nil), shape...)})
				p, err := downsample.NewPlan(shape, reduce, spec.DType, m)
				if err != nil {
					t.Fatal(err)
				}
				next := make([]byte, p.Out[0]*p.FrameBytes())
				downsample.Reference(p, next, level, 0, p.Out[0])
				if spec.DType == zarr.Float32 {
					p.Frames(next, level, 0, p.Out[0]) // floats: ours, within an ulp of the reference (downsample tests)
				}
				level, shape = next, p.Out
			}
			groups = append(groups, filepath.Join(store, "zarr.json"))
		})
	}
	mb, _ := json.MarshalIndent(manifest, "", "  ")
	mpath := filepath.Join(dir, "manifest.json")
	os.WriteFile(mpath, mb, 0o644)
	if out, err := exec.Command(node, filepath.Join(idir, "check.mjs"), mpath).CombinedOutput(); err != nil {
		t.Fatalf("zarrita disagrees with the levels: %v\n%s", err, out)
	}
	if out, err := exec.Command(node, append([]string{filepath.Join(idir, "ome_check.mjs"), "--arrays"}, groups...)...).CombinedOutput(); err != nil {
		t.Fatalf("the OME-Zarr 0.5 schemas reject what we wrote: %v\n%s", err, out)
	}
}

func mustDType(t *testing.T, s string) zarr.DType {
	d, err := zarr.ParseDType(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImageFlags: the image flags' errors name the flag.
func TestImageFlags(t *testing.T) {
	base := []string{"append", "-o", filepath.Join(t.TempDir(), "s.zarr"), "--shape", "0,8,8", "--dtype", "u16", "--chunk", "2,4,4"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--levels", "3"}, "--levels writes an OME-Zarr image, whose axes need names: give --dims"},
		{[]string{"--dims", "t,y,x", "--levels", "0"}, "--levels \"0\": want 1 to 32, or auto"},
		{[]string{"--dims", "t,y,x", "--levels", "2", "--downsample", "median"}, "--downsample: unknown downsampling method \"median\""},
		{[]string{"--dims", "t,y,x", "--levels", "2", "--downsample-dims", "q"}, "--downsample-dims \"q\": \"q\" is not one of --dims t,y,x"},
		{[]string{"--dims", "t,y,x", "--levels", "2", "--units", "y=furlong"}, "--units y:"},
		{[]string{"--dims", "t,y,x", "--levels", "2", "--pixel-size", "y=-1"}, "--pixel-size y=-1: want a positive number"},
		{[]string{"--dims", "t,y,x", "--pixel-size", "y=1"}, "--pixel-size is for OME-Zarr images"},
		{[]string{"--array", "../x"}, "--array \"../x\""},
	} {
		code, _, stderr := zw(t, context.Background(), nil, append(base, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, exitUsage, tc.want, stderr)
		}
	}
}
