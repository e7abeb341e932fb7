package predictor

import "math"

// Kalman is a local-linear-trend Kalman filter whose noise variances are set
// online. The series is a level ℓ plus noise, the level moves with a trend b:
//
//	u_t = ℓ_t + ε_t,           ε_t ~ N(0, R_t)
//	ℓ_{t+1} = ℓ_t + b_t,       b_{t+1} = b_t + η_t,   η_t ~ N(0, q·R_t)
//
// Observation noise R_t. With count = T > 0 the values are Poisson counts over
// T seconds divided by T (the traces' users/s over a 50 s interval), whose
// variance is known from the level: R_t = max(ℓ̂_t, 1/T)/T, with ℓ̂_t the
// filter's own prediction of u_t (never u_t itself). With count = 0 the noise
// is taken as constant and estimated online: R_t = max(½·e_t, 10⁻¹²·(1+u²)),
// e_t an exponentially weighted mean (weight 0.1) of the squared first
// differences (Var(u_t − u_{t−1}) = 2R on a flat series).
//
// Process noise q (trend noise per unit of R): unknown and changing (a ramp
// that turns needs a large q, a straight stretch a small one), so six filters
// run side by side with q ∈ {10⁻⁴, 10⁻³, 10⁻², 0.1, 1, 10} and the prediction
// is the one of the filter with the highest discounted likelihood,
//
//	L_f ← λ·L_f + ½·(v_f²/S_f + ln S_f),   v_f = u_t − ℓ̂_f,   S_f = P_f,11 + R_f
//
// (the smallest L_f; ties → the smaller q); λ = forget.
//
// One filter step (prior mean (ℓ̂, b̂) and covariance P for u_t):
//
//	v = u_t − ℓ̂,  S = P₁₁ + R,  K = (P₁₁, P₁₂)/S
//	ℓ = ℓ̂ + K₁v,  b = b̂ + K₂v,  P ← P − K·(P₁₁, P₁₂)
//	ℓ̂' = ℓ + b,   P' = F·P·Fᵀ + diag(0, q·R),  F = [[1, 1], [0, 1]]
//
// Start: the first value sets ℓ̂ = u_0, b̂ = 0; the second sets the exact
// two-point posterior ℓ = u_1, b = u_1 − u_0, P = [[R, R], [R, 2R]]. So the
// filter predicts 0 with no history, u_0 after one value and continues a
// straight line exactly. State: 6 × 6 + 2 numbers.
type Kalman struct {
	count, forget float64
	st            [kalmanStateLen]float64
	n             int
	name          string
}

// kalmanQ is the grid of trend-noise ratios q (per unit of R).
var kalmanQ = [kalmanFilters]float64{1e-4, 1e-3, 1e-2, 0.1, 1, 10}

const (
	kalmanFilters  = 6
	kalmanPerF     = 6 // ℓ̂, b̂, P11, P12, P22, L
	kalmanStateLen = kalmanFilters*kalmanPerF + 2
	kalmanE        = kalmanFilters * kalmanPerF // EWMA of squared differences
	kalmanLast     = kalmanE + 1                // last value
	kalmanEWeight  = 0.1
)

func newKalman(count, forget float64, name string) *Kalman {
	return &Kalman{count: count, forget: forget, name: name}
}

// Name implements Model.
func (m *Kalman) Name() string { return m.name }

// Observe implements Model.
func (m *Kalman) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	kalmanStep(m.st[:], x, m.n, m.count, m.forget)
	m.n++
	return nil
}

// Predict implements Model.
func (m *Kalman) Predict() float64 {
	if m.n == 0 {
		return 0
	}
	return nonNeg(m.st[kalmanBest(m.st[:])*kalmanPerF])
}

// Filter returns the trend-noise ratio q of the filter in use and its level
// and trend predicted for the next interval (for explaining a decision).
func (m *Kalman) Filter() (q, level, trend float64) {
	f := kalmanBest(m.st[:])
	return kalmanQ[f], m.st[f*kalmanPerF], m.st[f*kalmanPerF+1]
}

// kalmanBest returns the filter with the least discounted negative
// log-likelihood (the first on ties).
func kalmanBest(st []float64) int {
	best := 0
	for f := 1; f < kalmanFilters; f++ {
		if st[f*kalmanPerF+5] < st[best*kalmanPerF+5] {
			best = f
		}
	}
	return best
}

// kalmanNoise is R for the prediction ℓ̂ (count > 0) or from the running
// estimate e (count = 0).
func kalmanNoise(st []float64, lhat, count float64) float64 {
	if count > 0 {
		return max(lhat, 1/count) / count
	}
	last := st[kalmanLast]
	return max(0.5*st[kalmanE], 1e-12*(1+last*last))
}

// kalmanStep observes x in the state st of a series that has seen n values.
func kalmanStep(st []float64, x float64, n int, count, forget float64) {
	switch n {
	case 0:
		for f := range kalmanFilters {
			s := st[f*kalmanPerF : (f+1)*kalmanPerF]
			s[0], s[1], s[2], s[3], s[4], s[5] = x, 0, 0, 0, 0, 0
		}
		st[kalmanE], st[kalmanLast] = 0, x
		return
	case 1:
		d := x - st[kalmanLast]
		st[kalmanE] = d * d
		for f := range kalmanFilters {
			s := st[f*kalmanPerF : (f+1)*kalmanPerF]
			r := kalmanNoise(st, s[0], count)
			l, b := x, d
			p11, p12, p22 := r, r, 2*r
			s[0], s[1] = l+b, b
			s[2], s[3], s[4] = p11+2*p12+p22, p12+p22, p22+kalmanQ[f]*r
		}
		st[kalmanLast] = x
		return
	}
	for f := range kalmanFilters {
		s := st[f*kalmanPerF : (f+1)*kalmanPerF]
		r := kalmanNoise(st, s[0], count)
		v := x - s[0]
		S := s[2] + r
		k1, k2 := s[2]/S, s[3]/S
		l, b := s[0]+k1*v, s[1]+k2*v
		p11, p12, p22 := s[2]-k1*s[2], s[3]-k1*s[3], s[4]-k2*s[3]
		s[0], s[1] = l+b, b
		s[2], s[3], s[4] = p11+2*p12+p22, p12+p22, p22+kalmanQ[f]*r
		s[5] = forget*s[5] + 0.5*(v*v/S+math.Log(S))
	}
	d := x - st[kalmanLast]
	st[kalmanE] += kalmanEWeight * (d*d - st[kalmanE])
	st[kalmanLast] = x
}
