package scenario

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaDir = "../../docs/schemas"

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join(schemaDir, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	url := "https://github.com/ims-orch/ims-orch/docs/schemas/" + name
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// jsonInstance turns a YAML or JSON file into the value jsonschema validates
// (via JSON, so numbers are json.Number as the library expects).
func jsonInstance(t *testing.T, data []byte) any {
	t.Helper()
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExamplesMatchSchema validates every example scenario against
// docs/schemas/scenario.schema.json, and the plan output of each against
// docs/schemas/plan-output.schema.json (with and without --exact).
func TestExamplesMatchSchema(t *testing.T) {
	in := compileSchema(t, "scenario.schema.json")
	out := compileSchema(t, "plan-output.schema.json")
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Validate(jsonInstance(t, data)); err != nil {
				t.Fatalf("scenario does not match the schema: %v", err)
			}
			sc, snap, err := Load(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, opt := range []placement.Options{{}, {Exact: true}} {
				d, err := placement.Plan(snap, opt)
				if err != nil {
					t.Fatal(err)
				}
				po, err := NewPlanOutput(sc, snap, d, opt)
				if err != nil {
					t.Fatal(err)
				}
				b, err := json.Marshal(po)
				if err != nil {
					t.Fatal(err)
				}
				if err := out.Validate(jsonInstance(t, b)); err != nil {
					t.Fatalf("output (exact=%v) does not match the schema: %v", opt.Exact, err)
				}
			}
		})
	}
	// The golden outputs of the CLI are output examples too.
	goldens, _ := filepath.Glob(filepath.Join(scenarioDir, "golden", "*.plan.json"))
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Validate(jsonInstance(t, data)); err != nil {
			t.Errorf("%s does not match the output schema: %v", g, err)
		}
	}
	// An empty decision's output is valid too (empty lists, not null).
	sc, snap := loadFile(t, filepath.Join(scenarioDir, "two-dc.json"))
	po, err := NewPlanOutput(sc, snap, &placement.Decision{}, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(po)
	if err := out.Validate(jsonInstance(t, b)); err != nil {
		t.Fatalf("empty output does not match the schema: %v", err)
	}
}

// TestSchemaRejects makes sure the schemas are not vacuous: invalid
// scenarios whose fault a schema can express, and broken outputs, fail.
func TestSchemaRejects(t *testing.T) {
	in := compileSchema(t, "scenario.schema.json")
	for _, f := range []string{
		"unknown-field.yaml", "unknown-top-field.yaml", "zero-capacity.yaml", "zero-cp-capacity.yaml",
		"negative-delay.yaml", "wrong-type.yaml", "float-count.yaml", "numeric-name.yaml",
		"zero-delay-bound.yaml", "missing-delays.yaml", "both-delay-forms.yaml", "missing-intra.yaml",
		"negative-min.yaml", "negative-working.yaml", "negative-workload.yaml", "no-stages.yaml",
		"no-datacenters.yaml", "bad-version.yaml", "huge-delay.yaml", "huge-count.yaml",
		"drained-duplicate.yaml", "drained-not-a-list.yaml",
	} {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(scenarioDir, "invalid", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Validate(jsonInstance(t, data)); err == nil {
				t.Fatal("the scenario schema accepts it")
			}
		})
	}
	out := compileSchema(t, "plan-output.schema.json")
	sc, snap := loadFile(t, filepath.Join(scenarioDir, "two-dc.json"))
	d, err := placement.Plan(snap, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	po, err := NewPlanOutput(sc, snap, d, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(po)
	for name, mutate := range map[string]func(string) string{
		"unknown method":   func(s string) string { return strings.Replace(s, `"method":"local"`, `"method":"guess"`, 1) },
		"negative created": func(s string) string { return strings.Replace(s, `"created":0`, `"created":-1`, 1) },
		"extra field":      func(s string) string { return strings.Replace(s, `"version":1`, `"version":1,"x":1`, 1) },
	} {
		m := mutate(string(b))
		if m == string(b) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if err := out.Validate(jsonInstance(t, []byte(m))); err == nil {
			t.Errorf("%s: the output schema accepts it", name)
		}
	}
}
