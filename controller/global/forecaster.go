package global

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/ims-orch/ims-orch/predictor"
)

// Forecast is one series' forecast for the next interval.
type Forecast struct {
	// Value is what the round plans with: the model's forecast, its
	// "+qNN" margin included, raised to the plan horizon (SetHorizon) on
	// workload series.
	Value float64 `json:"value"`
	// Mean is the model's forecast of the interval's mean (without margin
	// and horizon).
	Mean float64 `json:"mean"`
	// Margin is the "+qNN" margin in Value (0 without one).
	Margin float64 `json:"margin,omitempty"`
	// Model is the model that made the forecast: the policy's spec, or for
	// "auto" the candidate chosen for this series.
	Model string `json:"model"`
	// Rule is the planning rule that set Value on a workload series
	// planned with the plan horizon (SetHorizon): RuleHorizon, RuleStart,
	// RuleFall, RuleRecent or RuleProfile; empty without a horizon and on delay series.
	Rule string `json:"rule,omitempty"`
	// Peak is a data-plane workload series' load at a declared profile's
	// full coming rise (its observed interval average × r) when that is
	// above Value and the prior's StageFloor acts on the rise; 0: none.
	// The round gives every DP stage enough instances at their full
	// capacity for the peaks of the pairs it carries (stageFloor).
	Peak float64 `json:"peak,omitempty"`
	// Rise is a data-plane workload series' declared-profile rise: the
	// profile's largest pair load over the prior's window ahead ÷ its mean
	// over the interval just closed (the ratio its prior plans with), or
	// RiseNoBase when the profile foresees no load over that interval; 0:
	// the series has no declared profile (or no measured load). A round
	// sends no NoRise or Fast flag for a stage carrying a pair whose rise
	// passes RisePolicy's bars.
	Rise float64 `json:"rise,omitempty"`
}

// Forecast.Rule values: which rule set a workload series' planning value.
const (
	RuleHorizon = "horizon" // horizonValue: the model's trend over the horizon
	RuleStart   = "start"   // startValue raised it (a series that has just started)
	RuleFall    = "fall"    // fallValue lowered it (a falling series)
	RuleRecent  = "recent"  // recentValue lowered it (the recent level rises less than the model)
	RuleProfile = "profile" // a declared traffic profile's rise raised it (ProfilePrior)
)

// Forecaster predicts one series per key from its past interval averages,
// one round at a time.
type Forecaster interface {
	// Observe feeds one interval's averages; a key seen for the first time
	// starts a series, a series absent from avg is not observed this
	// interval. An invalid value is rejected (the error names the series)
	// and the other series are observed.
	Observe(avg map[string]float64) error
	// Predict forecasts the next interval of every key (a zero Forecast for
	// an unknown key).
	Predict(keys []string) map[string]Forecast
}

// RecentForecaster is a Forecaster that also plans with each workload
// series' recent level: the round gives it the level at the end of the
// interval just observed before each Predict.
type RecentForecaster interface {
	Forecaster
	SetRecent(recent map[string]Recent)
}

// BankForecaster is the global controller's Forecaster: every series of
// the policy's model spec (e.g. "ar1", "auto+q90", see predictor.ParseSpec)
// lives in one predictor.Bank, indexed by key in the order keys first
// appeared (sorted within an interval), and a round is one batch Observe
// and one batch Predict over the bank.
type BankForecaster struct {
	mu      sync.Mutex
	bank    *predictor.Bank
	index   map[string]int
	trend   []bool    // the horizon applies (workload series, not delays)
	last    []float64 // last observed value
	rise    []float64 // last observed change: last − the value before it (0 after one value)
	vals    []float64 // scratch: this round's values
	seen    []bool    // scratch: observed this round
	out     []float64 // scratch: the bank's forecasts
	recent  []Recent  // the recent level (SetRecent), Level −1: none this round
	started []bool    // the value before the last observed one was 0, or the series is new since the first round
	rounds  int       // Observe calls so far
	horizon float64
}

var _ Forecaster = (*BankForecaster)(nil)

// NewBankForecaster checks the spec and returns an empty forecaster.
func NewBankForecaster(spec string) (*BankForecaster, error) {
	b, err := predictor.NewBank(spec, 0)
	if err != nil {
		return nil, err
	}
	return &BankForecaster{bank: b, index: map[string]int{}}, nil
}

// Spec returns the canonical model spec.
func (f *BankForecaster) Spec() string { return f.bank.Name() }

