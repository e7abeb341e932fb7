package predictor

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// ARp is an autoregressive model of order p with intercept,
//
//	û(t+1) = c + a_1·u_t + a_2·u_{t−1} + … + a_p·u_{t−p+1}
//
// refitted after every observation by conditional least squares over the
// last win values (normal equations of the centred values, Cholesky, gonum). The order p ∈ [1, P] minimises
//
//	AIC = N·ln(RSS_p/N) + 2(p+1)    or    BIC = N·ln(RSS_p/N) + (p+1)·ln N
//
// where every order is fitted on the same N = n − P targets, so the criteria
// compare like with like; P = min(maxp, ⌊(n−3)/2⌋) keeps at least P+3 targets
// for P+1 coefficients. With p ≥ 2 and the intercept the model can follow a
// linear trend (u_{t+1} = 2u_t − u_{t−1}), which AR(1) around a window mean
// cannot. Edge cases: no observation → 0; a constant window → that constant;
// fewer than 5 values or no order that fits (singular design) → the last
// value.
type ARp struct {
	maxp, win int
	bic       bool
	buf       []float64 // ring of the last win values
	head, n   int
	pred      float64 // prediction computed by the last Observe
	order     int     // chosen p of pred, 0 when pred fell back
	name      string
	x         []float64 // scratch: window, oldest first
}

func newARp(maxp, win int, ic, name string) *ARp {
	return &ARp{maxp: maxp, win: win, bic: ic == "bic", buf: make([]float64, win),
		x: make([]float64, win), name: name}
}

// Name implements Model.
func (m *ARp) Name() string { return m.name }

// Order returns the order chosen for the current prediction (0 if the model
// fell back to the last value or a constant).
func (m *ARp) Order() int { return m.order }

// Observe implements Model.
func (m *ARp) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	m.buf[m.head] = x
	m.head = (m.head + 1) % m.win
	if m.n < m.win {
		m.n++
	}
	w := m.x[:m.n]
	start := (m.head - m.n + m.win) % m.win
	for k := range w {
		w[k] = m.buf[(start+k)%m.win]
	}
	m.pred, m.order = arpFit(w, m.maxp, m.bic)
	return nil
}

// Predict implements Model.
func (m *ARp) Predict() float64 { return nonNeg(m.pred) }

// arpFit returns the one-step prediction after x (oldest first) and the
// chosen order (0 for a fallback). The values are centred on their mean
// before fitting (the intercept absorbs it), the normal equations of every
// order are leading blocks of one Gram matrix, each is solved by Cholesky
// (gonum) and its RSS is summed from the residuals themselves.
func arpFit(x []float64, maxp int, bic bool) (float64, int) {
	n := len(x)
	if n == 0 {
		return 0, 0
	}
	last := x[n-1]
	mean := 0.0
	constant := true
	for _, v := range x {
		mean += v
		constant = constant && v == last
	}
	P := min(maxp, (n-3)/2)
	if constant || P < 1 {
		return last, 0
	}
	mean /= float64(n)
	z := make([]float64, n)
	for i, v := range x {
		z[i] = v - mean
	}
	rows, k := n-P, P+1
	// features of target t: f[0] = 1, f[j] = z[t−j].
	g := make([]float64, k*k) // upper triangle, row-major
	xy := make([]float64, k)
	f := make([]float64, k)
	f[0] = 1
	for t := P; t < n; t++ {
		for j := 1; j < k; j++ {
			f[j] = z[t-j]
		}
		for i, fi := range f {
			xy[i] += fi * z[t]
			row := g[i*k : (i+1)*k]
			for j := i; j < k; j++ {
				row[j] += fi * f[j]
			}
		}
	}
	G := mat.NewSymDense(k, g)
	var yy float64
	for t := P; t < n; t++ {
		yy += z[t] * z[t]
	}
	floor := 1e-20 * (yy + 1e-300)
	bestIC, bestPred, bestP := math.Inf(1), last, 0
	var chol mat.Cholesky
	for p := 1; p <= P; p++ {
		sub := G.SliceSym(0, p+1).(*mat.SymDense)
		if !chol.Factorize(sub) || chol.Cond() > 1e12 {
			continue // singular or ill-conditioned design: skip this order
		}
		var beta mat.VecDense
		if err := chol.SolveVecTo(&beta, mat.NewVecDense(p+1, append([]float64(nil), xy[:p+1]...))); err != nil {
			continue
		}
		rss := 0.0
		for t := P; t < n; t++ {
			d := z[t] - beta.AtVec(0)
			for i := 1; i <= p; i++ {
				d -= beta.AtVec(i) * z[t-i]
			}
			rss += d * d
		}
		N := float64(rows)
		ic := N * math.Log(max(rss, floor)/N)
		if bic {
			ic += float64(p+1) * math.Log(N)
		} else {
			ic += 2 * float64(p+1)
		}
		if ic < bestIC {
			pred := mean + beta.AtVec(0)
			for i := 1; i <= p; i++ {
				pred += beta.AtVec(i) * z[n-i]
			}
			if math.IsNaN(pred) || math.IsInf(pred, 0) {
				continue
			}
			bestIC, bestPred, bestP = ic, pred, p
		}
	}
	return bestPred, bestP
}
