package global

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/predictor"
)

func predictOne(f Forecaster, k string) float64 { return f.Predict([]string{k})[k].Value }

func TestBankForecaster(t *testing.T) {
	if _, err := NewBankForecaster("no-such-model"); err == nil {
		t.Fatal("bad spec accepted")
	}
	f, err := NewBankForecaster("ar1")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{100, 100, 100, 100} {
		if err := f.Observe(map[string]float64{"dp/a/b": x}); err != nil {
			t.Fatal(err)
		}
	}
	if p := predictOne(f, "dp/a/b"); math.Abs(p-100) > 1e-9 {
		t.Fatalf("constant series predicted %g", p)
	}
	if p := predictOne(f, "dp/x/y"); p != 0 {
		t.Fatalf("unknown series predicted %g", p)
	}
	// a bad value is rejected and named; the round's other series are observed
	err = f.Observe(map[string]float64{"dp/a/b": math.NaN(), "dp/c/d": 7})
	if err == nil || !strings.Contains(err.Error(), "series dp/a/b") {
		t.Fatalf("NaN: %v", err)
	}
	if p := predictOne(f, "dp/c/d"); p != 7 {
		t.Fatalf("the valid series of a round with a bad value: %g, want 7", p)
	}
	if p := predictOne(f, "dp/a/b"); math.Abs(p-100) > 1e-9 {
		t.Fatalf("rejected value changed the series: %g", p)
	}
}

// TestBankForecasterIsTheBank: every series of a round is forecast by one
// predictor.Bank; series that join late or miss an interval keep their own
// history. The forecasts equal one single-series model per series, and the
// detail (the candidate "auto" chose, the q90 margin) is the bank's.
func TestBankForecasterIsTheBank(t *testing.T) {
	const spec = "auto+q90:win=5"
	f, err := NewBankForecaster(spec)
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]predictor.Model{}
	keys := []string{"dp/a/b", "cp/a/b", "delay/a/b", "dp/b/a"}
	for r := range 30 {
		avg := map[string]float64{}
		for j, k := range keys {
			if (k == "dp/b/a" && r < 7) || (k == "cp/a/b" && r%4 == 1) {
				continue // joins late / missing this interval
			}
			avg[k] = float64(100 + 10*j + (r*r*(j+3))%17)
			if models[k] == nil {
				models[k], _ = predictor.New(spec)
			}
			_ = models[k].Observe(avg[k])
		}
		if err := f.Observe(avg); err != nil {
			t.Fatal(err)
		}
		got := f.Predict(keys)
		for _, k := range keys {
			m := models[k]
			if m == nil {
				if got[k] != (Forecast{}) {
					t.Fatalf("round %d %s: no history yet, forecast %+v", r, k, got[k])
				}
				continue
			}
			mg := m.(*predictor.Margin)
			want := Forecast{Value: m.Predict(), Mean: mg.Base().Predict(), Margin: mg.Offset(), Model: mg.Base().(*predictor.Auto).Chosen()}
			g := got[k]
			if math.Abs(g.Value-want.Value) > 1e-9 || math.Abs(g.Mean-want.Mean) > 1e-9 || math.Abs(g.Margin-want.Margin) > 1e-9 || g.Model != want.Model {
				t.Fatalf("round %d %s: forecast %+v, want %+v", r, k, g, want)
			}
		}
	}
	if !strings.Contains(f.Explain("dp/a/b"), "auto: ") || f.Spec() != spec {
		t.Fatalf("Explain %q Spec %q", f.Explain("dp/a/b"), f.Spec())
	}
}

// SetHorizon: on a line rising 10 per interval, "last" forecasts the last
// value u (Δ = 0, nothing changes); Holt with β = 1 continues the line (û =
// u + 10, Δ = 10) and the planning load is û + h·Δ; on a falling line the
// interval's start, û − Δ/2, is the larger. Delay series are untouched.
func TestForecasterHorizon(t *testing.T) {
	f, err := NewBankForecaster("holt:alpha=1,beta=1")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	up, down, delay := SeriesKey(KindDP, "a", "b"), SeriesKey(KindCP, "a", "b"), SeriesKey(KindDelay, "a", "b")
	for i := 0; i < 5; i++ {
		if err := f.Observe(map[string]float64{up: float64(100 + 10*i), down: float64(100 - 10*i), delay: float64(100 + 10*i)}); err != nil {
			t.Fatal(err)
		}
	}
	// last values: up 140 (û 150), down 60 (û 50), delay 140 (û 150)
	if p := predictOne(f, up); math.Abs(p-(150+1.1*10)) > 1e-9 {
		t.Fatalf("rising: %g, want 161", p)
	}
	if p := predictOne(f, down); math.Abs(p-(50+5)) > 1e-9 {
		t.Fatalf("falling: %g, want 55 (the interval's start)", p)
	}
	if p := predictOne(f, delay); math.Abs(p-150) > 1e-9 {
		t.Fatalf("delay: %g, want the model's 150", p)
	}
	if fc := f.Predict([]string{up})[up]; fc.Mean != 150 || fc.Model != "holt:alpha=1,beta=1" {
		t.Fatalf("rising: mean %g model %q, want the model's 150 and the spec", fc.Mean, fc.Model)
	}
	f.SetHorizon(0)
	if p := predictOne(f, up); math.Abs(p-150) > 1e-9 {
		t.Fatalf("no horizon: %g, want 150", p)
	}
}

