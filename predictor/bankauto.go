package predictor

import "fmt"

// bankAuto is the flat form of Auto: one flat bank per candidate, and per
// series a ring of each candidate's last win absolute errors (series-major,
// the candidates of one slot side by side: err[(i*win+slot)*nc+c], so one
// observation writes one cache line), their running sums, the last value
// and the candidate in use. It gives exactly Auto's predictions.
type bankAuto struct {
	cands  []*Bank
	win    int
	guard  float64
	err    []float64
	sum    []float64 // sum[i*nc+c]
	last   []float64
	chosen []uint8
	pred   [][]float64 // per candidate: its forecasts of the current state (when cached)
	cached bool
}

func newBankAuto(win int, guard float64, n int) (*bankAuto, error) {
	a := &bankAuto{win: win, guard: guard}
	for _, spec := range AutoCandidates {
		b, err := NewBank(spec, n)
		if err != nil {
			return nil, fmt.Errorf("predictor: auto candidate %q: %w", spec, err)
		}
		a.cands = append(a.cands, b)
		a.pred = append(a.pred, make([]float64, n))
	}
	nc := len(a.cands)
	a.err, a.sum = make([]float64, n*nc*win), make([]float64, n*nc)
	a.last, a.chosen = make([]float64, n), make([]uint8, n)
	return a, nil
}

func (a *bankAuto) grow(k int) error {
	nc := len(a.cands)
	a.err, a.sum = grow(a.err, k*nc*a.win), grow(a.sum, k*nc)
	a.last, a.chosen = grow(a.last, k), grow(a.chosen, k)
	for c, b := range a.cands {
		if err := b.Grow(k); err != nil {
			return err
		}
		a.pred[c] = grow(a.pred[c], k)
	}
	a.cached = false
	return nil
}

func (a *bankAuto) bytesPerSeries() int {
	s := 0
	for _, b := range a.cands {
		s += b.BytesPerSeries()
	}
	nc := len(a.cands)
	return s + 8*(nc*a.win+nc+1) + 1
}

// predictCands fills pred with every candidate's forecasts.
func (a *bankAuto) predictCands() error {
	if a.cached {
		return nil
	}
	for c, b := range a.cands {
		if err := b.Predict(a.pred[c]); err != nil {
			return err
		}
	}
	a.cached = true
	return nil
}

// observe scores every candidate's forecast of the observed series, feeds
// the value to all candidates and re-selects (Auto.Observe).
func (a *bankAuto) observe(values []float64, seen []bool) error {
	if err := a.predictCands(); err != nil {
		return err
	}
	nc, w := len(a.cands), a.win
	cnt := a.cands[0].cnt // every candidate has seen what the series has seen
	parallel(len(values), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if seen != nil && !seen[i] {
				continue
			}
			x, c0 := values[i], cnt[i]
			sum := a.sum[i*nc : (i+1)*nc]
			if c0 > 0 {
				r := a.err[(i*w+(c0-1)%w)*nc : (i*w+(c0-1)%w+1)*nc]
				for c := range r {
					e := x - a.pred[c][i]
					if e < 0 {
						e = -e
					}
					sum[c] += e - r[c]
					r[c] = e
				}
			}
			a.last[i] = x
			best := 0
			if min(c0, w) >= 3 {
				for c := range nc {
					// the relative tolerance of Auto.Observe
					if sum[c] < sum[best]*(1-1e-9) {
						best = c
					}
				}
			}
			a.chosen[i] = uint8(best)
		}
	})
	a.cached = false
	for _, b := range a.cands {
		if err := b.observe(values, seen); err != nil {
			return err
		}
	}
	return nil
}

// predict is the chosen candidate's forecast, never below guard × the last value.
func (a *bankAuto) predict(out []float64) error {
	if err := a.predictCands(); err != nil {
		return err
	}
	cnt := a.cands[0].cnt
	for i := range out {
		if cnt[i] == 0 {
			out[i] = 0
			continue
		}
		out[i] = max(a.pred[a.chosen[i]][i], a.guard*a.last[i])
	}
	return nil
}
