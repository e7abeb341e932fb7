package predictor

import (
	"fmt"
	"math"
)

// Result holds the walk-forward accuracy of one model on one series.
type Result struct {
	Model string `json:"model"`
	// Points is the number of predictions scored (after the warm-up).
	Points int `json:"points"`
	// MAPE is the mean of |u − û| / u in percent over the scored points
	// with u > 0 (MAPEPoints of them); NaN when there are none.
	MAPE       float64 `json:"mape_pct"`
	MAPEPoints int     `json:"mape_points"`
	// RMSE is the root mean squared error, in the trace's unit.
	RMSE float64 `json:"rmse"`
	// UnderRate is the share of scored points with û < u, in percent: the
	// intervals in which proactive scaling alone would have provisioned too
	// little.
	UnderRate float64 `json:"under_pct"`
	// Shortfall is Σ max(0, u − û) / Σ u in percent: the share of the
	// workload above the prediction.
	Shortfall float64 `json:"shortfall_pct"`
	// Coverage is the share of scored points with u ≤ û, in percent: for a
	// quantile forecast ("+q90") the empirical coverage to compare with its
	// nominal level (Nominal); 100 − UnderRate.
	Coverage float64 `json:"coverage_pct"`
	// Nominal is the percentile a "+qNN" model claims to forecast (0 for a
	// point forecast).
	Nominal float64 `json:"nominal_pct,omitempty"`
}

// Backtest replays xs walk-forward through a fresh model of spec: at each
// step t it predicts u_t from u_0..u_{t−1}, then observes u_t. Predictions
// for t < warmup are not scored. It fails on an invalid spec, a negative
// warm-up, an invalid value (naming its index) or when nothing is scored.
func Backtest(spec string, xs []float64, warmup int) (Result, error) {
	m, err := New(spec)
	if err != nil {
		return Result{}, err
	}
	return BacktestModel(m, xs, warmup)
}

// BacktestModel is Backtest with a model the caller built (it must have no
// history).
func BacktestModel(m Model, xs []float64, warmup int) (Result, error) {
	if warmup < 0 {
		return Result{}, fmt.Errorf("predictor: backtest warm-up %d: must be ≥ 0", warmup)
	}
	if len(xs) <= warmup {
		return Result{}, fmt.Errorf("predictor: backtest: %d values leave nothing to score after a warm-up of %d", len(xs), warmup)
	}
	r := Result{Model: m.Name()}
	var ape, se, short, total float64
	under := 0
	for t, u := range xs {
		p := m.Predict()
		if err := m.Observe(u); err != nil {
			return Result{}, fmt.Errorf("predictor: backtest: value %d: %w", t, err)
		}
		if t < warmup {
			continue
		}
		r.Points++
		d := u - p
		se += d * d
		total += u
		if d > 0 {
			under++
			short += d
		}
		if u > 0 {
			ape += math.Abs(d) / u
			r.MAPEPoints++
		}
	}
	r.MAPE = math.NaN()
	if r.MAPEPoints > 0 {
		r.MAPE = 100 * ape / float64(r.MAPEPoints)
	}
	r.RMSE = math.Sqrt(se / float64(r.Points))
	r.UnderRate = 100 * float64(under) / float64(r.Points)
	r.Coverage = 100 - r.UnderRate
	if mg, ok := m.(*Margin); ok {
		r.Nominal = 100 * mg.q
	}
	if total > 0 {
		r.Shortfall = 100 * short / total
	}
	return r, nil
}

// Compare backtests every spec on xs. It stops at the first error.
func Compare(specs []string, xs []float64, warmup int) ([]Result, error) {
	out := make([]Result, 0, len(specs))
	for _, s := range specs {
		r, err := Backtest(s, xs, warmup)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
