package predictor

import "math"

// Analog is a nearest-neighbour ("method of analogues") forecaster. It keeps
// the last win values y_0..y_{n−1} (oldest first); the pattern of the last m
// values, q = (y_{n−m}, …, y_{n−1}), is compared with every earlier pattern
// P_j = (y_{j−m}, …, y_{j−1}), m ≤ j ≤ n−1, whose next value y_j is known:
//
//	D_j = Σ_{i=1}^{m} (y_{j−i} − y_{n−i})²
//
// The k patterns with the smallest D_j (ties: the more recent) vote with the
// step that followed them, and
//
//	û(t+1) = y_{n−1} + (1/k')·Σ_{j ∈ nearest} (y_j − y_{j−1}),  k' = min(k, n−m)
//
// Distances are on levels, not on differences, so the model learns where a
// recurring ramp turns (the level at which the steps changed sign before)
// as well as how steep it is; averaging k steps averages out the counting
// noise of single intervals. Edge cases: no observation → 0; n ≤ m (no
// complete pattern with a successor) → the last value. A constant window
// predicts the constant and a straight line is continued exactly.
// Walk-forward only: every D_j and step uses values already observed.
type Analog struct {
	m, k, win int
	buf       []float64 // ring of the last win values
	head, n   int
	name      string
	x         []float64 // scratch: window, oldest first
	nb        analogNeighbours
}

// analogNeighbours is the scratch of the k-nearest selection.
type analogNeighbours struct {
	d, step []float64 // sorted by distance, ascending; len k
}

func newAnalogNeighbours(k int) analogNeighbours {
	return analogNeighbours{d: make([]float64, k), step: make([]float64, k)}
}

func newAnalog(m, k, win int, name string) *Analog {
	return &Analog{m: m, k: k, win: win, buf: make([]float64, win), x: make([]float64, win),
		nb: newAnalogNeighbours(k), name: name}
}

// Name implements Model.
func (a *Analog) Name() string { return a.name }

// Observe implements Model.
func (a *Analog) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	a.buf[a.head] = x
	a.head = (a.head + 1) % a.win
	if a.n < a.win {
		a.n++
	}
	return nil
}

// window copies the held values, oldest first, into the scratch.
func (a *Analog) window() []float64 {
	x := a.x[:a.n]
	start := (a.head - a.n + a.win) % a.win
	c := copy(x, a.buf[start:min(start+a.n, a.win)])
	copy(x[c:], a.buf[:a.n-c])
	return x
}

// Fit returns the number of neighbours used and the mean step that followed
// them (0, 0 while the model predicts its last value or 0).
func (a *Analog) Fit() (used int, meanStep float64) {
	_, used, meanStep = analogFit(a.window(), a.m, &a.nb)
	return used, meanStep
}

// Predict implements Model.
func (a *Analog) Predict() float64 {
	p, _, _ := analogFit(a.window(), a.m, &a.nb)
	return nonNeg(p)
}

// analogFit returns the prediction after x (oldest first), the neighbours
// used and their mean step. nb holds k slots of scratch.
func analogFit(x []float64, m int, nb *analogNeighbours) (pred float64, used int, meanStep float64) {
	n := len(x)
	if n == 0 {
		return 0, 0, 0
	}
	last := x[n-1]
	if n <= m {
		return last, 0, 0
	}
	k := len(nb.d)
	q := x[n-m:]
	// Newest candidate first, and a later one replaces a kept one only when
	// strictly closer, so ties keep the more recent pattern. The two most
	// recent values of a pattern are compared first: they differ most between
	// patterns on a ramp, so the partial sum usually exceeds the k-th
	// distance there and the rest is skipped.
	bound := math.Inf(1)
	q1, q2 := q[m-1], 0.0
	if m >= 2 {
		q2 = q[m-2]
	}
	for j := n - 1; j >= m; j-- {
		e := x[j-1] - q1
		d := e * e
		if m >= 2 {
			e = x[j-2] - q2
			d += e * e
		}
		if d >= bound {
			continue
		}
		for i := 3; i <= m; i++ {
			e := x[j-i] - q[m-i]
			d += e * e
		}
		if d >= bound {
			continue
		}
		// insert (d, step) into the sorted prefix
		pos := min(used, k-1)
		for pos > 0 && nb.d[pos-1] > d {
			nb.d[pos], nb.step[pos] = nb.d[pos-1], nb.step[pos-1]
			pos--
		}
		nb.d[pos], nb.step[pos] = d, x[j]-x[j-1]
		if used < k {
			used++
		}
		if used == k {
			bound = nb.d[k-1]
		}
	}
	sum := 0.0
	for _, s := range nb.step[:used] {
		sum += s
	}
	meanStep = sum / float64(used)
	return last + meanStep, used, meanStep
}
