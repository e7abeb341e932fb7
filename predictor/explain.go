package predictor

import (
	"fmt"
	"strconv"
)

// Explainer is implemented by every model of this package: Explain tells,
// in one line, how the next prediction is made (for the controller's
// "which prediction, why" logs).
type Explainer interface {
	Explain() string
}

func g(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

// Explain implements Explainer.
func (m *AR1) Explain() string {
	if m.n == 0 {
		return "ar1: no history → 0"
	}
	mu, phi := m.Params()
	return fmt.Sprintf("ar1: μ=%s (last %d) φ=%s u_t=%s → %s", g(mu), m.n, g(phi), g(m.buf[(m.head-1+m.w)%m.w]), g(m.Predict()))
}

// Explain implements Explainer.
func (m *ARp) Explain() string {
	if m.order == 0 {
		return fmt.Sprintf("arp: %d values, no fitted order (last value or constant) → %s", m.n, g(m.Predict()))
	}
	return fmt.Sprintf("arp: p=%d fitted on %d values → %s", m.order, m.n, g(m.Predict()))
}

// Explain implements Explainer.
func (m *Holt) Explain() string {
	return fmt.Sprintf("holt: level=%s trend=%s α=%s β=%s damp=%s → %s", g(m.level), g(m.trend), g(m.alpha), g(m.beta), g(m.damp), g(m.Predict()))
}

// Explain implements Explainer.
func (m *HoltWinters) Explain() string {
	if m.n < m.season {
		return fmt.Sprintf("holt-winters: first season (%d/%d), %s", m.n, m.season, m.warm.Explain())
	}
	return fmt.Sprintf("holt-winters: level=%s trend=%s season[%d]=%s → %s", g(m.level), g(m.trend), m.n%m.season, g(m.s[m.n%m.season]), g(m.Predict()))
}

// Explain implements Explainer.
func (a *Analog) Explain() string {
	if a.n == 0 {
		return "analog: no history → 0"
	}
	used, step := a.Fit()
	if used == 0 {
		return fmt.Sprintf("analog: %d values, no complete pattern of m=%d yet → last %s", a.n, a.m, g(a.Predict()))
	}
	x := a.window()
	return fmt.Sprintf("analog: %d nearest of %d patterns (m=%d), mean next step %s, u_t=%s → %s",
		used, a.n-a.m, a.m, g(step), g(x[len(x)-1]), g(a.Predict()))
}

// Explain implements Explainer.
func (m *Kalman) Explain() string {
	if m.n == 0 {
		return "kalman: no history → 0"
	}
	q, level, trend := m.Filter()
	return fmt.Sprintf("kalman: filter q=%s of %d (highest discounted likelihood), level=%s trend=%s after %d values → %s",
		g(q), kalmanFilters, g(level-trend), g(trend), m.n, g(m.Predict()))
}

// Explain implements Explainer.
func (m *Last) Explain() string { return "last: " + g(m.last) }

// Explain implements Explainer.
func (m *Margin) Explain() string {
	base := m.base.Name()
	if e, ok := m.base.(Explainer); ok {
		base = e.Explain()
	}
	return fmt.Sprintf("%s; +q%s margin %s over %d residuals → %s", base, g(100*m.q), g(m.Offset()), m.n, g(m.Predict()))
}

// Explain tells how the next prediction of series i is made.
func (b *Bank) Explain(i int) string {
	if i < 0 || i >= b.n {
		return fmt.Sprintf("bank %s: no series %d", b.name, i)
	}
	if b.models != nil {
		return b.models[i].(Explainer).Explain()
	}
	if mg := b.margin; mg != nil {
		out := make([]float64, b.n)
		_ = b.Predict(out)
		return fmt.Sprintf("%s; +q%s margin %s over %d residuals → %s", mg.base.Explain(i), g(100*mg.q), g(mg.offset(i)), mg.held(i), g(out[i]))
	}
	c := b.cnt[i]
	switch b.kind {
	case KindAR1:
		m := &AR1{w: b.w, phiMax: b.phiMax, buf: make([]float64, b.w), n: min(c, b.w)}
		m.head = copy(m.buf, b.window(i, make([]float64, b.w))) % b.w
		return m.Explain()
	case KindAnalog:
		m := newAnalog(b.m, b.k, b.w, b.name)
		m.n = min(c, b.w)
		m.head = copy(m.buf, b.window(i, make([]float64, b.w))) % b.w
		return m.Explain()
	case KindKalman:
		m := newKalman(b.count1, b.forget, b.name)
		copy(m.st[:], b.buf[i*kalmanStateLen:(i+1)*kalmanStateLen])
		m.n = c
		return m.Explain()
	case KindHolt:
		m := &Holt{alpha: b.alpha, beta: b.beta, damp: b.damp, level: b.level[i], trend: b.trend[i], n: c}
		return m.Explain()
	case KindAuto:
		a := b.auto
		if c == 0 {
			return "auto: no history → 0"
		}
		_ = a.predictCands()
		ch := a.chosen[i]
		nc := len(a.cands)
		p := a.pred[ch][i]
		s := fmt.Sprintf("auto: %s (least |error| over the last %d steps: %s) → %s", AutoCandidates[ch], min(c-1, a.win), g(a.sum[i*nc+int(ch)]), g(p))
		if q := max(p, a.guard*a.last[i]); q > p {
			s += fmt.Sprintf("; collapse guard %s×last %s → %s", g(a.guard), g(a.last[i]), g(q))
		}
		return s
	default:
		return "last: " + g(b.level[i])
	}
}

var (
	_ Explainer = (*AR1)(nil)
	_ Explainer = (*ARp)(nil)
	_ Explainer = (*Holt)(nil)
	_ Explainer = (*HoltWinters)(nil)
	_ Explainer = (*Last)(nil)
	_ Explainer = (*Analog)(nil)
	_ Explainer = (*Kalman)(nil)
	_ Explainer = (*Margin)(nil)
)
