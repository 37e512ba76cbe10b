package s3

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zwrite/zwrite/internal/sink"
)

// TestTrace: with TraceEnv set, a store and a Ceiling each append their
// summary and one line per request to the file, and the two count the
// same requests for the same objects; without it nothing is written.
func TestTrace(t *testing.T) {
	const ps = basePartSize
	e := newTestEnv(t)
	path := filepath.Join(t.TempDir(), "trace.txt")
	te := e.with(TraceEnv, path)
	st := te.mustOpen(t, "traced", sink.Options{})
	storeUpload(t, st, 3, ps+ps/2, 2)
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := ceiling(context.Background(), CeilingConfig{Target: "s3://bkt/traced", Sizes: sameSizes(3, ps+ps/2), Lanes: 2}, te.getenv, te.tune); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Requests per kind, per section (sink, ceiling).
	var sections []string
	counts := map[string]map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			kind, _, _ := strings.Cut(name, " ")
			sections = append(sections, kind)
			counts[kind] = map[string]int{}
			continue
		}
		if ev, ok := strings.CutPrefix(line, "ev "); ok && len(sections) > 0 {
			op, _, _ := strings.Cut(ev, " ")
			counts[sections[len(sections)-1]][op]++
		}
	}
	if fmt.Sprint(sections) != "[sink ceiling]" {
		t.Fatalf("trace sections %v, want the sink's then the ceiling's:\n%s", sections, b)
	}
	for _, kind := range sections {
		c := counts[kind]
		if c["initiate"] != 3 || c["part"] != 3 || c["last-part"] != 3 || c["complete"] != 3 {
			t.Errorf("%s traced %v, want 3 initiates, parts, last parts and completes", kind, c)
		}
	}
	if !strings.Contains(string(b), "parts in flight") {
		t.Errorf("no summary in the trace:\n%s", b)
	}

	// Off: the store has no tracer, and the file stays as it was.
	st = e.mustOpen(t, "untraced", sink.Options{})
	if st.sink.tr != nil {
		t.Errorf("a tracer with %s unset", TraceEnv)
	}
	storeUpload(t, st, 1, 100, 1)
	if err := st.Finish(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(path); err != nil || len(after) != len(b) {
		t.Errorf("trace file changed by an untraced store: %d bytes, was %d (%v)", len(after), len(b), err)
	}
}
