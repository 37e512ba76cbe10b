package zarr

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarshalGroupGolden(t *testing.T) {
	tests := []struct {
		name  string
		attrs any
	}{
		{"empty", nil},
		{"map", map[string]any{"zeta": 1, "alpha": []int{1, 2}, "mid": map[string]string{"b": "x", "a": "y"}}},
		{"raw", json.RawMessage(`{"b":1,"a":{"c":[1,2.5,"s"]}}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalGroup(tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "group-"+tc.name+".json", b)
			// Twice the same bytes: nothing depends on map order.
			b2, err := MarshalGroup(tc.attrs)
			if err != nil || string(b2) != string(b) {
				t.Fatalf("second marshal differs (err %v)", err)
			}
			nt, err := ParseNode(b)
			if err != nil || nt != NodeGroup {
				t.Fatalf("ParseNode = %v, %v", nt, err)
			}
			a, err := ParseGroup(b)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(a, &got); err != nil {
				t.Fatal(err)
			}
			wb, _ := json.Marshal(tc.attrs)
			if tc.attrs == nil {
				wb = []byte("{}")
			}
			_ = json.Unmarshal(wb, &want)
			if gb, _ := json.Marshal(got); string(gb) != string(mustJSON(t, want)) {
				t.Errorf("attributes = %s, want %s", gb, mustJSON(t, want))
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalGroupErrors(t *testing.T) {
	tests := []struct {
		name  string
		attrs any
		want  string
	}{
		{"list", []int{1}, "must be a JSON object"},
		{"string", "x", "must be a JSON object"},
		{"raw null", json.RawMessage("null"), "must be a JSON object"},
		{"unencodable", map[string]any{"f": func() {}}, "attributes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MarshalGroup(tc.attrs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseNode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want NodeType
		err  string
	}{
		{"array", string(testArray(t)), NodeArray, ""},
		{"group", `{"zarr_format":3,"node_type":"group"}`, NodeGroup, ""},
		{"zarr-python array", readTestdata(t, "parse-zarrpython-zstd.json"), NodeArray, ""},
		{"v2", `{"zarr_format":2,"node_type":"group"}`, 0, "zarr_format"},
		{"no format", `{"node_type":"group"}`, 0, "zarr_format: want 3, got nothing"},
		{"format string", `{"zarr_format":"3","node_type":"group"}`, 0, "zarr_format"},
		{"no node type", `{"zarr_format":3}`, 0, "node_type"},
		{"other node type", `{"zarr_format":3,"node_type":"folder"}`, 0, `node_type: want "array" or "group", got "folder"`},
		{"not an object", `[1]`, 0, "not a JSON object"},
		{"not json", `{`, 0, "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNode([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseNode = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if NodeArray.String() != "array" || NodeGroup.String() != "group" || NodeType(9).String() != "node_type(9)" {
		t.Errorf("String: %v %v %v", NodeArray, NodeGroup, NodeType(9))
	}
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseGroup(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		attrs string // "" = none; compacted
		err   string
	}{
		{"bare", `{"zarr_format":3,"node_type":"group"}`, "", ""},
		{"attributes", `{"zarr_format":3,"node_type":"group","attributes":{"a": [1, 2]}}`, `{"a":[1,2]}`, ""},
		{"zarr-python", `{"attributes":{},"zarr_format":3,"consolidated_metadata":null,"node_type":"group"}`, `{}`, ""},
		{"consolidated inline", `{"zarr_format":3,"node_type":"group","attributes":{},
			"consolidated_metadata":{"kind":"inline","must_understand":false,"metadata":{}}}`, `{}`, ""},
		{"extension ignorable", `{"zarr_format":3,"node_type":"group","x":{"must_understand":false}}`, "", ""},
		{"array", string(testArray(t)), "", `node_type: want "group", got "array"`},
		{"v2", `{"zarr_format":2,"node_type":"group"}`, "", "zarr_format"},
		{"unknown field", `{"zarr_format":3,"node_type":"group","shape":[1]}`, "", "shape: unknown field"},
		{"extension required", `{"zarr_format":3,"node_type":"group","x":{"must_understand":true}}`, "", "x: unknown field"},
		{"consolidated must understand", `{"zarr_format":3,"node_type":"group","consolidated_metadata":{"kind":"inline","metadata":{}}}`, "", "consolidated_metadata: unknown field"},
		{"attributes list", `{"zarr_format":3,"node_type":"group","attributes":[]}`, "", "attributes: want an object"},
		{"attributes null", `{"zarr_format":3,"node_type":"group","attributes":null}`, "", "attributes: want an object"},
		{"attributes number", `{"zarr_format":3,"node_type":"group","attributes":3}`, "", "attributes: want an object"},
		{"not json", `{"zarr_format":3,`, "", "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseGroup([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.attrs == "" {
				if a != nil {
					t.Fatalf("attributes = %s, want none", a)
				}
				return
			}
			if got := string(mustJSON(t, json.RawMessage(a))); got != tc.attrs {
				t.Fatalf("attributes = %s, want %s", got, tc.attrs)
			}
		})
	}
}

func FuzzParseNode(f *testing.F) {
	f.Add(testArray(f))
	f.Add([]byte(`{"zarr_format":3,"node_type":"group"}`))
	f.Add([]byte(`{"zarr_format":3,"node_type":"grou"}`))
	f.Add([]byte(`{"zarr_format":3.0,"node_type":"array"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		nt, err := ParseNode(b)
		if err != nil {
			return
		}
		if nt != NodeArray && nt != NodeGroup {
			t.Fatalf("node type %v without an error", nt)
		}
		// What ParseGroup or ParseArray accepts, ParseNode agrees with.
		if _, err := ParseGroup(b); err == nil && nt != NodeGroup {
			t.Fatalf("ParseGroup accepts a %v", nt)
		}
		if _, err := ParseArray(b); err == nil && nt != NodeArray {
			t.Fatalf("ParseArray accepts a %v", nt)
		}
	})
}

func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{
		`{"zarr_format":3,"node_type":"group"}`,
		`{"zarr_format":3,"node_type":"group","attributes":{"ome":{"version":"0.5"}}}`,
		`{"zarr_format":3,"node_type":"group","consolidated_metadata":null,"attributes":{}}`,
		`{"zarr_format":3,"node_type":"group","x":{"must_understand":false}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseGroup(b)
		if err != nil {
			return
		}
		if nt, err := ParseNode(b); err != nil || nt != NodeGroup {
			t.Fatalf("ParseGroup accepted what ParseNode calls %v, %v", nt, err)
		}
		if a == nil {
			return
		}
		// The attributes are an object, and they survive a rewrite.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(a, &m); err != nil || m == nil {
			t.Fatalf("attributes %q are not an object: %v", a, err)
		}
		out, err := MarshalGroup(a)
		if err != nil {
			t.Fatalf("MarshalGroup of parsed attributes: %v", err)
		}
		a2, err := ParseGroup(out)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
		if string(mustJSON(t, json.RawMessage(a2))) != string(mustJSON(t, json.RawMessage(a))) {
			t.Fatalf("attributes changed: %s -> %s", a, a2)
		}
	})
}
