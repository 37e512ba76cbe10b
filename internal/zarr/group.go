package zarr

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// NodeType tells a Zarr v3 array from a group: the node_type of a
// zarr.json.
type NodeType int

const (
	NodeArray NodeType = iota + 1
	NodeGroup
)

// String returns the node_type value as zarr.json spells it.
func (n NodeType) String() string {
	switch n {
	case NodeArray:
		return "array"
	case NodeGroup:
		return "group"
	}
	return fmt.Sprintf("node_type(%d)", int(n))
}

// groupJSON fixes the field order of a group zarr.json (encoding/json
// writes struct fields in declaration order).
type groupJSON struct {
	ZarrFormat int    `json:"zarr_format"`
	NodeType   string `json:"node_type"`
	Attributes any    `json:"attributes"`
}

// MarshalGroup returns a group zarr.json holding attributes: two-space
// indent, fields in a fixed order, trailing newline, like MarshalArray.
// attributes must encode as a JSON object; nil writes {}. Struct values
// keep their field order and maps are written with sorted keys, so the
// output is deterministic for both.
func MarshalGroup(attributes any) ([]byte, error) {
	if attributes == nil {
		attributes = struct{}{}
	}
	a, err := json.Marshal(attributes)
	if err != nil {
		return nil, fmt.Errorf("marshal group zarr.json: attributes: %w", err)
	}
	if t := bytes.TrimSpace(a); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("marshal group zarr.json: attributes must be a JSON object, got %s", clip(a))
	}
	b, err := json.MarshalIndent(groupJSON{ZarrFormat: 3, NodeType: "group", Attributes: json.RawMessage(a)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal group zarr.json: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseNode reads the zarr_format and node_type of a zarr.json, so that a
// reader knows whether to call ParseArray or ParseGroup. Only Zarr v3 is
// accepted; the rest of the document is not checked here.
func ParseNode(b []byte) (NodeType, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return 0, fmt.Errorf("parse zarr.json: not a JSON object: %w", err)
	}
	return nodeType(top)
}

func nodeType(top map[string]json.RawMessage) (NodeType, error) {
	var zf int
	if err := json.Unmarshal(top["zarr_format"], &zf); err != nil || zf != 3 {
		return 0, fmt.Errorf("parse zarr.json: zarr_format: want 3, got %s", clip(top["zarr_format"]))
	}
	var nt string
	if err := json.Unmarshal(top["node_type"], &nt); err == nil {
		switch nt {
		case "array":
			return NodeArray, nil
		case "group":
			return NodeGroup, nil
		}
	}
	return 0, fmt.Errorf("parse zarr.json: node_type: want \"array\" or \"group\", got %s", clip(top["node_type"]))
}

// ParseGroup reads a group zarr.json strictly and returns its attributes
// object (nil when the document has none). Besides zarr_format, node_type
// and attributes it accepts consolidated_metadata (null, or an object that
// says must_understand: false, as zarr-python writes: readers here open
// the nodes themselves) and extension fields with must_understand: false;
// any other field is an error naming it, as in ParseArray.
func ParseGroup(b []byte) (json.RawMessage, error) {
	a, err := parseGroup(b)
	if err != nil {
		return nil, fmt.Errorf("parse group zarr.json: %w", err)
	}
	return a, nil
}

func parseGroup(b []byte) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	nt, err := nodeType(top)
	if err != nil {
		return nil, err
	}
	if nt != NodeGroup {
		return nil, fmt.Errorf("node_type: want \"group\", got \"array\" (an array is not a group)")
	}
	var attrs json.RawMessage
	for k, v := range top {
		switch k {
		case "zarr_format", "node_type":
		case "attributes":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil || m == nil {
				return nil, fmt.Errorf("attributes: want an object, got %s", clip(v))
			}
			attrs = append(json.RawMessage(nil), bytes.TrimSpace(v)...)
		default:
			if k == "consolidated_metadata" && string(bytes.TrimSpace(v)) == "null" {
				continue
			}
			// Extension fields must be understood unless they say otherwise.
			var ext struct {
				MustUnderstand *bool `json:"must_understand"`
			}
			if json.Unmarshal(v, &ext) == nil && ext.MustUnderstand != nil && !*ext.MustUnderstand {
				continue
			}
			return nil, fmt.Errorf("%s: unknown field (not supported)", k)
		}
	}
	return attrs, nil
}

// clip shows a raw JSON value in an error message, shortened.
func clip(raw []byte) string {
	if raw == nil {
		return "nothing (missing)"
	}
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
