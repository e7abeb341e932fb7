package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/simulation"
)

func TestSimulateTiny(t *testing.T) {
	out := t.TempDir()
	got, err := runCmd(t, newSimulateCmd(), "-f", "../../testdata/experiments/tiny.yaml", "--strategy", "all", "--seed", "3", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hybrid", "reactive", "proactive"} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %s:\n%s", s, got)
		}
		for _, f := range []string{"seconds.csv", "instances.csv", "paths.csv", "rounds.csv", "rtt-cdf.csv", "sip-cdf.csv", "summary.csv"} {
			if st, err := os.Stat(filepath.Join(out, s, f)); err != nil || st.Size() == 0 {
				t.Errorf("%s/%s: %v", s, f, err)
			}
		}
	}
	for _, f := range append([]string{"summary.csv"}, simulation.PlotFiles...) {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "fig4-instances-created.png"))
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Error("fig4 is not a PNG")
	}
	if !strings.Contains(got, "tiny/hybrid") { // runCmd sends stderr to the same buffer
		t.Errorf("no progress bar: %q", got)
	}
}

func TestSimulateBadInput(t *testing.T) {
	tiny := []string{"-f", "../../testdata/experiments/tiny.yaml", "--out", "x"}
	for _, tc := range []struct {
		name string
		args []string
		flag string // the flag the error must name ("": any error)
	}{
		{"no file", []string{"--out", "x"}, ""},
		{"no out", []string{"-f", "../../testdata/experiments/tiny.yaml"}, ""},
		{"bad strategy", append(tiny, "--strategy", "lazy"), "--strategy"},
		{"missing file", []string{"-f", "nope.yaml", "--out", "x"}, ""},
		{"bad predictor", append(tiny, "--predictor", "oracle"), "--predictor"},
		{"bad change interval", append(tiny, "--change-interval", "-1s"), "--change-interval"},
		{"DP target above 1", append(tiny, "--dp-target-util", "1.1"), "--dp-target-util"},
		{"negative DP target", append(tiny, "--dp-target-util", "-0.2"), "--dp-target-util"},
		{"DP target not a number", append(tiny, "--dp-target-util", "NaN"), "--dp-target-util"},
		{"target 0", append(tiny, "--target-util", "0"), "--target-util"},
		{"target not a number", append(tiny, "--target-util", "NaN"), "--target-util"},
		{"pack flows above 1", append(tiny, "--pack-flows", "1.5"), "--pack-flows"},
		{"pack flows not a number", append(tiny, "--pack-flows", "NaN"), "--pack-flows"},
		{"spread overload above 1", append(tiny, "--spread-overload", "1.5"), "--spread-overload"},
		{"negative spread overload", append(tiny, "--spread-overload", "-0.1"), "--spread-overload"},
		{"spread overload not a number", append(tiny, "--spread-overload", "NaN"), "--spread-overload"},
		{"reactive util above 1", append(tiny, "--reactive-util", "1.5"), "--reactive-util"},
		{"negative reactive util", append(tiny, "--reactive-util", "-0.1"), "--reactive-util"},
		{"reactive util not a number", append(tiny, "--reactive-util", "NaN"), "--reactive-util"},
		{"trim-empty busy bar 0", append(tiny, "--trim-empty-busy", "0"), "--trim-empty-busy: must be in (0, 1]"},
		{"trim-empty single busy bar above 1", append(tiny, "--trim-empty-single-busy", "1.5"), "--trim-empty-single-busy: must be in (0, 1]"},
		{"spread overload below pack flows", append(tiny, "--spread-overload", "0.5"), "--spread-overload: must be 0 (off) or at least packFlows 0.88"},
		{"pack flows above spread overload", append(tiny, "--spread-overload", "0.6", "--pack-flows", "0.7"), "at least --pack-flows 0.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCmd(t, newSimulateCmd(), tc.args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("err %v, want exit code 2", err)
			}
			if !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("err %v, want one naming %s", err, tc.flag)
			}
		})
	}
}

func TestSimulateConsistency(t *testing.T) {
	got, err := runCmd(t, newSimulateCmd(), "consistency", "--seed", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "tagged") || !strings.Contains(got, "untagged") {
		t.Fatalf("output:\n%s", got)
	}
	if _, err := runCmd(t, newSimulateCmd(), "consistency", "--enter-skew", "1h"); err == nil {
		t.Fatal("1 h skew accepted")
	}
}

