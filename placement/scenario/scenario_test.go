package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement"
)

const scenarioDir = "../../testdata/scenarios"

// exampleFiles returns every valid example scenario.
func exampleFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml", "*.json"} {
		m, err := filepath.Glob(filepath.Join(scenarioDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) < 5 {
		t.Fatalf("found %d example scenarios in %s, want at least 5", len(files), scenarioDir)
	}
	return files
}

func loadFile(t *testing.T, path string) (*Scenario, *placement.Snapshot) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc, snap, err := Load(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return sc, snap
}

func TestExamplesLoadAndPlan(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, snap := loadFile(t, f)
			if err := snap.Validate(); err != nil {
				t.Fatalf("snapshot does not validate: %v", err)
			}
			if snap.N != len(sc.Datacenters) || len(snap.Stages) != len(sc.DataPlane.Stages) {
				t.Fatalf("snapshot has %d DCs and %d stages, scenario %d and %d", snap.N, len(snap.Stages), len(sc.Datacenters), len(sc.DataPlane.Stages))
			}
			if len(snap.DPWorkload) != len(sc.Workload) || len(snap.CurrentPaths) != len(sc.Paths) {
				t.Fatalf("snapshot has %d workloads and %d paths, scenario %d and %d", len(snap.DPWorkload), len(snap.CurrentPaths), len(sc.Workload), len(sc.Paths))
			}
			d, err := placement.Plan(snap, placement.Options{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := NewPlanOutput(sc, snap, d, placement.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if out.Scenario != sc.Name || len(out.Datacenters) != snap.N {
				t.Fatalf("output header %q %v", out.Scenario, out.Datacenters)
			}
		})
	}
}

// TestPaperSnapshots checks that names become the right indices and that
// the group form of delays expands to the paper's 8-DC matrix.
func TestPaperSnapshots(t *testing.T) {
	t.Run("4dc", func(t *testing.T) {
		_, s := loadFile(t, filepath.Join(scenarioDir, "paper-4dc.yaml"))
		if s.N != 4 || s.SCSCFDC != 0 || s.DelayBound != 250 {
			t.Fatalf("N=%d SCSCFDC=%d bound=%g", s.N, s.SCSCFDC, s.DelayBound)
		}
		// tokyo=0, hong-kong=1, london=2, houston=3
		if s.Delay[2][3] != 55 || s.Delay[0][1] != 25 || s.Delay[1][2] != 100 {
			t.Fatalf("delays %v", s.Delay)
		}
		wantStages := []placement.Stage{{Name: "firewall", Capacity: 35000}, {Name: "ids", Capacity: 20000}, {Name: "transcoder", Capacity: 15000}}
		if !reflect.DeepEqual(s.Stages, wantStages) {
			t.Fatalf("stages %v", s.Stages)
		}
		if s.PCSCF != (placement.CPVNF{Name: "P-CSCF", Capacity: 500, Min: 1}) || s.SCSCF != (placement.CPVNF{Name: "S-CSCF", Capacity: 200, Min: 1}) {
			t.Fatalf("CP %+v %+v", s.PCSCF, s.SCSCF)
		}
		if s.DP[3][1].Working != 2 || s.PCSCFProv[2].Working != 1 || s.SCSCFProv.Working != 1 {
			t.Fatalf("provisioning DP=%v PCSCF=%v SCSCF=%v", s.DP, s.PCSCFProv, s.SCSCFProv)
		}
		if len(s.DPWorkload) != 16 || s.DPWorkload[placement.Pair{Entry: 2, Exit: 3}] != 11250 || s.CPWorkload[placement.Pair{Entry: 3, Exit: 3}] != 11.25 {
			t.Fatalf("workload %v %v", s.DPWorkload, s.CPWorkload)
		}
	})
	t.Run("4dc-async", func(t *testing.T) {
		_, s := loadFile(t, filepath.Join(scenarioDir, "paper-4dc-async.yaml"))
		if got := s.DP[0][1]; got != (placement.Provision{Working: 3, Buffered: 2, Reserved: 5000}) {
			t.Fatalf("tokyo ids %+v", got)
		}
		if got := s.CurrentPaths[placement.Pair{Entry: 1, Exit: 3}]; !got.Equal(placement.Path{1, 0, 0, 0, 3}) {
			t.Fatalf("hong-kong→houston path %v", got)
		}
	})
	for _, tc := range []struct {
		file string
		g13  float64
	}{{"paper-8dc.yaml", 17}, {"paper-8dc-highdelay.yaml", 65}} {
		t.Run(tc.file, func(t *testing.T) {
			_, s := loadFile(t, filepath.Join(scenarioDir, tc.file))
			group := []float64{0, 10, 15, 50, 10, 0, 20, tc.g13, 15, 20, 0, 15, 50, tc.g13, 15, 0}
			for i := 0; i < 8; i++ {
				for j := 0; j < 8; j++ {
					want := group[(i/2)*4+j/2]
					switch {
					case i == j:
						want = 0
					case i/2 == j/2:
						want = 5
					}
					if s.Delay[i][j] != want {
						t.Fatalf("delay dc%d→dc%d = %g, want %g", i, j, s.Delay[i][j], want)
					}
				}
			}
			if s.DelayBound != 50 || s.SCSCFDC != 4 || len(s.DPWorkload) != 64 {
				t.Fatalf("bound %g, S-CSCF DC %d, %d pairs", s.DelayBound, s.SCSCFDC, len(s.DPWorkload))
			}
		})
	}
}

