package predictor

import "fmt"

// Auto selects a model per series online: it runs a fixed set of candidate
// models side by side on the same series and predicts with the one whose
// one-step forecasts had the least absolute error over the last win steps
// (a rolling walk-forward backtest, the same measure as `predict backtest`,
// recomputed after every observation). Ties and the first steps (fewer than
// 3 scored forecasts) go to AR(1), the paper's model, so Auto starts as
// Eq. (1) and leaves it only on evidence.
//
// Collapse guard: a trend model extrapolates the fall at the end of a spike
// or the start of an outage below zero, and a planner then scales
// everything in. Auto never predicts less than guard × the last observed
// value (guard ∈ [0, 1], 0.5 by default): a real outage (last value 0)
// still predicts 0, the interval after a spike predicts at least half the
// level it fell to.
//
// Candidates, in tie order: ar1, last, holt, kalman (Poisson noise at the
// paper's 50 s intervals), kalman:count=0 (scale-free: noise estimated from
// the series itself, so a series of packets/s and one of users/s get the
// same gains).
type Auto struct {
	name   string
	cands  []Model
	err    [][]float64 // per candidate: ring of the last win absolute errors
	sum    []float64
	head   int
	n      int
	last   float64
	seen   bool
	guard  float64
	chosen int
}

// AutoCandidates are the specs Auto chooses from, in tie order.
var AutoCandidates = []string{"ar1", "last", "holt", "kalman", "kalman:count=0"}

func newAuto(win int, guard float64, name string) *Auto {
	a := &Auto{name: name, guard: guard, err: make([][]float64, len(AutoCandidates)), sum: make([]float64, len(AutoCandidates))}
	for i, s := range AutoCandidates {
		m, err := New(s)
		if err != nil {
			panic(fmt.Sprintf("predictor: auto candidate %q: %v", s, err)) // fixed specs; a test builds them
		}
		a.cands = append(a.cands, m)
		a.err[i] = make([]float64, win)
	}
	return a
}

// Name implements Model.
func (a *Auto) Name() string { return a.name }

// Observe implements Model: scores every candidate's forecast of x, then
// feeds x to all of them and re-selects.
func (a *Auto) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	w := len(a.err[0])
	for i, m := range a.cands {
		if a.seen {
			e := x - m.Predict()
			if e < 0 {
				e = -e
			}
			a.sum[i] += e - a.err[i][a.head]
			a.err[i][a.head] = e
		}
	}
	if a.seen {
		a.head = (a.head + 1) % w
		a.n = min(a.n+1, w)
	}
	for _, m := range a.cands {
		if err := m.Observe(x); err != nil {
			return err // cannot happen: x passed CheckValue
		}
	}
	a.last, a.seen = x, true
	a.chosen = 0
	if a.n >= 3 {
		for i := range a.cands {
			// a relative tolerance keeps float drift in the running sums
			// from switching between equally good candidates
			if a.sum[i] < a.sum[a.chosen]*(1-1e-9) {
				a.chosen = i
			}
		}
	}
	return nil
}

// Predict implements Model.
func (a *Auto) Predict() float64 {
	if !a.seen {
		return 0
	}
	return max(a.cands[a.chosen].Predict(), a.guard*a.last)
}

// Chosen returns the spec of the candidate in use.
func (a *Auto) Chosen() string { return AutoCandidates[a.chosen] }

// Explain implements Explainer.
func (a *Auto) Explain() string {
	if !a.seen {
		return "auto: no history → 0"
	}
	p := a.cands[a.chosen].Predict()
	s := fmt.Sprintf("auto: %s (least |error| over the last %d steps: %s) → %s", AutoCandidates[a.chosen], a.n, g(a.sum[a.chosen]), g(p))
	if q := a.Predict(); q > p {
		s += fmt.Sprintf("; collapse guard %s×last %s → %s", g(a.guard), g(a.last), g(q))
	}
	return s
}