// Each switch flag sets its own experiment field, true or false, and only
// when given: the experiment file's value stays otherwise.
func TestSimulateSwitchesOverrideTheExperiment(t *testing.T) {
	fields := map[string]string{ // flag → simulation.Experiment field, written out here on purpose
		"warm-start": "WarmStart", "overload-at-capacity": "OverloadAtCapacity", "scale-in-guard": "ScaleInGuard",
		"local-first": "LocalFirst", "plan-horizon": "PlanHorizon", "trim-buffer": "TrimBuffer",
		"trim-empty": "TrimEmpty", "scale-in": "ScaleIn", "paper-reactive": "PaperReactive", "anticipate": "Anticipate",
		"profile-prior": "ProfilePrior", "rise-flags": "RiseFlags",
	}
	if len(experimentSwitches) != len(fields) {
		t.Fatalf("%d switch flags, the test knows %d", len(experimentSwitches), len(fields))
	}
	for flag := range fields {
		for _, want := range []bool{true, false} {
			cmd := newSimulateCmd()
			if err := cmd.Flags().Parse([]string{fmt.Sprintf("--%s=%t", flag, want)}); err != nil {
				t.Fatalf("--%s: %v", flag, err)
			}
			exp := &simulation.Experiment{}
			v := reflect.ValueOf(exp).Elem()
			for _, f := range fields { // every other switch holds the file's value: !want
				v.FieldByName(f).SetBool(!want)
			}
			overrideSwitches(cmd.Flags(), exp)
			for fl, f := range fields {
				w := !want
				if fl == flag {
					w = want
				}
				if got := v.FieldByName(f).Bool(); got != w {
					t.Errorf("--%s=%t: %s = %t, want %t", flag, want, f, got, w)
				}
			}
		}
	}
}

// --no-declared-profile drops the experiment's declared profile, through
// the command: daily-audio's first 600 s run with the flag exactly as the
// same experiment without its declaredProfile section, and not as with it.
func TestSimulateNoDeclaredProfile(t *testing.T) {
	data, err := os.ReadFile("../../testdata/experiments/daily-audio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(data), "\nduration: 2400s\n", "\nduration: 600s\n", 1)
	i := strings.Index(short, "\ndeclaredProfile:")
	if short == string(data) || i < 0 {
		t.Fatal("daily-audio.yaml: no duration: 2400s or declaredProfile to edit")
	}
	dir := t.TempDir()
	with, without := filepath.Join(dir, "with.yaml"), filepath.Join(dir, "without.yaml")
	if err := os.WriteFile(with, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(without, []byte(short[:i+1]), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(file string, extra ...string) string {
		out := filepath.Join(dir, fmt.Sprint(len(extra))+filepath.Base(file))
		args := append([]string{"-f", file, "--strategy", "hybrid", "--seed", "1", "-q", "--out", out}, extra...)
		if got, err := runCmd(t, newSimulateCmd(), args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, got)
		}
		b, err := os.ReadFile(filepath.Join(out, "seconds.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	on, dropped, none := run(with), run(with, "--no-declared-profile"), run(without)
	if dropped != none {
		t.Error("--no-declared-profile: the run differs from the experiment without a declared profile")
	}
	if on == none {
		t.Error("the declared profile changed nothing in 600 s: the test cannot tell the flag's effect")
	}
}

// Each fraction flag sets its own experiment field, and only when given:
// the experiment file's value stays otherwise.
func TestSimulateFractionsOverrideTheExperiment(t *testing.T) {
	fields := map[string]string{"pack-flows": "PackFlows", "spread-overload": "SpreadOverload", "reactive-util": "ReactiveUtilization",
		"falling-scale-in": "FallingScaleIn", "falling-scale-in-single": "FallingScaleInSingle", "trim-empty-busy": "TrimEmptyBusy", "trim-empty-single-busy": "TrimEmptySingleBusy"} // written out here on purpose
	if len(experimentFractions) != len(fields) {
		t.Fatalf("%d fraction flags, the test knows %d", len(experimentFractions), len(fields))
	}
	for flag := range fields {
		cmd := newSimulateCmd()
		if err := cmd.Flags().Parse([]string{"--" + flag + "=0.9"}); err != nil {
			t.Fatalf("--%s: %v", flag, err)
		}
		exp := &simulation.Experiment{PackFlows: 0.3, SpreadOverload: 0.95, ReactiveUtilization: 0.8, FallingScaleIn: 0.7, FallingScaleInSingle: 0.5, TrimEmptyBusy: 0.6, TrimEmptySingleBusy: 0.65} // the file's values
		if err := overrideFractions(cmd.Flags(), exp); err != nil {
			t.Fatalf("--%s=0.9: %v", flag, err)
		}
		v := reflect.ValueOf(exp).Elem()
		for fl, f := range fields {
			w := map[string]float64{"PackFlows": 0.3, "SpreadOverload": 0.95, "ReactiveUtilization": 0.8, "FallingScaleIn": 0.7, "FallingScaleInSingle": 0.5, "TrimEmptyBusy": 0.6, "TrimEmptySingleBusy": 0.65}[f]
			if fl == flag {
				w = 0.9
			}
			if got := v.FieldByName(f).Float(); got != w {
				t.Errorf("--%s=0.9: %s = %g, want %g", flag, f, got, w)
			}
		}
	}
}
