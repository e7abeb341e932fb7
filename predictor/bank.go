package predictor

import "fmt"

// Bank holds the state of one model for many series (every entry→exit pair,
// or every datacenter pair's delay) and runs one prediction round over all
// of them: Observe with the values measured in the interval that just
// ended, then Predict for the next interval. The global controller does not
// use it (controller/global.ModelForecaster keeps one Model per series);
// only the tests and the 10⁶-series benchmark call it.
//
// "ar1", "holt", "last", "analog" and "kalman" without a margin are stored as
// struct-of-arrays (one flat slice per state variable, the AR(1) window
// slot-major so that one Observe writes one contiguous row, the analog window
// series-major so that its distance scan reads one contiguous block); every
// other spec falls back to one
// Model per series. Both give exactly the predictions of the single-series
// models. A Bank is not safe for concurrent use.
type Bank struct {
	name  string
	n     int
	kind  string // KindAR1, KindHolt, KindLast, KindAnalog, KindKalman for the flat forms, "" for per-series models
	count int    // observation rounds so far

	// ar1: window of w rounds, buf[slot*n+i] is series i in ring slot slot.
	w      int
	phiMax float64
	buf    []float64
	head   int // next slot to write
	held   int // rounds held, ≤ w

	// analog: window of w rounds series-major, buf[i*w+slot] (one series'
	// window is contiguous for the distance scan), ring state in head/held.
	m  int
	nb analogNeighbours // k slots; the per-round scratch is allocated per chunk

	// kalman: kalmanStateLen numbers per series, series-major in buf.
	count1, forget float64

	// holt (level/trend) and last (level).
	alpha, beta, damp float64
	level, trend      []float64

	models []Model
}

// NewBank returns a bank of n ≥ 0 series of the model spec, all without history.
func NewBank(spec string, n int) (*Bank, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("predictor: bank size %d: must be ≥ 0", n)
	}
	b := &Bank{name: s.String(), n: n}
	if s.Percentile == 0 {
		switch s.Kind {
		case KindAR1:
			b.kind, b.w, b.phiMax = KindAR1, int(s.get("w")), s.get("phimax")
			b.buf = make([]float64, b.w*n)
			return b, nil
		case KindAnalog:
			b.kind, b.m, b.w = KindAnalog, int(s.get("m")), int(s.get("win"))
			b.nb = newAnalogNeighbours(int(s.get("k")))
			b.buf = make([]float64, b.w*n)
			return b, nil
		case KindKalman:
			b.kind, b.count1, b.forget = KindKalman, s.get("count"), s.get("forget")
			b.buf = make([]float64, kalmanStateLen*n)
			return b, nil
		case KindHolt:
			if s.get("fit") != 0 {
				break // refitted Holt keeps a window per series: per-series models
			}
			b.kind, b.alpha, b.beta, b.damp = KindHolt, s.get("alpha"), s.get("beta"), s.get("damp")
			b.level, b.trend = make([]float64, n), make([]float64, n)
			return b, nil
		case KindLast:
			b.kind, b.level = KindLast, make([]float64, n)
			return b, nil
		}
	}
	b.models = make([]Model, n)
	for i := range b.models {
		if b.models[i], err = s.New(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Name returns the canonical spec of the bank's model.
func (b *Bank) Name() string { return b.name }

// Len returns the number of series.
func (b *Bank) Len() int { return b.n }

// Rounds returns how many Observe rounds the bank has taken.
func (b *Bank) Rounds() int { return b.count }

// BytesPerSeries is the state memory per series of the flat forms (ar1: 8·w,
// analog: 8·win, kalman: 304, holt: 16, last: 8), or 0 for the per-series fallback, whose size depends on
// the model.
func (b *Bank) BytesPerSeries() int {
	switch b.kind {
	case KindAR1, KindAnalog:
		return 8 * b.w
	case KindKalman:
		return 8 * kalmanStateLen
	case KindHolt:
		return 16
	case KindLast:
		return 8
	}
	return 0
}

// Observe takes one round of measurements, values[i] for series i. The round
// is all or nothing: if any value is invalid (NaN, ±Inf, negative) or the
// length is wrong, nothing changes and the error names the first bad series.
func (b *Bank) Observe(values []float64) error {
	if len(values) != b.n {
		return fmt.Errorf("predictor: bank %s: observe got %d values for %d series", b.name, len(values), b.n)
	}
	for i, v := range values {
		if !(v >= 0 && v <= MaxValue) {
			return fmt.Errorf("predictor: bank %s: series %d: %w", b.name, i, CheckValue(v))
		}
	}
	switch b.kind {
	case KindAR1:
		copy(b.buf[b.head*b.n:(b.head+1)*b.n], values)
		b.head = (b.head + 1) % b.w
		b.held = min(b.held+1, b.w)
	case KindAnalog:
		w, h := b.w, b.head
		for i, v := range values {
			b.buf[i*w+h] = v
		}
		b.head = (h + 1) % w
		b.held = min(b.held+1, w)
	case KindKalman:
		parallel(len(values), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				kalmanStep(b.buf[i*kalmanStateLen:(i+1)*kalmanStateLen], values[i], b.count, b.count1, b.forget)
			}
		})
	case KindHolt:
		if b.count < 2 {
			for i, v := range values {
				b.level[i], b.trend[i] = holtStep(b.level[i], b.trend[i], v, b.count, b.alpha, b.beta, b.damp)
			}
			break
		}
		a, be, d := b.alpha, b.beta, b.damp
		level, trend := b.level[:len(values)], b.trend[:len(values)]
		for i, v := range values {
			l0, t0 := level[i], d*trend[i]
			l := a*v + (1-a)*(l0+t0)
			level[i] = l
			trend[i] = be*(l-l0) + (1-be)*t0
		}
	case KindLast:
		copy(b.level, values)
	default:
		for i, v := range values {
			if err := b.models[i].Observe(v); err != nil {
				return fmt.Errorf("predictor: bank %s: series %d: %w", b.name, i, err)
			}
		}
	}
	b.count++
	return nil
}

