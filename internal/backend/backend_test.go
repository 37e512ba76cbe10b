package backend

import (
	"errors"
	"testing"

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
	for _, name := range []string{"auto", "cpu"} {
		t.Run(name, func(t *testing.T) {
			st, err := Open(name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Name() != "cpu" {
				t.Errorf("Open(%q).Name() = %q, want cpu", name, st.Name())
			}
		})
	}
	_, err := Open("gpu", cfg)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Errorf("Open(gpu) = %v, want an UnavailableError", err)
	}
	if _, err := Open("tpu", cfg); err == nil {
		t.Error("Open(tpu) gave no error")
	}
}