// TestHighDelayAvoidsSlowLink is the paper's Fig. 9(b) on the example: after
// the g1-g3 link rises to 65 ms (bound 50 ms), no path uses it.
func TestHighDelayAvoidsSlowLink(t *testing.T) {
	sc, s := loadFile(t, filepath.Join(scenarioDir, "paper-8dc-highdelay.yaml"))
	before := 0
	for _, p := range s.CurrentPaths {
		if usesG1G3(p) {
			before++
		}
	}
	if before != 8 {
		t.Fatalf("the example should start with 8 paths on the g1-g3 link, has %d", before)
	}
	d, err := placement.Plan(s, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Pairs) == 0 {
		t.Skip("placement.Plan returned no pairs (algorithm not in this build)")
	}
	for _, p := range d.Pairs {
		if usesG1G3(p.Path) {
			t.Errorf("%s→%s still uses the g1-g3 link: %v", sc.Datacenters[p.Pair.Entry].Name, sc.Datacenters[p.Pair.Exit].Name, p.Path)
		}
		if p.Delay > s.DelayBound {
			t.Errorf("%v: delay %g over the bound", p.Pair, p.Delay)
		}
	}
}

func usesG1G3(p placement.Path) bool {
	for i := 1; i < len(p); i++ {
		a, b := p[i-1]/2, p[i]/2
		if (a == 1 && b == 3) || (a == 3 && b == 1) {
			return true
		}
	}
	return false
}