// SetHorizon makes Predict return, for the workload series, the largest
// load of a linear trajectory through the forecast over the next interval
// and the boot horizon after it, instead of the interval's mean: with û the
// model's forecast of the interval's mean and Δ = û − (the last observed
// interval), the load at the interval's start is ≈ û − Δ/2 and at h
// intervals after its middle û + h·Δ, so Predict = û + max(−Δ/2, h·Δ).
// h = ½ + boot delay / interval covers the interval's end and the boot time
// of the instances the next round would add (what this round's instances
// must carry until then). A rise is extrapolated only as far as the last
// observed change confirms it (horizonValue). h = 0 (the default) is the
// paper's mean forecast.
// Delay series keep the model's forecast.
func (f *BankForecaster) SetHorizon(h float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.horizon = max(0, h)
}

// horizonValue is SetHorizon's planning value for a workload series with
// model forecast u, last observed value last and last observed change rise:
// u + max(−Δ/2, h·Δ), Δ = u − last, where a rise Δ > 0 is extrapolated over
// the horizon only as far as the last observed change confirms it:
// Δ = min(Δ, max(0, rise)). A model's trend outlives the turn of a ramp
// (Kalman's and Holt's trend decays over several intervals after a peak),
// and h·Δ doubles that overshoot; a rise the latest interval still showed
// is extrapolated in full (docs/reproduction.md, session 5: hybrid pays
// 0.1–3.2 % fewer VM-seconds on 15 of 17 section-6 and daily experiments
// and 0.1 % / 0.9 % more on two; simultaneous 80 s loses half of
// reactive-only's packets instead of 1.06 ×).
func horizonValue(u, last, rise, h float64) float64 {
	delta := u - last
	if delta > 0 {
		delta = min(delta, max(0, rise))
	}
	return max(0, u+max(-delta/2, h*delta))
}

// SetRecent gives the next Predict (only that one: Predict clears the
// levels) each workload series' level at the end of the interval just
// observed (intake.recent); a key not in recent has none.
func (f *BankForecaster) SetRecent(recent map[string]Recent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.recent {
		f.recent[i] = Recent{Level: -1}
	}
	for k, r := range recent {
		if i, ok := f.index[k]; ok && validRate(r.Level) && !math.IsNaN(r.Slope) && !math.IsInf(r.Slope, 0) {
			f.recent[i] = r
		}
	}
}

// startValue is the planning value of a workload series that has just
// started: its previous interval carried nothing (or it was unknown until
// this interval while other series were observed), so its interval
// average (last) holds time before the start, and the model has seen one
// value: both plan far below the load that the round's instances must
// carry (docs/reproduction.md, session 6: on the async-start sweep most of
// hybrid's loss was each DC's start). A line through the interval's
// average at its middle and the recent level r at its end rises
// 2(r − last) per interval, which assumes the ramp spans the interval; a
// ramp from 0 that began a fraction a of the interval before its end
// averages r·a/2, so it rises r/a = r²/(2·last) per interval, faster when
// it began late (a DC that starts 5–15 s before the round: the line planned
// less than a fifth of what the next interval carried). The larger of the
// two slopes is taken, capped by the rise the recent reports show
// themselves (Recent.Slope, when they are enough): a step to L in the
// interval's last seconds (flat recent reports) would plan
// r + (2h + 1)(r − last) ≈ 3.9 L for h = 1.1 by the line, and more by the
// ramp; capped, it plans L (docs/reproduction.md, "Session 7: round
// sizing"). A ramp's own reports rise as fast as it does, so the cap
// leaves it. Over the next interval and the horizon h after its middle the
// plan covers r + (h + ½)·slope; base (horizonValue) is kept when larger.
func startValue(base, last float64, rc Recent, h float64) float64 {
	if rc.Level <= last {
		return base
	}
	slope := 2 * (rc.Level - last)
	if rc.SlopeOK {
		if last > 0 {
			// a ramp from 0 that began a fraction a of the interval before
			// its end averages r·a/2: a = 2·last/r, slope r/a
			slope = max(slope, rc.Level*rc.Level/(2*last))
		}
		slope = min(slope, max(0, rc.Slope))
	}
	return max(base, rc.Level+slope*(h+0.5))
}

// fallValue is the planning value of a falling workload series: when the
// model's forecast u and the recent level r are both below the last
// interval's average, the load the next interval must carry is largest at
// its start, which is now: the measured r instead of the model's estimate
// of it (base = û − Δ/2, horizonValue), never below u (docs/reproduction.md,
// session 6: 0.1–0.8 % fewer VM-seconds on the section-6 sweep, no loss
// ratio changed).
func fallValue(base, u, last, r float64) float64 {
	if r >= last || u >= last {
		return base
	}
	return min(base, max(u, r))
}

// RecentWeight is how far recentValue moves a running series' plan from
// the model's trajectory towards the recent line when that line is lower:
// ½, the two estimates averaged (docs/reproduction.md, "Session 7: round
// sizing": weight 1 loses more than half of reactive-only's packets on
// three section-6 experiments, ¾ on one, ½ on none).
const RecentWeight = 0.5

