package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/backend"
	"github.com/zwrite/zwrite/internal/blosc"
	"github.com/zwrite/zwrite/internal/gpu"
	"github.com/zwrite/zwrite/internal/zarr"
)

// TestAllCodecs: every codec once, every blosc codec once per shuffle.
func TestAllCodecs(t *testing.T) {
	all := AllCodecs()
	want := 0
	for _, c := range zarr.Codecs {
		n := 0
		for _, ch := range all {
			if ch.Codec == c {
				n++
			}
		}
		w := 1
		if c.Blosc() {
			w = len(blosc.Shuffles)
		}
		if n != w {
			t.Errorf("codec %s appears %d times, want %d", c, n, w)
		}
		want += w
	}
	if len(all) != want {
		t.Errorf("%d choices, want %d", len(all), want)
	}
	seen := map[string]bool{}
	for _, ch := range all {
		if seen[ch.String()] {
			t.Errorf("%s twice", ch)
		}
		seen[ch.String()] = true
		back, err := ParseCodecs(ch.String())
		if err != nil || len(back) != 1 || back[0] != ch {
			t.Errorf("ParseCodecs(%q) = %v, %v; want %v", ch.String(), back, err, ch)
		}
	}
}

func TestParseCodecs(t *testing.T) {
	lz4 := func(s zarr.Shuffle) CodecChoice { return CodecChoice{zarr.CodecLZ4, s} }
	tests := []struct {
		in   string
		want []CodecChoice
		err  string
	}{
		{in: "ALL", want: AllCodecs()},
		{in: "zstd", want: []CodecChoice{{Codec: zarr.CodecZstd}}},
		{in: "zstd, lz4:bit ,none", want: []CodecChoice{{Codec: zarr.CodecZstd}, lz4(zarr.BitShuffle), {Codec: zarr.CodecNone}}},
		{in: "lz4", want: []CodecChoice{lz4(zarr.ByteShuffle)}},
		{in: "lz4:none,lz4:byte", want: []CodecChoice{lz4(zarr.NoShuffle), lz4(zarr.ByteShuffle)}},
		{in: "gzip", err: "unknown codec"},
		{in: "zstd:bit", err: "no shuffle filter"},
		{in: "lz4:sideways", err: "unknown shuffle"},
		{in: "lz4,lz4:byte", err: "twice"},
		{in: "", err: "unknown codec"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCodecs(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseCodecs(%q) = %v, %v; want an error mentioning %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ParseCodecs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no kernels, wrapped", fmt.Errorf("open gpu backend: %w", fmt.Errorf("%w: lz4 with shuffle bit", gpu.ErrNoKernels)), "no GPU kernels"},
		{"no gpu", fmt.Errorf("x: %w", gpu.ErrNoGPU), "no GPU"},
		{"unavailable", &backend.UnavailableError{Reason: "the GPU backend cannot run here"}, "backend unavailable"},
		{"a real failure", errors.New("write shard: disk full"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := skipReason(tc.err); got != tc.want {
				t.Errorf("skipReason(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestRunMatrix runs every codec choice on the cpu and gpu backends: the
// cpu runs write what they were asked (codec, shuffle), a gpu that is
// missing here or lacks a codec gives cells saying why, nothing fails, and
// the table has a line per choice.
func TestRunMatrix(t *testing.T) {
	base := Options{Scenario: smokeScenario(t), DType: zarr.Uint16, Level: 1, Fill: FillCamera,
		Frames: 9, WriteBytes: 20000, Prefill: true, Depth: 2, NoBaselines: true}
	choices := AllCodecs()
	var seen []*Report
	m, err := RunMatrix(context.Background(), base, choices, []string{"cpu", "gpu"}, func(r *Report) error {
		seen = append(seen, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rows) != len(choices) || m.Failed() != 0 {
		t.Fatalf("%d rows for %d choices, %d failed", len(m.Rows), len(choices), m.Failed())
	}
	reports := 0
	for i, row := range m.Rows {
		if row.Choice != choices[i] || len(row.Cells) != 2 {
			t.Fatalf("row %d: %v with %d cells", i, row.Choice, len(row.Cells))
		}
		for _, c := range row.Cells {
			switch {
			case c.Report != nil:
				reports++
				r := c.Report
				shuffle := ""
				if row.Choice.Codec.Blosc() {
					shuffle = zarr.ShuffleName(row.Choice.Shuffle)
				}
				if r.Scenario.Codec != row.Choice.Codec.String() || r.Scenario.Shuffle != shuffle || r.Config.Backend != c.Backend || r.Result.Ratio <= 0 {
					t.Errorf("%s on %s: report says %s/%q on %s, ratio %v", row.Choice, c.Backend, r.Scenario.Codec, r.Scenario.Shuffle, r.Config.Backend, r.Result.Ratio)
				}
			case c.Backend == "cpu":
				t.Errorf("%s on the cpu: no report (skip %q, err %v)", row.Choice, c.Skip, c.Err)
			case c.Skip == "":
				t.Errorf("%s on the gpu: neither a report nor a reason", row.Choice)
			}
		}
	}
	if len(seen) != reports {
		t.Errorf("each saw %d reports, the matrix holds %d", len(seen), reports)
	}
	// Shuffles change the bytes: lz4's ratio differs between filters.
	ratios := map[string]float64{}
	for _, row := range m.Rows {
		if r := row.Cells[0].Report; r != nil && row.Choice.Codec == zarr.CodecLZ4 {
			ratios[row.Choice.String()] = r.Result.Ratio
		}
	}
	if ratios["lz4:byte"] == ratios["lz4:none"] || ratios["lz4:bit"] == ratios["lz4:none"] {
		t.Errorf("lz4 ratios %v: the shuffle did not reach the encoder", ratios)
	}
	var tb bytes.Buffer
	if err := m.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, ch := range choices {
		line := ch.Codec.String()
		if ch.Codec.Blosc() {
			line += " " + zarr.ShuffleName(ch.Shuffle)
		}
		if !strings.Contains(strings.Join(strings.Fields(tb.String()), " "), line) {
			t.Errorf("table has no line for %s:\n%s", ch, tb.String())
		}
	}
	for _, want := range []string{"cpu ratio", "gpu GB/s"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
}

// TestRunMatrixFailure: a run that fails for a reason other than a
// missing backend is reported in its cell, and the others still run.
func TestRunMatrixFailure(t *testing.T) {
	base := Options{Scenario: smokeScenario(t), DType: zarr.Uint16, Level: 15, Fill: FillZeros,
		Frames: 4, Prefill: true, NoBaselines: true}
	// Level 15 is a zstd level but no blosc clevel (0..9).
	choices := []CodecChoice{{Codec: zarr.CodecZstd}, {Codec: zarr.CodecLZ4}}
	m, err := RunMatrix(context.Background(), base, choices, []string{"cpu"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows[0].Cells[0].Report == nil || m.Rows[1].Cells[0].Err == nil || m.Failed() != 1 {
		t.Fatalf("cells %+v, %+v; want zstd run and lz4 failed", m.Rows[0].Cells[0], m.Rows[1].Cells[0])
	}
	var tb bytes.Buffer
	_ = m.WriteTable(&tb)
	if !strings.Contains(tb.String(), "lz4:byte on cpu failed") || !strings.Contains(tb.String(), "level") {
		t.Errorf("table does not say what failed:\n%s", tb.String())
	}
}

func TestRunMatrixCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	base := Options{Scenario: smokeScenario(t), DType: zarr.Uint16, Level: 1, Frames: 4, NoBaselines: true}
	if _, err := RunMatrix(ctx, base, AllCodecs(), []string{"cpu"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v; want context.Canceled", err)
	}
}

// FuzzParseCodecs: any --codecs value is refused or gives valid, distinct
// choices that print back to the same list.
func FuzzParseCodecs(f *testing.F) {
	for _, s := range []string{"all", "zstd", "lz4:bit,zstd", "lz4:none, none", "zstd:bit", "lz4,lz4:byte", ",", "blosc-lz4:shuffle"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCodecs(s)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseCodecs(%q): no choices and no error", s)
		}
		names := make([]string, len(got))
		seen := map[CodecChoice]bool{}
		for i, ch := range got {
			spec := zarr.Spec{Shape: []int64{0, 4}, Chunk: []int64{1, 4}, Shard: []int64{1, 4}, DType: zarr.Uint16,
				Codec: ch.Codec, Level: ch.Codec.DefaultLevel(), Shuffle: ch.Shuffle}
			if err := spec.Validate(); err != nil || (!ch.Codec.Blosc() && ch.Shuffle != 0) || seen[ch] {
				t.Fatalf("ParseCodecs(%q) gave %v: %v", s, ch, err)
			}
			seen[ch] = true
			names[i] = ch.String()
		}
		back, err := ParseCodecs(strings.Join(names, ","))
		if err != nil || fmt.Sprint(back) != fmt.Sprint(got) {
			t.Fatalf("ParseCodecs(%q) = %v, printed back %v, %v", s, got, back, err)
		}
	})
}