// invalidCases maps each file of testdata/scenarios/invalid to a substring
// of the error it must produce (field path and reason).
var invalidCases = []struct {
	file string
	want string
}{
	{"alias.yaml", "controlPlane.pcscf: YAML anchors and aliases are not supported"},
	{"headroom-cp.yaml", "instances[3].headroom: applies to data-plane stages only, not P-CSCF"},
	{"bad-version.yaml", "version: unsupported format version 2"},
	{"both-delay-forms.yaml", "delays: give either matrixMs or groups"},
	{"cp-name-clash.yaml", `controlPlane.pcscf.name: "ids" is already the name of another VNF`},
	{"drained-all.yaml", "drained: drains all 3 datacenters; at least one must stay in service"},
	{"drained-duplicate.yaml", `drained[2]: datacenter "london" is listed twice (first at drained[0])`},
	{"drained-not-a-list.yaml", `drained: must be a list, got "london" (line 18)`},
	{"drained-scscf-dc.yaml", `drained[1]: "tokyo" is the S-CSCF datacenter (controlPlane.scscfDatacenter) and cannot be drained`},
	{"drained-unknown-dc.yaml", `drained[1]: unknown datacenter "paris" (known: "tokyo", "london", "houston")`},
	{"duplicate-dc.yaml", `datacenters[2].name: duplicate datacenter "tokyo" (first at datacenters[0])`},
	{"duplicate-instance.yaml", `instances[3]: duplicate entry for ids in "london"`},
	{"duplicate-key.yaml", "delayBoundMs: appears twice (lines 13 and 14)"},
	{"duplicate-pair.yaml", "workload[3]: duplicate pair tokyo→london (first at workload[1])"},
	{"duplicate-path.yaml", "paths[1]: duplicate path for tokyo→london"},
	{"duplicate-stage.yaml", `dataPlane.stages[2].name: duplicate stage "firewall"`},
	{"empty.yaml", "scenario is empty"},
	{"float-count.yaml", "instances[2].working: must be an integer, got the number 1.5 (line 26)"},
	{"group-matrix-size.yaml", "delays.groupMatrixMs: has 2 rows, want one per group (3)"},
	{"group-missing.yaml", `datacenters[1].group: is required when delays are given per group (datacenter "london")`},
	{"huge-workload.yaml", "workload[1].dp: 1e+300 packets/s would need more than 1000000 instances of a DP stage (capacity 15000)"},
	{"huge-total-workload.yaml", "workload: the total workload"},
	{"huge-delay.yaml", "delays.matrixMs[0][2]: 1e+07 ms is more than the limit of 1e+06 ms"},
	{"huge-count.yaml", "instances[2].buffered: must be between 0 and 1000000, got 9000000000000000000"},
	{"matrix-rows.yaml", "delays.matrixMs: has 2 rows, want one per datacenter (3)"},
	{"missing-delays.yaml", "delays: is required"},
	{"missing-intra.yaml", "delays.intraGroupMs: is required"},
	{"nan-workload.yaml", "workload[2].cp: must be a finite non-negative number"},
	{"negative-delay.yaml", "delays.matrixMs[1][0]: must not be negative, got -115 ms"},
	{"negative-min.yaml", "controlPlane.scscf.min: must be between 0 and 1000000, got -1"},
	{"negative-working.yaml", "instances[0].working: must be between 0 and 1000000, got -1"},
	{"negative-workload.yaml", "workload[2].dp: must be a finite non-negative number of packets/s, got -1000"},
	{"no-datacenters.yaml", "datacenters: at least one datacenter is needed"},
	{"no-stages.yaml", "dataPlane.stages: the data-plane chain needs at least one stage"},
	{"non-square-matrix.yaml", "delays.matrixMs[2]: has 2 columns, want 3 (the matrix must be square)"},
	{"nonzero-diagonal.yaml", "delays.matrixMs[1][1]: is on the diagonal and must be 0"},
	{"numeric-name.yaml", "datacenters[2].name: must be a string, got the number 42 (quote it)"},
	{"path-entry.yaml", `paths[0].path[0]: is "houston", but a path starts at its entry datacenter "tokyo"`},
	{"path-exit.yaml", `paths[0].path[4]: is "houston", but a path ends at its exit datacenter "london"`},
	{"path-length.yaml", "paths[0].path: has 4 datacenters, want m+2 = 5"},
	{"path-loop.yaml", "paths[0].path: has a routing loop"},
	{"path-unknown-dc.yaml", `paths[0].path[2]: unknown datacenter "paris"`},
	{"reserved-too-large.yaml", "instances[0].reserved: 40000 exceeds the capacity of the 1 working instances"},
	{"scscf-wrong-dc.yaml", `instances[1].datacenter: S-CSCF runs only in the S-CSCF datacenter "tokyo"`},
	{"two-documents.yaml", "more than one YAML document"},
	{"unknown-dc-workload.yaml", `workload[3].entry: unknown datacenter "paris"`},
	{"unknown-field.yaml", "datacenters[1].grup: unknown field (line 6); known fields here: name, group"},
	{"unknown-group.yaml", `datacenters[1].group: unknown group "eu"`},
	{"unknown-scscf-dc.yaml", `controlPlane.scscfDatacenter: unknown datacenter "paris"`},
	{"unknown-top-field.yaml", "delayBound: unknown field (line 14)"},
	{"unknown-vnf.yaml", `instances[2].vnf: unknown VNF "snort"`},
	{"wrong-type.yaml", `delayBoundMs: must be a number, got "fast" (line 13)`},
	{"yaml-syntax.yaml", "scenario is not valid YAML: yaml: line 12"},
	{"zero-capacity.yaml", "dataPlane.stages[1].capacity: must be a positive number of packets/s per instance, got 0"},
	{"zero-cp-capacity.yaml", "controlPlane.pcscf.capacity: must be a positive number"},
	{"zero-delay-bound.yaml", "delayBoundMs: must be a positive number of milliseconds, got 0"},
}

