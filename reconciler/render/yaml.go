package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a hostile document from exhausting memory or stack.
const (
	// maxDepth bounds nesting; real Kubernetes objects stay far below.
	maxDepth = 500
	// maxNodes bounds the values one document expands to, counting alias
	// expansions ("billion laughs").
	maxNodes = 1 << 20
)

// Errors of the limits, wrapped with the line.
var (
	errTooManyValues = fmt.Errorf("document expands to more than %d values", maxNodes)
	errTooDeep       = fmt.Errorf("document nests deeper than %d levels", maxDepth)
)

// document is one decoded, non-empty YAML document.
type document struct {
	value map[string]any
	// line is the 1-based line where the document's mapping starts.
	line int
}

// decodeYAML decodes the non-empty documents of a multi-document YAML
// stream read from file name. Every document must be a mapping. Values are
// JSON-compatible (map[string]any, []any, string, int64, float64, bool,
// nil), as [unstructured.Unstructured] requires; timestamps and binary
// values stay strings, as the API server expects. Errors have the form
// "name:line: message".
func decodeYAML(name string, data []byte) ([]document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, yamlError(name, err)
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
			continue
		}
		top := n.Content[0]
		if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
			// Empty document, or one holding only comments.
			continue
		}
		if top.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: document is a %s, want a mapping (a Kubernetes object)", name, top.Line, kindName(top))
		}
		c := converter{}
		v, err := c.convert(top, 0)
		if err != nil {
			return nil, fmt.Errorf("%s:%w", name, err)
		}
		docs = append(docs, document{value: v.(map[string]any), line: top.Line})
	}
}

// yamlError formats a go-yaml error as "name:line: message".
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "unmarshal errors:"))
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, convErr := strconv.Atoi(num); convErr == nil {
				return &lineError{msg: fmt.Sprintf("%s:%d: %s", name, line, text), err: err}
			}
		}
	}
	return &lineError{msg: fmt.Sprintf("%s: %s", name, msg), err: err}
}

// lineError is a YAML error rewritten to name the file and line, keeping
// the original for errors.As.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "mapping"
}

// converter turns a yaml.Node tree into JSON-compatible values.
type converter struct {
	nodes int
}

// convert converts n. Errors start with "line: ", for the caller to
// prefix with the file name.
func (c *converter) convert(n *yaml.Node, depth int) (any, error) {
	c.nodes++
	if c.nodes > maxNodes {
		return nil, fmt.Errorf("%d: %w", n.Line, errTooManyValues)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("%d: %w", n.Line, errTooDeep)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.convert(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("%d: unknown alias", n.Line)
		}
		return c.convert(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		lines := make(map[string]int, len(n.Content)/2)
		if err := c.mapping(n, depth, out, lines, false); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("%d: unknown YAML node kind %d", n.Line, n.Kind)
}

// mapping adds n's pairs to out. Merge keys (<<) add only keys not already
// set; merged is true while filling from a merge key.
func (c *converter) mapping(n *yaml.Node, depth int, out map[string]any, lines map[string]int, merged bool) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		// Count every pair, also those a merge skips, so repeated merges
		// cannot expand without bound.
		c.nodes++
		if c.nodes > maxNodes {
			return fmt.Errorf("%d: %w", k.Line, errTooManyValues)
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key, err := mapKey(k)
		if err != nil {
			return err
		}
		if prev, dup := lines[key]; dup {
			if merged {
				continue
			}
			return fmt.Errorf("%d: mapping key %q already defined at line %d", k.Line, key, prev)
		}
		val, err := c.convert(v, depth+1)
		if err != nil {
			return err
		}
		out[key] = val
		lines[key] = k.Line
	}
	for _, m := range merges {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = m.Content
		}
		for _, src := range sources {
			for src.Kind == yaml.AliasNode && src.Alias != nil {
				src = src.Alias
			}
			if src.Kind != yaml.MappingNode {
				return fmt.Errorf("%d: merge key (<<) needs a mapping or a list of mappings", m.Line)
			}
			c.nodes++
			if c.nodes > maxNodes {
				return fmt.Errorf("%d: %w", m.Line, errTooManyValues)
			}
			if err := c.mapping(src, depth+1, out, lines, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// mapKey returns a mapping key as a string, as YAML-to-JSON conversion
// does: scalar keys keep their text.
func mapKey(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%d: mapping key is a %s, want a scalar", k.Line, kindName(k))
	}
	if k.ShortTag() == "!!null" {
		return "null", nil
	}
	return k.Value, nil
}

// scalar converts a scalar node to string, int64, float64, bool or nil.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("%d: %v", n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("%d: integer %q out of range", n.Line, n.Value)
		}
		return f, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("%d: %v", n.Line, err)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%d: %s is not a valid number in Kubernetes objects", n.Line, n.Value)
		}
		return f, nil
	}
	// Strings, timestamps, binary and custom tags keep their text.
	return n.Value, nil
}

// checkExpansion refuses a YAML file that kustomize reads, name with data, when one of its
// documents, of any kind, expands beyond the limits a plain render keeps: kustomize expands
// aliases without a bound, so a few hundred bytes could take all memory. Anything else wrong
// with the file is left to kustomize to report.
func checkExpansion(name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return nil
		}
		nodes := 0
		if err := countExpanded(&n, 0, &nodes); err != nil {
			return fmt.Errorf("%s:%w", name, err)
		}
	}
}

// countExpanded adds to nodes the values n expands to, aliases followed, and fails once they
// are over maxNodes or nest deeper than maxDepth.
func countExpanded(n *yaml.Node, depth int, nodes *int) error {
	*nodes++
	switch {
	case *nodes > maxNodes:
		return fmt.Errorf("%d: %w", n.Line, errTooManyValues)
	case depth > maxDepth:
		return fmt.Errorf("%d: %w", n.Line, errTooDeep)
	case n.Kind == yaml.AliasNode && n.Alias != nil:
		return countExpanded(n.Alias, depth+1, nodes)
	}
	for _, c := range n.Content {
		if err := countExpanded(c, depth+1, nodes); err != nil {
			return err
		}
	}
	return nil
}
