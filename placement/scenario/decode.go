package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ims-orch/ims-orch/placement"
	"gopkg.in/yaml.v3"
)

// MaxSize is the largest scenario Parse accepts (bytes).
const MaxSize = 16 << 20

// maxJSONDepth bounds the nesting of a JSON document; the deepest valid
// scenario field (delays.matrixMs[i][j]) is at depth 4.
const maxJSONDepth = 64

// Parse decodes a scenario from YAML or JSON (a document whose first
// non-blank character is '{' is read as JSON). Decoding is strict: unknown
// fields, duplicate keys, YAML anchors/aliases, several YAML documents and
// values of the wrong type are errors. Errors about a field are
// *placement.FieldError naming the field's path; syntax errors give the line.
// Parse checks the file's shape only; Snapshot checks its meaning.
func Parse(data []byte) (*Scenario, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("scenario is %d bytes, the limit is %d", len(data), MaxSize)
	}
	trimmed := bytes.TrimSpace(data)
	var root *yaml.Node
	var err error
	if len(trimmed) > 0 && trimmed[0] == '{' {
		root, err = jsonToNode(data)
	} else {
		root, err = yamlRoot(data)
	}
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, errors.New("scenario is empty")
	}
	var sc Scenario
	if err := decodeNode(root, reflect.ValueOf(&sc).Elem(), ""); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Load parses a scenario and builds its snapshot.
func Load(data []byte) (*Scenario, *placement.Snapshot, error) {
	sc, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	snap, err := sc.Snapshot()
	if err != nil {
		return nil, nil, err
	}
	return sc, snap, nil
}

// yamlRoot returns the single document's content node, nil for an empty file.
func yamlRoot(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("scenario is not valid YAML: %w", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, fmt.Errorf("scenario has more than one YAML document (second at line %d); put one scenario per file", extra.Line)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("scenario is not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// jsonToNode converts a JSON document to a yaml.Node tree (keeping key order
// and line numbers) so that both formats go through the same strict decoder.
func jsonToNode(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	src := &jsonSrc{dec: dec, data: data, lines: lineIndex(data)}
	n, err := src.value(0)
	if err != nil {
		return nil, jsonErr(err, src.lines)
	}
	line := src.line()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("scenario is not valid JSON: data after the top-level object (line %d)", line)
	}
	return n, nil
}

// jsonSrc reads JSON tokens and knows the line each one starts on.
type jsonSrc struct {
	dec   *json.Decoder
	data  []byte
	lines lineIdx
}

// line is the line of the next token: the decoder's offset is the end of the
// previous token, so skip blanks and separators first.
func (s *jsonSrc) line() int {
	off := s.dec.InputOffset()
	for off < int64(len(s.data)) && strings.IndexByte(" \t\r\n,:", s.data[off]) >= 0 {
		off++
	}
	return s.lines.line(off)
}

func jsonErr(err error, lines lineIdx) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("scenario is not valid JSON: line %d: %s", lines.line(se.Offset), se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("scenario is not valid JSON: unexpected end of input")
	}
	return fmt.Errorf("scenario is not valid JSON: %w", err)
}

func (s *jsonSrc) value(depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	dec := s.dec
	line := s.line()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Line: line}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			for dec.More() {
				kl := s.line()
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string) // json.Decoder only yields string keys
				v, err := s.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: kl}, v)
			}
		case '[':
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			for dec.More() {
				v, err := s.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
	case string:
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", t, yaml.DoubleQuotedStyle
	case json.Number:
		// Untagged plain scalar: YAML resolves it like a number in a YAML
		// file (!!int if it is an integer that fits, else !!float).
		n.Kind, n.Value = yaml.ScalarNode, t.String()
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	}
	return n, nil
}

// lineIdx maps a byte offset to a 1-based line number.
type lineIdx []int64

func lineIndex(data []byte) lineIdx {
	var idx lineIdx
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, int64(i))
		}
	}
	return idx
}

func (l lineIdx) line(off int64) int {
	// The number of newlines strictly before off, plus one.
	return sort.Search(len(l), func(i int) bool { return l[i] >= off }) + 1
}

// fieldInfo is one struct field known to the decoder.
type fieldInfo struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var fs []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, fieldInfo{name: name, index: i})
	}
	fieldCache.Store(t, fs)
	return fs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func at(n *yaml.Node) string {
	if n.Line > 0 {
		return fmt.Sprintf(" (line %d)", n.Line)
	}
	return ""
}

// describe names what a node holds, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an unsupported YAML node"
}

// decodeNode strictly decodes n into v; path names the field for errors.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &placement.FieldError{Field: orRoot(path), Reason: "YAML anchors and aliases are not supported; write the value out" + at(n)}
	}
	if n.Kind == yaml.DocumentNode {
		return &placement.FieldError{Field: orRoot(path), Reason: "unexpected nested document" + at(n)}
	}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch v.Kind() {
	case reflect.Pointer:
		if isNull {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeNode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &placement.FieldError{Field: orRoot(path), Reason: "must be a mapping, got " + describe(n) + at(n)}
		}
		fields := fieldsOf(v.Type())
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return &placement.FieldError{Field: orRoot(path), Reason: "keys must be strings, got " + describe(k) + at(k)}
			}
			if first, dup := seen[k.Value]; dup {
				return &placement.FieldError{Field: join(path, k.Value), Reason: fmt.Sprintf("appears twice (lines %d and %d)", first, k.Line)}
			}
			seen[k.Value] = k.Line
			fi := -1
			for _, f := range fields {
				if f.name == k.Value {
					fi = f.index
					break
				}
			}
			if fi < 0 {
				names := make([]string, len(fields))
				for j, f := range fields {
					names[j] = f.name
				}
				return &placement.FieldError{Field: join(path, k.Value), Reason: "unknown field" + at(k) + "; known fields here: " + strings.Join(names, ", ")}
			}
			if err := decodeNode(val, v.Field(fi), join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if isNull {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return &placement.FieldError{Field: orRoot(path), Reason: "must be a list, got " + describe(n) + at(n)}
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := decodeNode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			hint := ""
			if n.Kind == yaml.ScalarNode && !isNull {
				hint = " (quote it)"
			}
			return &placement.FieldError{Field: orRoot(path), Reason: "must be a string, got " + describe(n) + hint + at(n)}
		}
		v.SetString(n.Value)
		return nil
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return &placement.FieldError{Field: orRoot(path), Reason: "must be an integer, got " + describe(n) + at(n)}
		}
		var x int
		if err := n.Decode(&x); err != nil {
			return &placement.FieldError{Field: orRoot(path), Reason: "integer " + n.Value + " is out of range" + at(n)}
		}
		v.SetInt(int64(x))
		return nil
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			return &placement.FieldError{Field: orRoot(path), Reason: "must be a number, got " + describe(n) + at(n)}
		}
		var x float64
		if err := n.Decode(&x); err != nil {
			return &placement.FieldError{Field: orRoot(path), Reason: "number " + n.Value + " cannot be read" + at(n)}
		}
		v.SetFloat(x)
		return nil
	}
	// Only reachable if a field of an unsupported kind is added to Scenario.
	return &placement.FieldError{Field: orRoot(path), Reason: "field type " + v.Type().String() + " is not supported by the scenario decoder"}
}
