package kubeyaml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxInputBytes bounds how much one input file may hold.
const MaxInputBytes = 64 << 20

// rawDoc is one YAML document of a file, converted to JSON.
type rawDoc struct {
	index     int // 1-based, counting non-empty documents
	startLine int // 1-based line of the document's first line in the file
	json      []byte
}

// header is the part of every object that says what it is.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// object is one decoded object: a document, or an item of a List document.
type object struct {
	src  Source
	hdr  header
	json []byte
}

// readDocuments splits a multi-document YAML (or JSON) stream and converts
// each non-empty document to JSON.
func readDocuments(name string, r io.Reader) ([]rawDoc, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, MaxInputBytes>>20)
	}
	var docs []rawDoc
	for _, chunk := range splitYAML(data) {
		if isBlankYAML(chunk.text) {
			continue
		}
		idx := len(docs) + 1
		j, err := yaml.YAMLToJSON(chunk.text)
		if err != nil {
			return nil, &Error{Source: Source{File: name, Document: idx}, Err: errors.New(yamlError(err, chunk.line))}
		}
		j = bytes.TrimSpace(j)
		if bytes.Equal(j, []byte("null")) {
			continue
		}
		if len(j) == 0 || j[0] != '{' {
			return nil, &Error{Source: Source{File: name, Document: idx}, Err: fmt.Errorf("document (at line %d) is not a Kubernetes object (a YAML mapping with apiVersion and kind)", chunk.line)}
		}
		docs = append(docs, rawDoc{index: idx, startLine: chunk.line, json: j})
	}
	return docs, nil
}

type chunk struct {
	text []byte
	line int
}

// splitYAML splits at document markers: lines starting with "---" followed
// by the end of the line or a space. A document end marker "..." ends a
// document too.
func splitYAML(data []byte) []chunk {
	var out []chunk
	var cur bytes.Buffer
	start := 1
	line := 0
	for len(data) > 0 {
		line++
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i+1], data[i+1:]
		}
		trimmed := bytes.TrimRight(l, "\r\n")
		switch {
		case bytes.HasPrefix(trimmed, []byte("---")) && (len(trimmed) == 3 || trimmed[3] == ' ' || trimmed[3] == '\t'):
			out = append(out, chunk{text: append([]byte(nil), cur.Bytes()...), line: start})
			cur.Reset()
			start = line
			// Content after the marker (rare) belongs to the next document.
			rest := bytes.TrimSpace(trimmed[3:])
			if len(rest) > 0 && rest[0] != '#' {
				cur.Write(rest)
				cur.WriteByte('\n')
			} else {
				start = line + 1
			}
		case bytes.Equal(bytes.TrimRight(trimmed, " \t"), []byte("...")):
			out = append(out, chunk{text: append([]byte(nil), cur.Bytes()...), line: start})
			cur.Reset()
			start = line + 1
		default:
			cur.Write(l)
			if i < 0 {
				cur.WriteByte('\n')
			}
		}
	}
	out = append(out, chunk{text: cur.Bytes(), line: start})
	return out
}

// isBlankYAML reports whether a chunk holds only blank lines, comments and
// directives.
func isBlankYAML(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' || t[0] == '%' {
			continue
		}
		return false
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlError makes a YAML parser error read in file line numbers.
func yamlError(err error, startLine int) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, convErr := strconv.Atoi(m[len("line "):])
		if convErr != nil {
			return m
		}
		return fmt.Sprintf("line %d", n+startLine-1)
	})
	return "invalid YAML: " + msg
}

// objects expands a document into its objects: itself, or its items when it
// is a List.
func objects(name string, d rawDoc) ([]object, error) {
	src := Source{File: name, Document: d.index}
	var h header
	if err := json.Unmarshal(d.json, &h); err != nil {
		return nil, &Error{Source: src, Err: fmt.Errorf("apiVersion, kind or metadata: %w", err)}
	}
	if h.Kind == "" {
		return nil, &Error{Source: src, Field: "kind", Err: errors.New("missing: every document needs apiVersion and kind")}
	}
	src.Kind, src.Namespace, src.Name = h.Kind, h.Metadata.Namespace, h.Metadata.Name
	if !strings.HasSuffix(h.Kind, "List") {
		return []object{{src: src, hdr: h, json: d.json}}, nil
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(d.json, &list); err != nil {
		return nil, &Error{Source: src, Field: "items", Err: err}
	}
	itemKind := strings.TrimSuffix(h.Kind, "List")
	out := make([]object, 0, len(list.Items))
	for i, raw := range list.Items {
		isrc := Source{File: name, Document: d.index, Item: i + 1}
		var ih header
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(raw, &ih) != nil {
			return nil, &Error{Source: isrc, Err: errors.New("list item is not a Kubernetes object")}
		}
		if ih.Kind == "" {
			ih.Kind = itemKind
		}
		if ih.Kind == "" || ih.Kind == "List" {
			return nil, &Error{Source: isrc, Field: "kind", Err: errors.New("missing or unsupported in a list item")}
		}
		isrc.Kind, isrc.Namespace, isrc.Name = ih.Kind, ih.Metadata.Namespace, ih.Metadata.Name
		out = append(out, object{src: isrc, hdr: ih, json: raw})
	}
	return out, nil
}

// decodeStrict checks the object's quantities, then decodes it into v
// case-sensitively, rejecting unknown and duplicate fields.
func decodeStrict(o object, v any) error {
	if err := checkQuantities(o.json); err != nil {
		return withSource(o.src, err)
	}
	strict, err := sigsjson.UnmarshalStrict(o.json, v)
	if err != nil {
		return withSource(o.src, errors.New(strings.TrimPrefix(err.Error(), "json: ")))
	}
	if len(strict) > 0 {
		return withSource(o.src, errors.New(strings.TrimPrefix(strict[0].Error(), "json: ")))
	}
	return nil
}

// quantityMaps are the keys whose values are maps of resource name to
// quantity wherever they appear in the objects this package reads.
var quantityMaps = map[string]bool{
	"requests":    true,
	"limits":      true,
	"overhead":    true,
	"allocatable": true,
	"capacity":    true,
}

// checkQuantities walks a JSON object and validates every resource quantity
// in the maps named by quantityMaps, so that a bad quantity is reported with
// its path (the typed decoder reports none).
func checkQuantities(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	return walkQuantities(v, "", "")
}

func walkQuantities(v any, path, key string) error {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		isQuantities := quantityMaps[key] || path == "status.resources"
		for _, k := range keys {
			p := joinPath(path, k)
			if isQuantities {
				if _, err := parseQuantityValue(t[k]); err != nil {
					return &fieldError{field: p, err: err}
				}
				continue
			}
			if err := walkQuantities(t[k], p, k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := walkQuantities(e, fmt.Sprintf("%s[%d]", path, i), ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parseQuantityValue parses a JSON string or number as a non-negative
// Kubernetes quantity.
func parseQuantityValue(v any) (resource.Quantity, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = t.String()
	case nil:
		return resource.Quantity{}, errors.New("quantity must not be null")
	default:
		return resource.Quantity{}, fmt.Errorf("quantity must be a string or a number, not %s", jsonType(v))
	}
	return parseQuantity(s)
}

func parseQuantity(s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		return q, fmt.Errorf("invalid quantity %q: %w", s, err)
	}
	if q.Sign() < 0 {
		return q, fmt.Errorf("invalid quantity %q: must not be negative", s)
	}
	return q, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", v)
	}
}
