package simulation

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// A run whose experiment sets profilePrior (an analysis option: the run's
// own schedule as the declared profile) plans some round with the
// profile's rule; without it and without a declared profile none.
func TestProfilePriorRun(t *testing.T) {
	e := short(load(t, "daily-audio.yaml"), 600*time.Second)
	if e.ProfilePrior {
		t.Fatal("daily-audio.yaml sets profilePrior: the bundled experiments declare a profile instead")
	}
	data, err := os.ReadFile(expDir + "daily-audio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	on, err := ParseExperiment(append(data, []byte("\nprofilePrior: true\n")...))
	if err != nil {
		t.Fatal(err)
	}
	if !on.ProfilePrior {
		t.Fatal("profilePrior: true not read")
	}
	e.ProfilePrior, e.Declared = true, nil
	if n := len(profileRounds(t, e)); n == 0 {
		t.Fatal("no round planned by the profile")
	}
	off := *e
	off.ProfilePrior = false
	if n := len(profileRounds(t, &off)); n != 0 {
		t.Fatalf("%d series planned by the profile without profilePrior", n)
	}
}

// The bundled daily experiments declare a profile, and it is not their
// schedule: yesterday's (scripts/daily-experiments.py: the day × 10 %
// noise per DC and hour, its own seed).
func TestDailyExperimentsDeclareYesterday(t *testing.T) {
	clean, err := ParseExperiment(declaredYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"daily-audio.yaml", "daily-mobile-zoom.yaml"} {
		e := load(t, name)
		if e.Declared == nil || e.DeclaredNoise != 0 || e.DeclaredShift != 0 {
			t.Fatalf("%s: declared %v, noise %v, shift %v", name, e.Declared != nil, e.DeclaredNoise, e.DeclaredShift)
		}
		for i, d := range e.Declared.DCs {
			if name == "daily-audio.yaml" && slices.Equal(d.Rates, clean.Declared.DCs[i].Rates) {
				t.Fatalf("%s: DC %d declares the schedule's own day", name, i)
			}
			own := true // the declared day is the run's schedule at every hour
			for h := range global.HoursPerDay {
				at := time.Duration(h) * e.Declared.Hour
				own = own && math.Abs(e.Declared.Rate(i, at)-e.Schedule.Rate(i, at)) < 1e-6
			}
			if own {
				t.Fatalf("%s: DC %d declares the schedule's own day", name, i)
			}
			if d.UTCOffset != clean.Declared.DCs[i].UTCOffset {
				t.Fatalf("%s: DC %d offset %v", name, i, d.UTCOffset)
			}
		}
	}
}

// declaredYAML is daily-audio's generator form of a declared profile
// (scripts/daily-experiments.py --declared=clean) plus extra keys.
func declaredYAML(t *testing.T, extra string) []byte {
	t.Helper()
	data, err := os.ReadFile(expDir + "daily-audio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// the Sandvine audio shares × 15 / max, local hours 0..23
	const day = "[6.245, 3.038, 3.376, 3.713, 4.22, 8.44, 11.613, 11.613, 14.032, 13.79, 14.032, 15, 10.803, 10.803, 13.335, 13.672, 13.335, 14.01, 12.491, 11.14, 10.296, 9.115, 9.284, 7.764]"
	s := "\ndeclaredProfile:\n  hour: 100s\n" + extra + "  dcs:\n" +
		"    - {dc: tokyo, utcOffset: 9, rates: " + day + "}\n" +
		"    - {dc: hong-kong, utcOffset: 8, rates: " + day + "}\n" +
		"    - {dc: london, utcOffset: 0, rates: " + day + "}\n" +
		"    - {dc: houston, utcOffset: -6, rates: " + day + "}\n"
	if i := strings.Index(string(data), "\ndeclaredProfile:"); i >= 0 {
		data = data[:i+1]
	}
	return append(data, []byte(s)...)
}

// profileRounds runs e (hybrid, seed 1) and returns every forecast the
// profile's rule set, by round and series.
func profileRounds(t *testing.T, e *Experiment) map[string]float64 {
	t.Helper()
	r, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for i, rec := range r.sys.Engine.Records() {
		for k, fc := range rec.Forecasts {
			if fc.Rule == global.RuleProfile {
				out[fmt.Sprint(i, k)] = fc.Value
			}
		}
	}
	return out
}

// An experiment's declaredProfile in the operator's form (local hours,
// UTC offsets) plans like the schedule it describes (profilePrior): the
// same rounds and series raised by the same values; its noise ("yesterday")
// changes them.
func TestDeclaredProfileRun(t *testing.T) {
	e, err := ParseExperiment(declaredYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if e.Declared == nil || e.ProfilePrior {
		t.Fatal("declaredProfile not read")
	}
	e = short(e, 600*time.Second)
	got := profileRounds(t, e)
	own := *e
	own.Declared, own.ProfilePrior = nil, true
	want := profileRounds(t, &own)
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("%d forecasts raised by the declared profile, %d by the schedule", len(got), len(want))
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-6*v {
			t.Fatalf("%s: %v by the declared profile, %v by the schedule", k, got[k], v)
		}
	}
	noisy := *e
	noisy.DeclaredNoise = 0.1
	n := profileRounds(t, &noisy)
	same := 0
	for k, v := range n {
		if math.Abs(want[k]-v) <= 1e-6*v {
			same++
		}
	}
	if same == len(n) && len(n) == len(want) {
		t.Fatal("a noisy declared profile plans like the schedule")
	}
}

// yesterday's noise is seeded (the run's seed unless noiseSeed), its
// shift moves the curve late; without them it is the declared profile.
func TestYesterday(t *testing.T) {
	e, err := ParseExperiment(declaredYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if y := e.yesterday(1); !slices.Equal(y.DCs[0].Rates, e.Declared.DCs[0].Rates) || y.DCs[0].UTCOffset != 9 {
		t.Fatalf("no noise or shift: %+v", y.DCs[0])
	}
	e.DeclaredNoise, e.DeclaredShift = 0.1, 0.5
	a, b, a2 := e.yesterday(1), e.yesterday(2), e.yesterday(1)
	if slices.Equal(a.DCs[0].Rates, e.Declared.DCs[0].Rates) || slices.Equal(a.DCs[0].Rates, b.DCs[0].Rates) || !slices.Equal(a.DCs[3].Rates, a2.DCs[3].Rates) {
		t.Fatal("noise not drawn per seed, or not reproducible")
	}
	if a.DCs[0].UTCOffset != 8.5 || a.Rate(2, 150*time.Second) != (&global.DailyProfile{Hour: a.Hour, DCs: []global.DCProfile{{}, {}, {Rates: a.DCs[2].Rates}}}).Rate(2, 100*time.Second) {
		t.Fatalf("shift 0.5 h: offset %v", a.DCs[0].UTCOffset)
	}
	for h, r := range a.DCs[1].Rates {
		if q := r / e.Declared.DCs[1].Rates[h]; q < 0.5 || q > 1.5 {
			t.Fatalf("hour %d: ×%v, not 10 %% noise", h, q)
		}
	}
	seed := uint64(2)
	e.DeclaredNoiseSeed = &seed
	if !slices.Equal(e.yesterday(1).DCs[0].Rates, b.DCs[0].Rates) {
		t.Fatal("noiseSeed does not replace the run's seed")
	}
}

// declaredProfile's errors name the field.
func TestDeclaredProfileErrors(t *testing.T) {
	for name, c := range map[string]struct{ extra, want string }{
		"noise":   {"  noise: 2\n", "experiment declaredProfile.noise 2"},
		"shift":   {"  shiftHours: 13\n", "experiment declaredProfile.shiftHours 13"},
		"hour":    {"  callDuration: x\n", "experiment declaredProfile.callDuration"},
		"unknown": {"  noize: 1\n", "noize"},
		"weight":  {"  weight: 1.5\n", "experiment declaredProfile.weight 1.5"},
		"max":     {"  maxWeight: -1\n", "experiment declaredProfile.maxWeight -1"},
		"ramp":    {"  rampScale: 1000\n", "experiment declaredProfile.rampScale 1000"},
		"window":  {"  window: -5s\n", "experiment declaredProfile.window -5s"},
		"short":   {"  window: 500ms\n", "experiment declaredProfile.window 500ms"},
		"kinds":   {"  kindWeights: {delay: 1}\n", "experiment declaredProfile.kindWeights"},
		"floor":   {"  stageFloor: 0.5\n", "experiment declaredProfile.stageFloor 0.5"},
		"mode":    {"  stageFloorMode: keep\n", `experiment declaredProfile.stageFloorMode "keep"`},
		"fwindow": {"  stageFloorWindow: -1s\n", "experiment declaredProfile.stageFloorWindow -1s"},
	} {
		if _, err := ParseExperiment(declaredYAML(t, c.extra)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	data := strings.Replace(string(declaredYAML(t, "")), "{dc: london, utcOffset: 0, rates: [6.245,", "{dc: london, utcOffset: 0, file: x.csv, rates: [6.245,", 1)
	if _, err := ParseExperiment([]byte(data)); err == nil || !strings.Contains(err.Error(), "experiment declaredProfile.dcs[2]: rates and file") {
		t.Errorf("file: %v", err)
	}
	data = strings.Replace(string(declaredYAML(t, "")), "{dc: london, utcOffset: 0, rates:", "{dc: london, timeZone: Europe/London, rates:", 1)
	if _, err := ParseExperiment([]byte(data)); err == nil || !strings.Contains(err.Error(), `experiment declaredProfile.dcs[2].timeZone "Europe/London": an experiment's time 0 is its start`) {
		t.Errorf("timeZone: %v", err)
	}
	data = strings.Replace(string(declaredYAML(t, "")), "{dc: london, utcOffset: 0, rates:", "{dc: paris, utcOffset: 0, rates:", 1)
	if _, err := ParseExperiment([]byte(data)); err == nil || !strings.Contains(err.Error(), `experiment declaredProfile.dcs[2].dc "paris"`) {
		t.Errorf("dc: %v", err)
	}
}

// The analysis keys weight, rampScale, maxWeight, window and kindWeights reach the
// rounds' prior.
func TestDeclaredPriorKeys(t *testing.T) {
	e, err := ParseExperiment(declaredYAML(t, "  weight: 0.5\n  rampScale: 0.25\n  maxWeight: 0.75\n  window: 30s\n  kindWeights: {cp: 0}\n  flatWeight: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := e.profilePrior(time.Unix(0, 0), 1)
	if p == nil || p.Weight != 0.5 || p.RampScale != 0.25 || p.MaxWeight != 0.75 || p.Window != 30*time.Second || len(p.KindWeights) != 1 || p.KindWeights["cp"] != 0 || !p.FlatWeight {
		t.Fatalf("prior %+v, want weight 0.5, rampScale 0.25, maxWeight 0.75, window 30s, kindWeights {cp: 0}, flatWeight", p)
	}
	// Without the keys: the defaults (zero values, global.ProfileWeight
	// and ProfileRampScale in the prior), fading.
	e, err = ParseExperiment(declaredYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if p := e.profilePrior(time.Unix(0, 0), 1); p == nil || p.FlatWeight || p.Weight != 0 || p.RampScale != 0 {
		t.Fatalf("prior %+v, want the defaults", p)
	}
}

// The analysis key stageFloor reaches the prior, and the rounds act on it:
// on daily-audio's first 600 s (seed 1) some DP stage is raised by the
// stage floor (its reason says so) and some series carries a peak; with
// stageFloor 1 (off), none.
func TestDeclaredStageFloorRun(t *testing.T) {
	floored := func(extra string, floor float64) (raised, peaks int) {
		e, err := ParseExperiment(declaredYAML(t, extra))
		if err != nil {
			t.Fatal(err)
		}
		if p := e.profilePrior(time.Unix(0, 0), 1); p.StageFloor != floor {
			t.Fatalf("stageFloor %v did not reach the prior: %+v", floor, p)
		}
		r, err := Run(context.Background(), short(e, 600*time.Second), Options{Strategy: strategy.Hybrid, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range r.sys.Engine.Records() {
			for _, fc := range rec.Forecasts {
				if fc.Peak > 0 {
					peaks++
				}
			}
			for _, d := range rec.Decision {
				for _, tg := range d.Targets {
					if strings.Contains(tg.Reason, "stage floor") {
						raised++
					}
				}
			}
		}
		return raised, peaks
	}
	if raised, peaks := floored("  stageFloor: 3\n  stageFloorMode: launch\n", 3); raised == 0 || peaks == 0 {
		t.Fatalf("stageFloor 3: %d stages raised, %d peaks; want some", raised, peaks)
	}
	if raised, peaks := floored("  stageFloor: 1\n", 1); raised != 0 || peaks != 0 {
		t.Fatalf("stageFloor 1 (off): %d stages raised, %d peaks", raised, peaks)
	}
}

// stageFloorMode hold (with stageFloorWindow) reaches the prior and the
// DCs: on daily-audio's first 600 s (seed 1) some stage target asks to
// keep buffered instances, with the default mode (hold, and the default
// stage floor 3) too; with the mode launch none does.
func TestDeclaredStageHoldRun(t *testing.T) {
	kept := func(extra string) (n int) {
		e, err := ParseExperiment(declaredYAML(t, extra))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(context.Background(), short(e, 600*time.Second), Options{Strategy: strategy.Hybrid, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range r.sys.Engine.Records() {
			for _, d := range rec.Decision {
				for _, tg := range d.Targets {
					if tg.KeepBuffered > 0 {
						n++
					}
				}
			}
		}
		return n
	}
	hold := "  stageFloor: 6\n  stageFloorMode: hold\n  stageFloorWindow: 200s\n"
	e, err := ParseExperiment(declaredYAML(t, hold))
	if err != nil {
		t.Fatal(err)
	}
	if p := e.profilePrior(time.Unix(0, 0), 1); p.StageFloorMode != "hold" || p.StageFloorWindow != 200*time.Second {
		t.Fatalf("mode and window did not reach the prior: %+v", p)
	}
	if n := kept(hold); n == 0 {
		t.Fatal("stageFloorMode hold: no target asks to keep buffered instances")
	}
	// the defaults launch since session 14 (hold in session 13)
	if n := kept(""); n != 0 {
		t.Fatalf("the defaults: %d targets ask to keep buffered instances, want none (launch)", n)
	}
	if n := kept("  stageFloorMode: launch\n"); n != 0 {
		t.Fatalf("stageFloorMode launch: %d targets ask to keep buffered instances", n)
	}
}
