package backend

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/stage"
	"github.com/zwrite/zwrite/internal/zarr"
)

func TestParse(t *testing.T) {
	// Every name round-trips through String.
	for _, k := range Kinds {
		got, err := Parse(k.String())
		if err != nil || got != k {
			t.Errorf("Parse(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	tests := []struct {
		in   string
		want Kind
	}{
		{"auto", Auto}, {"Auto", Auto}, {"AUTO", Auto}, {"", Auto}, {"  ", Auto},
		{"cpu", CPU}, {"CPU", CPU}, {" Cpu\t", CPU},
		{"gpu", GPU}, {"GPU", GPU}, {" gpu ", GPU}, {"cuda", GPU}, {"CUDA", GPU},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"tpu", "cpu2", "gpu,cpu", "c p u"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			got, err := Parse(bad)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", bad, got)
			}
			// The message names what was given and every accepted name.
			msg := err.Error()
			for _, want := range []string{strconv.Quote(bad), "auto", "cpu", "gpu"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Parse(%q) error %q does not mention %s", bad, msg, want)
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{Auto: "auto", CPU: "cpu", GPU: "gpu", Kind(7): "backend(7)"}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, s)
		}
	}
	if len(Kinds) != 3 {
		t.Errorf("Kinds = %v; a new backend needs a case in every test here", Kinds)
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
	} else if why := gpu.Supports(cfg.Spec.Codec); !strings.Contains(ue.Error(), "GPU backend cannot run here") || !strings.Contains(ue.Error(), why.Error()) {
		// The message says that the GPU cannot run and why (the reason
		// gpu.Supports gives), so the user can act on it.
		t.Errorf("Open(gpu) error %q; want it to say the GPU backend cannot run here, because %q", ue.Error(), why)
	}
	_, err = Open("tpu", cfg)
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), `"tpu"`) {
		// A misspelt name is not "unavailable": it is an unknown backend.
		t.Errorf("Open(tpu) = %v; want the unknown-backend error naming it", err)
	}
}