// After a ramp turns, a model's trend outlives the turn: the horizon
// extrapolates a rise only as far as the last observed change confirms it.
// Holt with β = 0.2 on 100, 140, 180, 220, 225 still forecasts a rise of
// more than 5; the plan is û + 1.1·5 (the last change), not û + 1.1·(û − 225).
// A flat or falling last change extrapolates nothing upwards.
func TestForecasterHorizonFollowsTheLastChange(t *testing.T) {
	f, err := NewBankForecaster("holt:alpha=1,beta=0.2")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	turn, flat := SeriesKey(KindDP, "a", "b"), SeriesKey(KindDP, "a", "c")
	for _, x := range [][2]float64{{100, 100}, {140, 140}, {180, 180}, {220, 220}, {225, 220}} {
		if err := f.Observe(map[string]float64{turn: x[0], flat: x[1]}); err != nil {
			t.Fatal(err)
		}
	}
	fc := f.Predict([]string{turn, flat})
	if u := fc[turn].Mean; !(u > 225+5) {
		t.Fatalf("holt's forecast %g: want a trend above the last change (test premise)", u)
	}
	if got, want := fc[turn].Value, fc[turn].Mean+1.1*5; math.Abs(got-want) > 1e-9 {
		t.Fatalf("after the turn: %g, want û + 1.1·5 = %g", got, want)
	}
	if got, want := fc[flat].Value, fc[flat].Mean; math.Abs(got-want) > 1e-9 {
		t.Fatalf("flat last change: %g, want the model's %g", got, want)
	}
	// by hand: u 100, last 90 (rise 10 confirmed: 100 + 11), rise 4 (100 + 4.4),
	// a fall (u 80 below last 90: the interval's start 85)
	for _, c := range []struct{ u, last, rise, want float64 }{{100, 90, 10, 111}, {100, 90, 4, 104.4}, {100, 90, -3, 100}, {80, 90, -10, 85}} {
		if got := horizonValue(c.u, c.last, c.rise, 1.1); math.Abs(got-c.want) > 1e-9 {
			t.Fatalf("horizonValue(%v): %g, want %g", c, got, c.want)
		}
	}
}

