package predictor

// AR1 is the paper's predictor, ScalIMS Eq. (1):
//
//	û(t+1) = μ + φ·(u_t − μ)
//
// μ is the mean of the last W observations (all of them while fewer than W
// have been seen) and φ the lag-1 least-squares slope of (u_{k+1} − μ) on
// (u_k − μ) over the same window:
//
//	φ = Σ_{k=1}^{n−1} (u_k − μ)(u_{k+1} − μ) / Σ_{k=1}^{n−1} (u_k − μ)²
//
// clamped to [−φmax, φmax] (φmax < 1). Defined edge cases: no observation →
// 0; fewer than 3 observations → φ = 0 (predict the window mean); a constant
// window → that constant; a zero denominator → φ = 0.
type AR1 struct {
	w      int
	phiMax float64
	buf    []float64 // ring of the last w values
	head   int       // index of the next write
	n      int       // values held, ≤ w
	name   string
}

// Defaults of AR1: the paper's window of 10 intervals.
const (
	DefaultWindow = 10
	DefaultPhiMax = 0.99
)

// NewAR1 returns an AR(1) model over a window of w ≥ 2 intervals with
// |φ| ≤ phiMax, 0 ≤ phiMax < 1.
func NewAR1(w int, phiMax float64) (*AR1, error) {
	s := Spec{Kind: KindAR1, Params: map[string]float64{"w": float64(w), "phimax": phiMax}}
	m, err := s.New()
	if err != nil {
		return nil, err
	}
	return m.(*AR1), nil
}

func newAR1(w int, phiMax float64, name string) *AR1 {
	return &AR1{w: w, phiMax: phiMax, buf: make([]float64, w), name: name}
}

// Name implements Model.
func (m *AR1) Name() string { return m.name }

// Observe implements Model.
func (m *AR1) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	m.buf[m.head] = x
	m.head = (m.head + 1) % m.w
	if m.n < m.w {
		m.n++
	}
	return nil
}

// window copies the held values, oldest first, into dst (len ≥ n).
func (m *AR1) window(dst []float64) []float64 {
	dst = dst[:m.n]
	start := (m.head - m.n + m.w) % m.w
	for k := range m.n {
		dst[k] = m.buf[(start+k)%m.w]
	}
	return dst
}

// Params returns μ and φ of the next prediction (for explaining a decision).
func (m *AR1) Params() (mu, phi float64) {
	var scratch [64]float64
	var x []float64
	if m.n <= len(scratch) {
		x = m.window(scratch[:])
	} else {
		x = m.window(make([]float64, m.n))
	}
	return ar1Fit(x, m.phiMax)
}

// Predict implements Model.
func (m *AR1) Predict() float64 {
	if m.n == 0 {
		return 0
	}
	mu, phi := m.Params()
	last := m.buf[(m.head-1+m.w)%m.w]
	return nonNeg(mu + phi*(last-mu))
}

// ar1Fit returns μ and φ of Eq. (1) for the window x (oldest first).
func ar1Fit(x []float64, phiMax float64) (mu, phi float64) {
	n := len(x)
	if n == 0 {
		return 0, 0
	}
	sum, lo, hi := 0.0, x[0], x[0]
	for _, v := range x {
		sum += v
		lo = min(lo, v)
		hi = max(hi, v)
	}
	if lo == hi {
		return x[0], 0 // constant window: predict the constant exactly
	}
	mu = sum / float64(n)
	if n < 3 {
		return mu, 0
	}
	var num, den float64
	prev := x[0] - mu
	for k := 1; k < n; k++ {
		cur := x[k] - mu
		num += prev * cur
		den += prev * prev
		prev = cur
	}
	if den == 0 {
		return mu, 0
	}
	phi = num / den
	return mu, max(-phiMax, min(phiMax, phi))
}