// Predict writes the prediction of every series for the next interval into
// out, which must have Len() elements.
func (b *Bank) Predict(out []float64) error {
	if len(out) != b.n {
		return fmt.Errorf("predictor: bank %s: predict got %d slots for %d series", b.name, len(out), b.n)
	}
	switch {
	case b.count == 0:
		clear(out)
	case b.kind == KindAR1:
		b.predictAR1(out)
	case b.kind == KindAnalog:
		b.predictAnalog(out)
	case b.kind == KindKalman:
		for i := range out {
			st := b.buf[i*kalmanStateLen : (i+1)*kalmanStateLen]
			out[i] = nonNeg(st[kalmanBest(st)*kalmanPerF])
		}
	case b.kind == KindHolt:
		d := b.damp
		for i := range out {
			out[i] = nonNeg(b.level[i] + d*b.trend[i])
		}
	case b.kind == KindLast:
		copy(out, b.level)
	default:
		for i, m := range b.models {
			out[i] = m.Predict()
		}
	}
	return nil
}

func (b *Bank) predictAR1(out []float64) {
	w, n, held := b.w, b.n, b.held
	start := (b.head - held + w) % w
	// rows[k] is the k-th oldest round of every series.
	rows := make([][]float64, held)
	for k := range rows {
		s := (start + k) % w
		rows[k] = b.buf[s*n : (s+1)*n]
	}
	x := make([]float64, held)
	lastRow := rows[held-1]
	for i := range out {
		for k, r := range rows {
			x[k] = r[i]
		}
		mu, phi := ar1Fit(x, b.phiMax)
		out[i] = nonNeg(mu + phi*(lastRow[i]-mu))
	}
}

// predictAnalog runs the analog fit of every series, split over goroutines
// for large banks (each chunk with its own scratch; series are independent,
// so the result does not depend on the split).
func (b *Bank) predictAnalog(out []float64) {
	w, held, k := b.w, b.held, len(b.nb.d)
	start := (b.head - held + w) % w
	parallel(len(out), func(lo, hi int) {
		x := make([]float64, held)
		nb := newAnalogNeighbours(k)
		for i := lo; i < hi; i++ {
			ring := b.buf[i*w : (i+1)*w]
			c := copy(x, ring[start:min(start+held, w)])
			copy(x[c:], ring[:held-c])
			p, _, _ := analogFit(x, b.m, &nb)
			out[i] = nonNeg(p)
		}
	})
}

// Model returns the per-series model of series i in the fallback form, nil
// for the flat forms.
func (b *Bank) Model(i int) Model {
	if b.models == nil || i < 0 || i >= len(b.models) {
		return nil
	}
	return b.models[i]
}