// A series that starts (new after the first round, or after an interval
// of 0) is planned from its recent level: its interval average holds the
// time before the start and the model has one value, so a DC whose
// traffic starts mid-interval was planned at its first partial average
// (async start: the round after Hong Kong's start planned 754 pkt/s on
// hong-kong→hong-kong while it reached 8 400 by the round). With h = 1.1,
// average 1000 and recent level 3000: 3000 + 3.2·2000. A running series and
// one without a recent level keep the horizon value; a start whose recent
// level is below its average extrapolates nothing.
func TestForecasterPlansAStartFromTheRecentLevel(t *testing.T) {
	f, err := NewBankForecaster("kalman")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	run, born, restart, norecent, falling := SeriesKey(KindDP, "a", "a"), SeriesKey(KindDP, "b", "b"),
		SeriesKey(KindDP, "c", "c"), SeriesKey(KindDP, "d", "d"), SeriesKey(KindDP, "e", "e")
	for _, obs := range []map[string]float64{
		{run: 1000, restart: 500},
		{run: 1000, restart: 0},
		{run: 1000, restart: 1000, born: 1000, norecent: 1000, falling: 1000},
	} {
		if err := f.Observe(obs); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{run, born, restart, norecent, falling}
	before := f.Predict(keys)
	f.SetRecent(levels(map[string]float64{run: 3000, born: 3000, restart: 3000, falling: 400}))
	got := f.Predict(keys)
	for _, k := range []string{born, restart} {
		if want := 3000 + 3.2*2000; math.Abs(got[k].Value-want) > 1e-6 {
			t.Fatalf("%s starting: %g, want %g (without the recent level %g)", k, got[k].Value, want, before[k].Value)
		}
	}
	for _, k := range []string{run, norecent, falling} {
		if got[k].Value != before[k].Value {
			t.Fatalf("%s: %g, want the horizon value %g", k, got[k].Value, before[k].Value)
		}
	}
	// the recent level is one Predict's: the next Predict without a fresh
	// SetRecent, or after SetRecent(nil), does not reuse it
	if g := f.Predict([]string{born})[born].Value; g != before[born].Value {
		t.Fatalf("recent level reused by a Predict without SetRecent: %g, want %g", g, before[born].Value)
	}
	f.SetRecent(levels(map[string]float64{born: 3000}))
	f.SetRecent(nil)
	if g := f.Predict([]string{born})[born].Value; g != before[born].Value {
		t.Fatalf("recent level kept: %g, want %g", g, before[born].Value)
	}
}

// The round gives the forecaster the intake's recent level: a pair that
// starts mid-interval and ramps (dc1→dc1 from t = 120 s, 100 pkt/s more
// every second) is planned for its level at the round and beyond, not for
// its partial interval average (without the recent level the plan is the
// average: the model has one value).
func TestRoundPlansAStartingPairFromItsRecentLevel(t *testing.T) {
	var clk *clock.Virtual
	start := t0.Add(120 * time.Second)
	h := newHarness(t, 2, transportCfgNone, Hooks{}, func(i, j int) float64 {
		if i == 1 && j == 1 {
			return max(0, 100*clk.Now().Sub(start).Seconds())
		}
		return 1000
	})
	clk = h.clk
	f, err := NewBankForecaster("kalman")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	if h.eng, err = New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: f, Store: h.store}); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 4)
	key := SeriesKey(KindDP, "dc1", "dc1")
	var rec *RoundRecord
	for _, r := range h.eng.Records() {
		if _, ok := r.Actual[key]; ok && rec == nil {
			rec = &r
		}
	}
	if rec == nil {
		t.Fatal("no round observed the starting pair")
	}
	// the first round after the start: the average holds the seconds
	// before it; the level at the round is ≈ 100 × the seconds since it
	level := 100 * (rec.Started.Sub(start).Seconds() - RecentReports/2)
	if avg, got := rec.Actual[key], rec.Predicted[key]; !(avg < level/2 && got > level) {
		t.Fatalf("round %d (at %v): average %g, level ≈ %g, planned %g: want above the level", rec.Round, rec.Started.Sub(t0), avg, level, got)
	}
}

