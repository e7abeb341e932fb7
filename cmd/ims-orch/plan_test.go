package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/placement/scenario"
	"github.com/spf13/pflag"
)

// -update-plan rewrites testdata/scenarios/golden/ from the current output.
var updatePlan = flag.Bool("update-plan", false, "rewrite the golden outputs of `ims-orch plan`")

const scenarioDir = "../../testdata/scenarios"

// runCLI executes rootCmd in-process with args and returns stdout and the
// error Execute returned. The plan flags are reset first: cobra keeps flag
// values between Execute calls on the same command tree.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	planCmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err := f.Value.Set(f.DefValue); err != nil {
			t.Fatalf("reset --%s: %v", f.Name, err)
		}
		f.Changed = false
	})
	var out, errOut bytes.Buffer
	rootCmd.SetArgs(args)
	rootCmd.SetIn(strings.NewReader(stdin))
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	defer func() {
		rootCmd.SetArgs(nil)
		rootCmd.SetIn(nil)
		rootCmd.SetOut(nil)
		rootCmd.SetErr(nil)
	}()
	err := rootCmd.Execute()
	return out.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func exampleScenarios(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.json"} {
		m, _ := filepath.Glob(filepath.Join(scenarioDir, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no example scenarios")
	}
	return files
}

// TestPlanGolden runs `plan` on every example scenario in both output
// formats and compares with testdata/scenarios/golden/NAME.{json,txt}.
func TestPlanGolden(t *testing.T) {
	for _, f := range exampleScenarios(t) {
		base := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		for _, format := range []string{"json", "table"} {
			t.Run(base+"/"+format, func(t *testing.T) {
				out, err := runCLI(t, "", "plan", "-f", f, "--output", format)
				if err != nil {
					t.Fatalf("exit %d: %v", exitCode(err), err)
				}
				ext := ".plan.txt"
				if format == "json" {
					ext = ".plan.json"
					var po scenario.PlanOutput
					if err := json.Unmarshal([]byte(out), &po); err != nil {
						t.Fatalf("output is not a plan document: %v", err)
					}
				}
				golden := filepath.Join(scenarioDir, "golden", base+ext)
				if *updatePlan {
					if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./cmd/ims-orch -run TestPlanGolden -update-plan)", err)
				}
				if out != string(want) {
					t.Fatalf("output differs from %s (rerun with -update-plan if the change is intended):\n%s", golden, firstDiff(string(want), out))
				}
			})
		}
	}
}

// firstDiff shows the first line where got differs from want.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, wl, gl)
		}
	}
	return "(equal)"
}

// TestPlanDeterministic: `plan` is a pure run, the same scenario gives the
// same bytes every time (Go randomizes map order on every range).
func TestPlanDeterministic(t *testing.T) {
	for _, f := range exampleScenarios(t) {
		first, err := runCLI(t, "", "plan", "-f", f, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			again, err := runCLI(t, "", "plan", "-f", f, "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			if again != first {
				t.Fatalf("%s: run %d differs from the first: %s", filepath.Base(f), i+2, firstDiff(first, again))
			}
		}
	}
}

func TestPlanJSONContent(t *testing.T) {
	out, err := runCLI(t, "", "plan", "-f", filepath.Join(scenarioDir, "paper-8dc-highdelay.yaml"), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var po scenario.PlanOutput
	if err := json.Unmarshal([]byte(out), &po); err != nil {
		t.Fatal(err)
	}
	if po.Scenario != "paper-8dc-highdelay" || len(po.Datacenters) != 8 || po.SCSCFDatacenter != "dc4" || po.DelayBoundMs != 50 || po.Exact {
		t.Fatalf("header %+v", po)
	}
	if len(po.Pairs) != 64 || po.Totals.Pairs != 64 {
		t.Fatalf("%d pairs, want one per entry→exit pair (64)", len(po.Pairs))
	}
	// 8 DCs × (3 stages + P-CSCF) + the S-CSCF row.
	if len(po.Instances) != 33 {
		t.Fatalf("%d instance rows, want 33", len(po.Instances))
	}
	for _, p := range po.Pairs {
		if len(p.Path) != 5 || p.Path[0] != p.Entry || p.Path[4] != p.Exit {
			t.Errorf("pair %s→%s path %v", p.Entry, p.Exit, p.Path)
		}
		if p.DelayMs > 50 || p.DelayViolated {
			t.Errorf("pair %s→%s delay %g over the 50 ms bound", p.Entry, p.Exit, p.DelayMs)
		}
	}
}

func TestPlanExactAndStdin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(scenarioDir, "two-dc.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, string(data), "plan", "-f", "-", "--exact", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var po scenario.PlanOutput
	if err := json.Unmarshal([]byte(out), &po); err != nil {
		t.Fatal(err)
	}
	if !po.Exact || po.Scenario != "two-dc" {
		t.Fatalf("exact=%v scenario=%q", po.Exact, po.Scenario)
	}
	for _, p := range po.Pairs {
		if p.Method == "alg2" || p.Method == "alg2-extra" {
			t.Errorf("pair %s→%s found by %s under --exact", p.Entry, p.Exit, p.Method)
		}
	}
	// The flags of this run must not leak into the next one.
	out, err = runCLI(t, "", "plan", "-f", filepath.Join(scenarioDir, "two-dc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "Scenario two-dc:") || !strings.Contains(out, "Alg. 1/Alg. 2") {
		t.Fatalf("default run is not a table without --exact:\n%s", out)
	}
}

func TestPlanBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"invalid scenario", "", []string{"plan", "-f", filepath.Join(scenarioDir, "invalid", "unknown-dc-workload.yaml")},
			`workload[3].entry: unknown datacenter "paris"`},
		{"invalid json on stdin", `{"datacenters": 3}`, []string{"plan", "-f", "-"},
			"scenario -: datacenters: must be a list, got the number 3"},
		{"missing file", "", []string{"plan", "-f", filepath.Join(scenarioDir, "nope.yaml")}, "no such file"},
		{"no -f", "", []string{"plan"}, "plan needs a scenario"},
		{"bad output", "", []string{"plan", "-f", filepath.Join(scenarioDir, "two-dc.json"), "-o", "xml"}, `--output "xml": want table or json`},
		{"unknown flag", "", []string{"plan", "--nope"}, "unknown flag: --nope"},
		{"exact on a large scenario", bigScenario(8, 7), []string{"plan", "-f", "-", "--exact"}, "options.exact: the exact solver enumerates n^m = 8^7 paths"},
		{"extra argument", "", []string{"plan", "-f", filepath.Join(scenarioDir, "two-dc.json"), "extra"}, "plan takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, tc.stdin, tc.args...)
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit code %d (%v), want 2", code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if out != "" {
				t.Fatalf("printed %q on bad input", out)
			}
		})
	}
}

// bigScenario is a valid scenario with n datacenters and m stages.
func bigScenario(n, m int) string {
	var b strings.Builder
	b.WriteString("datacenters:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {name: dc%d, group: g}\n", i)
	}
	b.WriteString("delays: {groups: [g], groupMatrixMs: [[0]], intraGroupMs: 5}\ndelayBoundMs: 50\n")
	b.WriteString("controlPlane: {scscfDatacenter: dc0, pcscf: {capacity: 500}, scscf: {capacity: 200}}\ndataPlane:\n  stages:\n")
	for i := 0; i < m; i++ {
		fmt.Fprintf(&b, "    - {name: s%d, capacity: 1000}\n", i)
	}
	b.WriteString("workload:\n  - {entry: dc0, exit: dc1, dp: 100}\n")
	return b.String()
}
