package predictor

// bankMargin is the flat form of a "+qNN" margin over a flat bank: the
// base bank's forecasts plus, per series, the split-conformal quantile of
// its last win one-step residuals (exactly Margin's prediction). Residual
// rings are series-major (res[i*win+slot]; series i's r-th residual goes to
// slot r mod win, so while a ring fills its first slots hold the
// residuals); the quantile is found by selection (average O(win)) instead
// of a sort, and the round is split over goroutines like the analog and
// Kalman banks.
type bankMargin struct {
	base    *Bank
	q       float64
	win     int
	res     []float64
	scratch []float64 // base forecasts before an observation
	off     []float64 // the margins of the last predict
	cached  bool      // scratch holds the base forecasts of the current state
}

func newBankMargin(base *Bank, q float64, win int) *bankMargin {
	return &bankMargin{base: base, q: q, win: win, res: make([]float64, win*base.n), scratch: make([]float64, base.n), off: make([]float64, base.n)}
}

func (m *bankMargin) grow(k int) error {
	m.res, m.scratch, m.off = grow(m.res, k*m.win), grow(m.scratch, k), grow(m.off, k)
	m.cached = false
	return m.base.Grow(k)
}

// held is the number of residuals series i holds: one per observation after its first, at most win.
func (m *bankMargin) held(i int) int {
	return min(max(m.base.cnt[i]-1, 0), m.win)
}

// observe records the residuals of the base forecasts, then feeds the base.
func (m *bankMargin) observe(values []float64, seen []bool) error {
	if m.base.count > 0 {
		if !m.cached {
			if err := m.base.Predict(m.scratch); err != nil {
				return err
			}
		}
		w, cnt := m.win, m.base.cnt
		parallel(len(values), func(lo, hi int) { // one cache line per series: split over the cores
			for i := lo; i < hi; i++ {
				if (seen == nil || seen[i]) && cnt[i] > 0 {
					m.res[i*w+(cnt[i]-1)%w] = values[i] - m.scratch[i]
				}
			}
		})
	}
	m.cached = false
	return m.base.observe(values, seen)
}

func (m *bankMargin) predict(out []float64) error {
	if err := m.base.Predict(out); err != nil {
		return err
	}
	copy(m.scratch, out) // the next observe scores these
	m.cached = true
	w := m.win
	parallel(len(out), func(lo, hi int) {
		x := make([]float64, w)
		for i := lo; i < hi; i++ {
			m.off[i] = 0
			n := m.held(i)
			if n < 2 {
				continue
			}
			x := x[:n]
			copy(x, m.res[i*w:i*w+n])                                           // the first n slots hold the residuals while the ring fills, all w after
			if off := selectK(x, min(max(1, ceilRank(n, m.q)), n)-1); off > 0 { // Margin never lowers the base forecast
				m.off[i] = off
				out[i] = nonNeg(out[i] + off)
			}
		}
	})
	return nil
}

// offset is series i's margin (Margin.Offset) in the current state.
func (m *bankMargin) offset(i int) float64 {
	n := m.held(i)
	if n < 2 {
		return 0
	}
	x := append([]float64(nil), m.res[i*m.win:i*m.win+n]...)
	return max(0, selectK(x, min(max(1, ceilRank(n, m.q)), n)-1))
}

// selectK returns the k-th smallest (0-based) of x, reordering x
// (Hoare selection with a median-of-three pivot; deterministic).
func selectK(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for hi > lo {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		p := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < p {
				i++
			}
			for x[j] > p {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}
