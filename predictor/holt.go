package predictor

import "math"

// Holt is Holt's linear-trend exponential smoothing, optionally damped:
//
//	ℓ_t = α·u_t + (1−α)·(ℓ_{t−1} + δ·b_{t−1})
//	b_t = β·(ℓ_t − ℓ_{t−1}) + (1−β)·δ·b_{t−1}
//	û(t+1) = ℓ_t + δ·b_t
//
// with δ = damp (1 = undamped). Initialisation: ℓ_1 = u_1, b_1 = 0; the
// second observation sets b_2 = u_2 − u_1, ℓ_2 = u_2. State: two numbers.
//
// With fit = H > 0, α and β are not fixed: after every observation they are
// re-chosen from the grid α ∈ {0.1, 0.2, …, 0.9} × β ∈ {0, 0.05, 0.1, 0.2,
// 0.3, 0.5} as the pair with the least sum of squared one-step errors over
// the last H observations (Holt restarted at the window's first value), and
// the state is that pair's state at the end of the window. State: H values.
type Holt struct {
	alpha, beta, damp float64
	level, trend      float64
	n                 int
	name              string

	fit     int       // window of the parameter fit, 0 = fixed α, β
	buf     []float64 // ring of the last fit values
	head    int
	held    int
	scratch []float64
}

func newHolt(alpha, beta, damp float64, fit int, name string) *Holt {
	m := &Holt{alpha: alpha, beta: beta, damp: damp, name: name, fit: fit}
	if fit > 0 {
		m.buf, m.scratch = make([]float64, fit), make([]float64, fit)
	}
	return m
}

var (
	holtAlphaGrid = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	holtBetaGrid  = []float64{0, 0.05, 0.1, 0.2, 0.3, 0.5}
)

// refit re-chooses α, β over the held window and sets the state.
func (m *Holt) refit() {
	x := m.scratch[:m.held]
	start := (m.head - m.held + m.fit) % m.fit
	for k := range x {
		x[k] = m.buf[(start+k)%m.fit]
	}
	run := func(a, b float64) (level, trend, sse float64) {
		for k, v := range x {
			if k >= 2 {
				d := v - (level + m.damp*trend)
				sse += d * d
			}
			level, trend = holtStep(level, trend, v, k, a, b, m.damp)
		}
		return level, trend, sse
	}
	best := math.Inf(1)
	for _, a := range holtAlphaGrid {
		for _, b := range holtBetaGrid {
			if l, t, sse := run(a, b); sse < best {
				best, m.alpha, m.beta, m.level, m.trend = sse, a, b, l, t
			}
		}
	}
}

// Name implements Model.
func (m *Holt) Name() string { return m.name }

// Observe implements Model.
func (m *Holt) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	m.level, m.trend = holtStep(m.level, m.trend, x, m.n, m.alpha, m.beta, m.damp)
	m.n++
	if m.fit > 0 {
		m.buf[m.head] = x
		m.head = (m.head + 1) % m.fit
		m.held = min(m.held+1, m.fit)
		if m.held >= 4 {
			m.refit()
		}
	}
	return nil
}

// holtStep is one Holt update given the state after n observations.
func holtStep(level, trend, x float64, n int, alpha, beta, damp float64) (float64, float64) {
	switch n {
	case 0:
		return x, 0
	case 1:
		return x, x - level
	}
	t0 := damp * trend
	l := alpha*x + (1-alpha)*(level+t0)
	return l, beta*(l-level) + (1-beta)*t0
}

// Predict implements Model.
func (m *Holt) Predict() float64 {
	if m.n == 0 {
		return 0
	}
	return nonNeg(m.level + m.damp*m.trend)
}

// Components returns the level, the trend and the α, β in use (for
// explaining a decision).
func (m *Holt) Components() (level, trend, alpha, beta float64) {
	return m.level, m.trend, m.alpha, m.beta
}

// HoltWinters is additive Holt-Winters with a season of m intervals:
//
//	ℓ_t = α·(u_t − s_{t−m}) + (1−α)·(ℓ_{t−1} + b_{t−1})
//	b_t = β·(ℓ_t − ℓ_{t−1}) + (1−β)·b_{t−1}
//	s_t = γ·(u_t − ℓ_t) + (1−γ)·s_{t−m}
//	û(t+1) = ℓ_t + b_t + s_{t+1−m}
//
// Initialisation: during the first season it predicts with an undamped Holt
// model of the same α, β; after m observations ℓ = mean of the first season,
// b = 0 and s_i = u_i − ℓ. State: m + 2 numbers plus the warm-up Holt.
type HoltWinters struct {
	season             int
	alpha, beta, gamma float64
	level, trend       float64
	s                  []float64 // seasonal index by t mod season; raw values in the first season
	n                  int
	warm               Holt
	name               string
}

func newHoltWinters(season int, alpha, beta, gamma float64, name string) *HoltWinters {
	return &HoltWinters{season: season, alpha: alpha, beta: beta, gamma: gamma,
		s: make([]float64, season), warm: Holt{alpha: alpha, beta: beta, damp: 1}, name: name}
}

// Name implements Model.
func (m *HoltWinters) Name() string { return m.name }

// Observe implements Model.
func (m *HoltWinters) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	i := m.n % m.season
	switch {
	case m.n < m.season:
		_ = m.warm.Observe(x)
		m.s[i] = x
		if m.n == m.season-1 {
			sum := 0.0
			for _, v := range m.s {
				sum += v
			}
			m.level, m.trend = sum/float64(m.season), 0
			for k := range m.s {
				m.s[k] -= m.level
			}
		}
	default:
		prev := m.level
		m.level = m.alpha*(x-m.s[i]) + (1-m.alpha)*(prev+m.trend)
		m.trend = m.beta*(m.level-prev) + (1-m.beta)*m.trend
		m.s[i] = m.gamma*(x-m.level) + (1-m.gamma)*m.s[i]
	}
	m.n++
	return nil
}

// Predict implements Model.
func (m *HoltWinters) Predict() float64 {
	if m.n < m.season {
		return m.warm.Predict()
	}
	return nonNeg(m.level + m.trend + m.s[m.n%m.season])
}