// On a fall the next interval's largest load is at its start, now: the
// plan takes the recent level instead of the model's estimate of it,
// between the model's mean and the horizon value. Holt (α = β = 1) on
// 200, 180, 160 forecasts 140: the horizon value is the interval's start,
// 150. A recent level of 145 plans 145, 120 plans the model's 140, 170
// keeps 150; a rise, or a recent level above the last average, keeps the
// horizon value.
func TestForecasterPlansAFallFromTheRecentLevel(t *testing.T) {
	f, err := NewBankForecaster("holt:alpha=1,beta=1")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	keys := []string{"dp/a/a", "dp/a/b", "dp/a/c", "dp/a/d", "dp/b/b"}
	for _, x := range []float64{200, 180, 160} {
		if err := f.Observe(map[string]float64{keys[0]: x, keys[1]: x, keys[2]: x, keys[3]: x, keys[4]: 360 - x}); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Predict(keys)
	if before[keys[0]].Value != 150 || before[keys[4]].Value != 200+1.1*20+20 {
		t.Fatalf("premise: horizon values %v", before)
	}
	f.SetRecent(levels(map[string]float64{keys[0]: 145, keys[1]: 120, keys[2]: 170, keys[3]: 165, keys[4]: 150}))
	got := f.Predict(keys)
	// keys[4] rises for the model (242) while its recent level fell below
	// the average: the recent rule (not the fall rule) moves it halfway
	// to the average, 200
	for k, want := range map[string]float64{keys[0]: 145, keys[1]: 140, keys[2]: 150, keys[3]: 150, keys[4]: 221} {
		if math.Abs(got[k].Value-want) > 1e-9 {
			t.Fatalf("%s: %g, want %g", k, got[k].Value, want)
		}
	}
}

// The turn of a ramp and the end of a start's ramp: the model's trend
// (holt with β = 1 keeps the last change) plans the rise on, the recent
// level says the load has stopped rising; the plan moves halfway from the
// model's trajectory to the recent line (never below the load now or the
// interval's average), and a recent level that confirms the model's rise
// changes nothing.
func TestForecasterPlansATurnFromTheRecentLevel(t *testing.T) {
	f, err := NewBankForecaster("holt:alpha=1,beta=1")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	keys := []string{"dp/a/a", "dp/a/b", "dp/a/c", "cp/a/a"}
	for _, x := range []float64{1000, 2000, 3000} {
		if err := f.Observe(map[string]float64{keys[0]: x, keys[1]: x, keys[2]: x, keys[3]: x}); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Predict(keys)
	// û = 4000, Δ = 1000 confirmed by the last change: 4000 + 1.1 × 1000
	if before[keys[0]].Value != 5100 || before[keys[0]].Rule != RuleHorizon {
		t.Fatalf("premise: horizon value %+v", before[keys[0]])
	}
	f.SetRecent(levels(map[string]float64{
		keys[0]: 3100, // flat since the middle: line 3100 + 3.2 × 100 = 3420
		keys[1]: 3500, // the model's ramp: line 3500 + 3.2 × 500 = 5100
		keys[2]: 2800, // turned down: line below r and the average → 3000
		keys[3]: 3200, // line 3200 + 3.2 × 200 = 3840
	}))
	got := f.Predict(keys)
	for k, want := range map[string]struct {
		v    float64
		rule string
	}{
		keys[0]: {5100 - 0.5*(5100-3420), RuleRecent},
		keys[1]: {5100, RuleHorizon},
		keys[2]: {5100 - 0.5*(5100-3000), RuleRecent},
		keys[3]: {5100 - 0.5*(5100-3840), RuleRecent},
	} {
		if math.Abs(got[k].Value-want.v) > 1e-9 || got[k].Rule != want.rule {
			t.Errorf("%s: %g (%s), want %g (%s)", k, got[k].Value, got[k].Rule, want.v, want.rule)
		}
	}
}

// levels gives each series a recent level without a slope of its own.
func levels(m map[string]float64) map[string]Recent {
	out := make(map[string]Recent, len(m))
	for k, v := range m {
		out[k] = Recent{Level: v}
	}
	return out
}

// The start rule's slope is capped by the rise the recent reports show
// (the reviewer's scenario of session 6): a pair that steps from 0 to
// L = 1000 five seconds before the round (flat recent reports) planned
// r + 3.2(r − avg) = 1000 + 3.2 × 900 = 3880 for one interval; capped, L.
// A ramp whose reports rise as fast as the line keeps the line's value,
// and without a slope from the reports (too few) the line is planned.
func TestForecasterCapsAStartByTheRecentSlope(t *testing.T) {
	f, err := NewBankForecaster("kalman")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	step, ramp, few := SeriesKey(KindDP, "a", "a"), SeriesKey(KindDP, "b", "b"), SeriesKey(KindDP, "c", "c")
	if err := f.Observe(map[string]float64{"dp/x/x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Observe(map[string]float64{step: 100, ramp: 100, few: 100}); err != nil {
		t.Fatal(err)
	}
	f.SetRecent(map[string]Recent{
		step: {Level: 1000, Slope: 0, SlopeOK: true},
		ramp: {Level: 1000, Slope: 1800, SlopeOK: true}, // as fast as the line, 2 × (1000 − 100) per interval
		few:  {Level: 1000},
	})
	got := f.Predict([]string{step, ramp, few})
	for k, want := range map[string]float64{step: 1000, ramp: 1000 + 3.2*900, few: 1000 + 3.2*900} {
		if math.Abs(got[k].Value-want) > 1e-6 || got[k].Rule != RuleStart {
			t.Errorf("%s: %g (%s), want %g (start)", k, got[k].Value, got[k].Rule, want)
		}
	}
}

// A ramp from 0 that began late in the interval: 100 pkt/s more every
// second from 10 s before the round of a 50 s interval averages 110 and
// its last 5 one-second reports 800, rising 100 per report, 5 000 per
// interval. The line through the average at the interval's middle rises
// 2 × (800 − 110) = 1 380 per interval and planned 800 + 1.6 × 1 380 =
// 3 008 (the ramp is at 9 000 80 s later); a ramp from 0 with that average
// and level began 2 × 110 / 800 of an interval ago and rises
// 800² / 220 ≈ 2 909 per interval, planned 800 + 1.6 × 2 909 ≈ 5 455. The
// reports' own rise caps it, as for the line.
func TestForecasterPlansALateStartAsARamp(t *testing.T) {
	f, err := NewBankForecaster("kalman")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	late, slow := SeriesKey(KindDP, "a", "a"), SeriesKey(KindDP, "b", "b")
	if err := f.Observe(map[string]float64{"dp/x/x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Observe(map[string]float64{late: 110, slow: 110}); err != nil {
		t.Fatal(err)
	}
	f.SetRecent(map[string]Recent{
		late: {Level: 800, Slope: 5000, SlopeOK: true},
		slow: {Level: 800, Slope: 2000, SlopeOK: true}, // the reports rise less than the ramp's slope
	})
	got := f.Predict([]string{late, slow})
	for k, want := range map[string]float64{late: 800 + 1.6*800*800/220, slow: 800 + 1.6*2000} {
		if math.Abs(got[k].Value-want) > 1e-6 || got[k].Rule != RuleStart {
			t.Errorf("%s: %g (%s), want %g (start)", k, got[k].Value, got[k].Rule, want)
		}
	}
}
