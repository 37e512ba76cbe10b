package backend

import (
	"errors"
	"testing"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

func TestParse(t *testing.T) {
	for _, k := range Kinds {
		got, err := Parse(k.String())
		if err != nil || got != k {
			t.Errorf("Parse(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	for _, s := range []string{"CPU", " gpu ", "Auto"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	if _, err := Parse("tpu"); err == nil {
		t.Error(`Parse("tpu") gave no error`)
	}
}

func TestOpen(t *testing.T) {
	cfg := stage.Config{Spec: zarr.Spec{Shape: []int64{0, 4}, DType: zarr.Uint16, Chunk: []int64{2, 2},
		Shard: []int64{2, 4}, Codec: zarr.CodecZstd, Level: 1}}
	// auto takes the GPU exactly when it can run the codec here.
	onGPU := gpu.Supports(cfg.Spec.Codec) == nil
	autoWant := "cpu"
	if onGPU {
		autoWant = "gpu"
	}
	for _, tc := range []struct{ name, want string }{{"auto", autoWant}, {"cpu", "cpu"}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(tc.name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Name() != tc.want {
				t.Errorf("Open(%q).Name() = %q, want %s", tc.name, st.Name(), tc.want)
			}
		})
	}
	st, err := Open("gpu", cfg)
	var ue *UnavailableError
	if onGPU {
		if err != nil {
			t.Errorf("Open(gpu) on a GPU that runs %v = %v", cfg.Spec.Codec, err)
		} else {
			st.Close()
		}
	} else if !errors.As(err, &ue) {
		t.Errorf("Open(gpu) = %v, want an UnavailableError", err)
	} else {
		t.Logf("Open(gpu): %v", err)
	}
	if _, err := Open("tpu", cfg); err == nil {
		t.Error("Open(tpu) gave no error")
	}
}
