package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if args == nil {
		args = []string{} // nil makes cobra parse the test binary's own os.Args
	}
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestPredictRegistered(t *testing.T) {
	c, _, err := rootCmd.Find([]string{"predict", "backtest"})
	if err != nil || c.Name() != "backtest" {
		t.Fatalf("predict backtest not registered: %v", err)
	}
	if c, _, err := rootCmd.Find([]string{"predict", "generate"}); err != nil || c.Name() != "generate" {
		t.Fatalf("predict generate not registered: %v", err)
	}
}

// TestPredictGenerateReproducesShipped: the documented command gives the
// shipped bytes.
func TestPredictGenerateReproducesShipped(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"ramp.csv", []string{"--kind", "ramp", "--seed", "1"}},
		{"diurnal.csv", []string{"--kind", "diurnal", "--seed", "1"}},
		{"sine.csv", []string{"--kind", "sine", "--seed", "1"}},
		{"step.csv", []string{"--kind", "step", "--seed", "1"}},
		{"burst.csv", []string{"--kind", "burst", "--seed", "1"}},
		{"ramp-x100.csv", []string{"--kind", "ramp", "--seed", "1", "--scale", "100"}},
		{"diurnal-x100.csv", []string{"--kind", "diurnal", "--seed", "1", "--scale", "100"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "traces", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := runCmd(t, newPredictGenerateCmd(), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatal("output differs from the shipped trace")
			}
			if !strings.Contains(got, "# regenerate: ims-orch predict generate "+strings.Join(tc.args, " ")+"\n") {
				t.Error("header does not name the command")
			}
		})
	}
	out := filepath.Join(t.TempDir(), "r.csv")
	if _, err := runCmd(t, newPredictGenerateCmd(), "--kind", "step", "--seed", "3", "-o", out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.HasPrefix(b, []byte("# ims-orch workload trace")) {
		t.Errorf("-o file: %v", err)
	}
}

func TestPredictBacktest(t *testing.T) {
	ramp := filepath.Join("..", "..", "testdata", "traces", "ramp.csv")
	out, err := runCmd(t, newPredictBacktestCmd(), "-f", ramp)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"trace ramp.csv: 480 values", "MAPE %", "under %"}, defaultBacktestModels...) {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, newPredictBacktestCmd(), "-f", ramp, "-m", "ar1", "-m", "holt+q90", "--warmup", "20", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Values  int `json:"values"`
		Warmup  int `json:"warmup"`
		Results []struct {
			Model  string   `json:"model"`
			Points int      `json:"points"`
			MAPE   *float64 `json:"mape_pct"`
			Under  float64  `json:"under_pct"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if doc.Values != 480 || doc.Warmup != 20 || len(doc.Results) != 2 || doc.Results[1].Model != "holt+q90" ||
		doc.Results[0].Points != 460 || doc.Results[0].MAPE == nil || doc.Results[1].Under > 20 {
		t.Errorf("json document: %+v", doc)
	}
}

func TestPredictBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("interval,value\n0,1\n1,-4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ramp := filepath.Join("..", "..", "testdata", "traces", "ramp.csv")
	for _, tc := range []struct {
		name string
		cmd  *cobra.Command
		args []string
		err  string
	}{
		{"no file", newPredictBacktestCmd(), nil, "--file is required"},
		{"missing file", newPredictBacktestCmd(), []string{"-f", filepath.Join(dir, "nope.csv")}, "no such file"},
		{"bad trace", newPredictBacktestCmd(), []string{"-f", bad}, "line 3: value: invalid value: -4 is negative"},
		{"bad model", newPredictBacktestCmd(), []string{"-f", ramp, "-m", "holt:alfa=1"}, `unknown parameter "alfa"`},
		{"bad output", newPredictBacktestCmd(), []string{"-f", ramp, "-o", "xml"}, `--output "xml"`},
		{"warm-up too long", newPredictBacktestCmd(), []string{"-f", ramp, "--warmup", "480"}, "nothing to score"},
		{"bad kind", newPredictGenerateCmd(), []string{"--kind", "wave"}, `kind "wave": unknown`},
		{"bad profile", newPredictGenerateCmd(), []string{"--kind", "diurnal", "--profile", bad}, "profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCmd(t, tc.cmd, tc.args...)
			var ee *exitError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ee) || ee.code != 2 {
				t.Errorf("error = %v, want exit code 2 and %q", err, tc.err)
			}
		})
	}
}