func TestInvalidScenarios(t *testing.T) {
	listed := map[string]bool{}
	for _, tc := range invalidCases {
		listed[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(scenarioDir, "invalid", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Load(data)
			if err == nil {
				t.Fatalf("loaded without error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			// Errors about a field name it through placement.FieldError.
			if strings.Contains(tc.want, ": ") && !strings.HasPrefix(tc.want, "scenario ") {
				var fe *placement.FieldError
				if !errors.As(err, &fe) || !strings.HasPrefix(tc.want, fe.Field+": ") {
					t.Fatalf("error %q is not a FieldError for the field in %q", err, tc.want)
				}
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(scenarioDir, "invalid", "*"))
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in invalidCases", f)
		}
	}
	if len(files) != len(invalidCases) {
		t.Errorf("%d invalid files, %d cases", len(files), len(invalidCases))
	}
}

// TestJSONAndYAMLAgree: a scenario written in JSON and the same one written
// in YAML decode to the same Scenario.
func TestJSONAndYAMLAgree(t *testing.T) {
	j, err := os.ReadFile(filepath.Join(scenarioDir, "two-dc.json"))
	if err != nil {
		t.Fatal(err)
	}
	y := `version: 1
name: two-dc
description: "Smallest useful scenario, in JSON: two datacenters 20 ms apart, a two-stage chain, custom CP VNF names, one buffered instance and one current path."
datacenters: [{name: east}, {name: west}]
delays: {matrixMs: [[0, 20], [22, 0]]}
delayBoundMs: 100
controlPlane:
  scscfDatacenter: east
  pcscf: {name: pcscf, capacity: 500, min: 1}
  scscf: {name: scscf, capacity: 200, min: 1}
dataPlane:
  stages: [{name: firewall, capacity: 35000}, {name: transcoder, capacity: 15000}]
instances:
  - {datacenter: east, vnf: firewall, working: 1}
  - {datacenter: east, vnf: transcoder, working: 1, buffered: 1}
  - {datacenter: east, vnf: pcscf, working: 1}
  - {datacenter: east, vnf: scscf, working: 1}
  - {datacenter: west, vnf: firewall, working: 1}
  - {datacenter: west, vnf: transcoder, working: 1}
  - {datacenter: west, vnf: pcscf, working: 1}
paths:
  - {entry: east, exit: west, path: [east, east, west, west]}
workload:
  - {entry: east, exit: east, cp: 10, dp: 9000}
  - {entry: east, exit: west, cp: 20, dp: 12000}
  - {entry: west, exit: east, cp: 20, dp: 12000}
  - {entry: west, exit: west, cp: 5, dp: 3000}
`
	fromJSON, err := Parse(j)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Fatalf("JSON and YAML differ:\n%+v\n%+v", fromJSON, fromYAML)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"json unknown field with line", "{\n  \"name\": \"x\",\n  \"datacenter\": []\n}", "datacenter: unknown field (line 3)"},
		{"json duplicate key", "{\"name\": \"a\",\n\"name\": \"b\"}", "name: appears twice (lines 1 and 2)"},
		{"json syntax error", "{\"name\": \"a\",\n\n \"x\" 1}", "scenario is not valid JSON: line 3"},
		{"json trailing data", "{\"name\": \"a\"}\n{}", "data after the top-level object (line 2)"},
		{"json truncated", `{"name": "a", "datacenters": [`, "unexpected end of input"},
		{"json string for number", `{"delayBoundMs": "250"}`, `delayBoundMs: must be a number, got "250"`},
		{"json huge int for int", `{"instances": [{"datacenter": "a", "vnf": "b", "working": 99999999999999999999}]}`, "instances[0].working: must be an integer, got the number 99999999999999999999"},
		{"json exponent for int", `{"instances": [{"datacenter": "a", "vnf": "b", "working": 1e2}]}`, "instances[0].working: must be an integer, got the number 1e2"},
		{"json float for int", `{"instances": [{"datacenter": "a", "vnf": "b", "working": 2.0}]}`, "instances[0].working: must be an integer"},
		{"json null struct", `{"controlPlane": null}`, "controlPlane: must be a mapping, got null"},
		{"json deep nesting", "{\"delays\": {\"matrixMs\": " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}}", "nested deeper than"},
		{"yaml list for mapping", "delays: [1, 2]", "delays: must be a mapping, got a list (line 1)"},
		{"yaml scalar for list", "datacenters: tokyo", `datacenters: must be a list, got "tokyo" (line 1)`},
		{"yaml top-level list", "- a\n- b", "(document): must be a mapping, got a list"},
		{"yaml non-string key", "1: a", "(document): keys must be strings"},
		{"yaml int overflow", "controlPlane: {pcscf: {min: 99999999999999999999999}}", "controlPlane.pcscf.min: must be an integer, got the number 99999999999999999999999"},
		{"yaml bool for string", "name: true", "name: must be a string, got the boolean true (quote it)"},
		{"too big", strings.Repeat(" ", MaxSize+1), "the limit is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestGroupDelays covers the group form on a small topology, including an
// asymmetric group matrix.
func TestGroupDelays(t *testing.T) {
	in := `datacenters:
  - {name: a, group: x}
  - {name: b, group: x}
  - {name: c, group: y}
delays:
  groups: [y, x]
  groupMatrixMs: [[0, 7], [9, 0]]
  intraGroupMs: 2
delayBoundMs: 30
controlPlane: {scscfDatacenter: c, pcscf: {capacity: 10}, scscf: {capacity: 10}}
dataPlane: {stages: [{name: fw, capacity: 100}]}
`
	sc, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sc.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{0, 2, 9}, {2, 0, 9}, {7, 7, 0}}
	if !reflect.DeepEqual(s.Delay, want) {
		t.Fatalf("delay %v, want %v", s.Delay, want)
	}
	if s.SCSCFDC != 2 || s.PCSCF.Name != DefaultPCSCFName || s.PCSCF.Min != 0 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestRenameFields(t *testing.T) {
	err := renameFields(&placement.FieldError{Field: "instances[dc 1][ids].working", Reason: "r"}, []string{"a", "b"})
	if err.Error() != "instances[b][ids].working: r" {
		t.Fatal(err)
	}
	err = renameFields(&placement.FieldError{Field: "paths[0→1]", Reason: "r"}, []string{"a", "b"})
	if err.Error() != "paths[a→b]: r" {
		t.Fatal(err)
	}
	err = renameFields(&placement.FieldError{Field: "paths[0→7]", Reason: "r"}, []string{"a", "b"})
	if err.Error() != "paths[a→7]: r" {
		t.Fatal(err)
	}
	plain := errors.New("x")
	if renameFields(plain, nil) != plain {
		t.Fatal("non-field errors must pass through")
	}
}

// TestDocExamples loads every complete scenario (a ```yaml block with a
// version field) in docs/scenario.md, so the documentation cannot drift.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scenario.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	n := 0
	for _, b := range blocks {
		body, _, _ := strings.Cut(b, "```")
		if !strings.HasPrefix(body, "version:") {
			continue
		}
		n++
		if _, _, err := Load([]byte(body)); err != nil {
			t.Errorf("docs/scenario.md example %d: %v", n, err)
		}
	}
	if n == 0 {
		t.Fatal("no complete example in docs/scenario.md")
	}
}

// TestDrainScenario: `drained` becomes placement's Excluded, and the plan of
// the example shows what draining Hong Kong does.
func TestDrainScenario(t *testing.T) {
	sc, s := loadFile(t, filepath.Join(scenarioDir, "paper-4dc-drain.yaml"))
	if want := []bool{false, true, false, false}; !reflect.DeepEqual(s.Excluded, want) {
		t.Fatalf("excluded %v, want %v", s.Excluded, want)
	}
	const hk = 1
	for _, opt := range []placement.Options{{}, {Exact: true}} {
		d, err := placement.Plan(s, opt)
		if err != nil {
			t.Fatal(err)
		}
		methods := map[placement.Pair]placement.Method{}
		for _, p := range d.Pairs {
			methods[p.Pair] = p.Method
			for _, dc := range p.Path[1 : len(p.Path)-1] {
				if dc == hk {
					t.Fatalf("%v: stage in the drained hong-kong: %v", p.Pair, p.Path)
				}
			}
			if p.Pair == (placement.Pair{Entry: hk, Exit: hk}) && (p.Method == placement.MethodLocal || p.DelayViolated) {
				t.Fatalf("hong-kong→hong-kong: %+v", p)
			}
		}
		if !opt.Exact {
			// hong-kong↔houston run through Tokyo: kept; tokyo→hong-kong had
			// stages in Hong Kong: not kept.
			if methods[placement.Pair{Entry: hk, Exit: 3}] != placement.MethodKept || methods[placement.Pair{Entry: 0, Exit: hk}] == placement.MethodKept {
				t.Fatalf("methods %v", methods)
			}
		}
		for k, c := range d.DP[hk] {
			if c.Working != 0 || c.ToBuffer != s.DP[hk][k].Working {
				t.Fatalf("hong-kong stage %d: %+v", k, c)
			}
		}
		if c := d.PCSCF[hk]; c.Working != 0 || c.ToBuffer != 1 {
			t.Fatalf("hong-kong P-CSCF %+v", c)
		}
		// Tokyo (25 ms) takes Hong Kong's P-CSCF load: 27.87 + 70.72 tx/s.
		if got := d.PCSCF[0].Load; got < 98.58 || got > 98.60 {
			t.Fatalf("tokyo P-CSCF load %v", got)
		}
		out, err := NewPlanOutput(sc, s, d, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out.Drained, []string{"hong-kong"}) {
			t.Fatalf("output drained %v", out.Drained)
		}
		var b strings.Builder
		if err := out.WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "\nDrained: hong-kong (") {
			t.Fatalf("table does not show the drain:\n%s", b.String())
		}
	}
	// Without drained, no drained line and no field.
	sc, s = loadFile(t, filepath.Join(scenarioDir, "paper-4dc-async.yaml"))
	d, _ := placement.Plan(s, placement.Options{})
	out, _ := NewPlanOutput(sc, s, d, placement.Options{})
	if s.Excluded != nil || out.Drained != nil {
		t.Fatalf("excluded %v, output drained %v", s.Excluded, out.Drained)
	}
}

// A drained datacenter's own pair may come back to it as the exit (the path
// of an earlier drained round); any other pair may not, nor may it without
// the drain.
func TestDrainedLoopPath(t *testing.T) {
	base := `version: 1
datacenters: [{name: a}, {name: b}, {name: c}]
delays: {matrixMs: [[0, 5, 5], [5, 0, 5], [5, 5, 0]]}
delayBoundMs: 50
controlPlane: {scscfDatacenter: a, pcscf: {capacity: 10}, scscf: {capacity: 10}}
dataPlane: {stages: [{name: fw, capacity: 100}, {name: ids, capacity: 100}]}
`
	for _, tc := range []struct {
		name, extra, err string
	}{
		{"drained pair back to its DC", "drained: [c]\npaths: [{entry: c, exit: c, path: [c, a, b, c]}]\n", ""},
		{"same path without the drain", "paths: [{entry: c, exit: c, path: [c, a, b, c]}]\n", "paths[0].path: has a routing loop"},
		{"drained pair with a stage in its DC", "drained: [c]\npaths: [{entry: c, exit: c, path: [c, c, a, c]}]\n", "paths[0].path: has a routing loop"},
		{"other pair back to a drained DC", "drained: [c]\npaths: [{entry: a, exit: b, path: [a, c, a, b]}]\n", "paths[0].path: has a routing loop"},
		{"empty drained list", "drained: []\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s, err := Load([]byte(base + tc.extra))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := placement.Plan(s, placement.Options{}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}
