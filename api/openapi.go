package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIYAML returns the OpenAPI 3 document of the API (a copy).
func OpenAPIYAML() []byte { return bytes.Clone(openapiYAML) }

// openapiJSON is the embedded document as JSON, converted once.
var openapiJSON = sync.OnceValues(func() ([]byte, error) { return yamlToJSON(openapiYAML) })

// yamlToJSON converts the OpenAPI document to JSON.
func yamlToJSON(y []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, err
	}
	v, err := stringKeys(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func stringKeys(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := stringKeys(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}