// recentValue is the planning value of a running workload series whose
// recent level r says the load rises less than the model's trajectory
// base (horizonValue, fallValue): the line through the interval's average
// (last) at its middle and r at its end, carried over the next interval
// and the horizon h like startValue's, r + (2h + 1)(r − last), never below
// the load now (r) or the interval's average, is the recent estimate;
// the plan moves RecentWeight of the way from base down to it. A model's
// trend outlives the turn of a ramp and the end of a start's ramp (calls
// that began in a burst stop adding load once the first of them end): on
// simultaneous 20 s the round at the peak planned 227 385 pkt/s for
// 174 400 at most, on the async starts the round after a DC's start 1.4 ×
// what the next interval carried (docs/reproduction.md, "Session 7: round
// sizing"). Never raises base.
func recentValue(base, last float64, rc Recent, h float64) float64 {
	r := rc.Level
	line := max(r+(2*h+1)*(r-last), r, last)
	if line >= base {
		return base
	}
	return base - RecentWeight*(base-line)
}

// Observe implements Forecaster.
func (f *BankForecaster) Observe(avg map[string]float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	keys := slices.Sorted(maps.Keys(avg))
	for _, k := range keys {
		if _, ok := f.index[k]; ok {
			continue
		}
		f.index[k] = len(f.trend)
		kind, _, _, ok := ParseSeriesKey(k)
		f.trend = append(f.trend, ok && kind != KindDelay)
		f.last, f.rise = append(f.last, 0), append(f.rise, 0)
		f.vals, f.seen, f.out = append(f.vals, 0), append(f.seen, false), append(f.out, 0)
		f.recent = append(f.recent, Recent{Level: -1})
		f.started = append(f.started, false)
	}
	if grow := len(f.trend) - f.bank.Len(); grow > 0 {
		if err := f.bank.Grow(grow); err != nil {
			return err
		}
	}
	clear(f.seen)
	for _, k := range keys {
		i, x := f.index[k], avg[k]
		if err := predictor.CheckValue(x); err != nil {
			errs = append(errs, fmt.Errorf("series %s: %w", k, err))
			continue
		}
		f.vals[i], f.seen[i] = x, true
	}
	if err := f.bank.ObserveSome(f.vals, f.seen); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i, s := range f.seen {
		if s {
			if f.bank.Observed(i) > 1 {
				f.rise[i] = f.vals[i] - f.last[i]
				f.started[i] = f.last[i] == 0
			} else {
				// a series no earlier round named carried nothing then
				f.started[i] = f.rounds > 0
			}
			f.last[i] = f.vals[i]
		}
	}
	f.rounds++
	return errors.Join(errs...)
}

// Predict implements Forecaster.
func (f *BankForecaster) Predict(keys []string) map[string]Forecast {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Forecast, len(keys))
	if err := f.bank.Predict(f.out); err != nil {
		panic(err) // cannot happen: out has the bank's length
	}
	for _, k := range keys {
		i, ok := f.index[k]
		if !ok {
			out[k] = Forecast{}
			continue
		}
		u, d := f.out[i], f.bank.Detail(i)
		fc := Forecast{Value: u, Mean: max(0, u-d.Margin), Margin: d.Margin, Model: d.Model}
		if f.horizon > 0 && f.trend[i] {
			fc.Value, fc.Rule = horizonValue(u, f.last[i], f.rise[i], f.horizon), RuleHorizon
			if rc := f.recent[i]; rc.Level >= 0 && f.started[i] {
				fc.Value, fc.Rule = changed(fc.Value, startValue(fc.Value, f.last[i], rc, f.horizon), RuleStart, fc.Rule)
			} else if rc.Level >= 0 {
				fc.Value, fc.Rule = changed(fc.Value, fallValue(fc.Value, u, f.last[i], rc.Level), RuleFall, fc.Rule)
				fc.Value, fc.Rule = changed(fc.Value, recentValue(fc.Value, f.last[i], rc, f.horizon), RuleRecent, fc.Rule)
			}
		}
		out[k] = fc
	}
	for i := range f.recent {
		f.recent[i] = Recent{Level: -1} // one Predict's: the next one needs a fresh SetRecent
	}
	return out
}

// changed returns (v, rule) when the rule changed the value from old, else
// (old, oldRule).
func changed(old, v float64, rule, oldRule string) (float64, string) {
	if v != old {
		return v, rule
	}
	return old, oldRule
}

// Explain tells how series key's next forecast is made (predictor.Bank.Explain).
func (f *BankForecaster) Explain(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.index[key]
	if !ok {
		return "no series " + key
	}
	return f.bank.Explain(i)
}
