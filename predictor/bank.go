package predictor

import (
	"fmt"
	"strings"
)

// Bank holds the state of one model for many series (every entry→exit pair,
// or every datacenter pair's delay) and runs one prediction round over all
// of them: Observe with the values measured in the interval that just
// ended, then Predict for the next interval. It is what the global
// controller forecasts with (controller/global.Forecaster maps series keys
// to bank indexes): series join the bank with Grow and a round may observe
// only some of them (ObserveSome: a new series, a silent datacenter's
// series), each series keeping its own history length, exactly as one Model
// per series would.
//
// "ar1", "holt", "last", "analog", "kalman" and "auto" are stored as
// struct-of-arrays (one flat slice per state variable, each series' window
// contiguous so that a fit reads one block), and a "+qNN" margin over any of
// them (except refitted Holt) is a flat residual ring; every other spec
// falls back to one Model per series. Both give exactly the predictions of
// the single-series models (TestBankMatchesModels). A Bank is not safe for
// concurrent use.
type Bank struct {
	name  string
	n     int
	kind  string // KindAR1, KindHolt, KindLast, KindAnalog, KindKalman, KindAuto for the flat forms, "" for per-series models
	count int    // observation rounds so far
	cnt   []int  // observations of each series

	// ar1 and analog: ring of the last w values of each series, series-major
	// (buf[i*w+slot]); series i's next write goes to slot cnt[i] mod w.
	w      int
	phiMax float64
	buf    []float64

	// analog: pattern length m, k neighbours (the per-round scratch is allocated per chunk).
	m int
	k int

	// kalman: kalmanStateLen numbers per series, series-major in buf.
	count1, forget float64

	// holt (level/trend) and last (level).
	alpha, beta, damp float64
	level, trend      []float64

	models []Model
	// margin, if set, is the flat "+qNN" layer over this bank's base form.
	margin *bankMargin
	// auto, if set, is the flat online model selection (kind KindAuto).
	auto *bankAuto
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
	return newBank(s, n)
}

// flatMargin reports whether s's "+qNN" margin runs in the flat form (its
// base has a flat form).
func flatMargin(s Spec) bool {
	switch s.Kind {
	case KindAR1, KindKalman, KindLast, KindAuto, KindAnalog:
		return true
	case KindHolt:
		return s.get("fit") == 0
	}
	return false
}

func newBank(s Spec, n int) (*Bank, error) {
	b := &Bank{name: s.String(), n: n, cnt: make([]int, n)}
	if s.Percentile > 0 && flatMargin(s) {
		base := s
		base.Percentile, base.MarginWindow = 0, 0
		inner, err := newBank(base, n)
		if err != nil {
			return nil, err
		}
		win := s.MarginWindow
		if win == 0 {
			win = DefaultMarginWindow
		}
		b.margin = newBankMargin(inner, s.Percentile/100, win)
		return b, nil
	}
	if s.Percentile == 0 {
		switch s.Kind {
		case KindAR1:
			b.kind, b.w, b.phiMax = KindAR1, int(s.get("w")), s.get("phimax")
			b.buf = make([]float64, b.w*n)
			return b, nil
		case KindAnalog:
			b.kind, b.m, b.w, b.k = KindAnalog, int(s.get("m")), int(s.get("win")), int(s.get("k"))
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
		case KindAuto:
			a, err := newBankAuto(int(s.get("win")), s.get("guard"), n)
			if err != nil {
				return nil, err
			}
			b.kind, b.auto = KindAuto, a
			return b, nil
		}
	}
	b.models = make([]Model, n)
	for i := range b.models {
		m, err := s.New()
		if err != nil {
			return nil, err
		}
		b.models[i] = m
	}
	return b, nil
}

// Name returns the canonical spec of the bank's model.
func (b *Bank) Name() string { return b.name }

// Len returns the number of series.
func (b *Bank) Len() int { return b.n }

// Rounds returns how many Observe rounds the bank has taken.
func (b *Bank) Rounds() int { return b.count }

// Observed returns how many values series i has observed (0 for no such series).
func (b *Bank) Observed(i int) int {
	if i < 0 || i >= b.n {
		return 0
	}
	return b.cnt[i]
}

// Grow adds k ≥ 0 series without history (indexes Len() … Len()+k−1).
func (b *Bank) Grow(k int) error {
	if k < 0 {
		return fmt.Errorf("predictor: bank %s: grow by %d: must be ≥ 0", b.name, k)
	}
	if k == 0 {
		return nil
	}
	b.n += k
	b.cnt = grow(b.cnt, k)
	if b.margin != nil {
		return b.margin.grow(k)
	}
	switch b.kind {
	case KindAR1, KindAnalog:
		b.buf = grow(b.buf, k*b.w)
	case KindKalman:
		b.buf = grow(b.buf, k*kalmanStateLen)
	case KindHolt:
		b.level, b.trend = grow(b.level, k), grow(b.trend, k)
	case KindLast:
		b.level = grow(b.level, k)
	case KindAuto:
		return b.auto.grow(k)
	default:
		s, err := ParseSpec(b.name)
		if err != nil {
			return err
		}
		for range k {
			m, err := s.New()
			if err != nil {
				return err
			}
			b.models = append(b.models, m)
		}
	}
	return nil
}

// grow appends k zero elements to s.
func grow[T any](s []T, k int) []T {
	return append(s, make([]T, k)...)
}

// BytesPerSeries is the state memory per series of the flat forms (ar1: 8·w,
// analog: 8·win, kalman: 304, holt: 16, last: 8, auto: its candidates' plus
// 8·(5·win + 5 + 1) + 1, a margin adds 8·win + 16; each plus 8 for the
// series' observation count), or 0 for the per-series fallback, whose size
// depends on the model.
func (b *Bank) BytesPerSeries() int {
	if b.models != nil {
		return 0
	}
	return 8 + b.stateBytes()
}

func (b *Bank) stateBytes() int {
	if b.margin != nil {
		return b.margin.base.BytesPerSeries() + 8*b.margin.win + 16
	}
	switch b.kind {
	case KindAR1, KindAnalog:
		return 8 * b.w
	case KindKalman:
		return 8 * kalmanStateLen
	case KindHolt:
		return 16
	case KindLast:
		return 8
	case KindAuto:
		return b.auto.bytesPerSeries()
	}
	return 0
}

// Observe takes one round of measurements, values[i] for series i. The round
// is all or nothing: if any value is invalid (NaN, ±Inf, negative) or the
// length is wrong, nothing changes and the error names the first bad series.
func (b *Bank) Observe(values []float64) error {
	return b.ObserveSome(values, nil)
}

// ObserveSome is Observe for the series i with seen[i] only (seen nil: all
// of them); the others keep their state, as if the interval had not
// happened for them, and their values are not read.
func (b *Bank) ObserveSome(values []float64, seen []bool) error {
	if len(values) != b.n {
		return fmt.Errorf("predictor: bank %s: observe got %d values for %d series", b.name, len(values), b.n)
	}
	if seen != nil && len(seen) != b.n {
		return fmt.Errorf("predictor: bank %s: observe got %d seen flags for %d series", b.name, len(seen), b.n)
	}
	for i, v := range values {
		if !(v >= 0 && v <= MaxValue) && (seen == nil || seen[i]) {
			return fmt.Errorf("predictor: bank %s: series %d: %w", b.name, i, CheckValue(v))
		}
	}
	return b.observe(values, seen)
}

// observe feeds a validated round (the round count and the counts of the
// observed series grow by one).
func (b *Bank) observe(values []float64, seen []bool) error {
	if b.margin != nil {
		if err := b.margin.observe(values, seen); err != nil {
			return err
		}
		b.countSeen(seen)
		return nil
	}
	switch b.kind {
	case KindAR1, KindAnalog:
		w := b.w
		parallel(len(values), func(lo, hi int) { // one cache line per series: split over the cores
			for i := lo; i < hi; i++ {
				if seen == nil || seen[i] {
					b.buf[i*w+b.cnt[i]%w] = values[i]
				}
			}
		})
	case KindKalman:
		parallel(len(values), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				if seen == nil || seen[i] {
					kalmanStep(b.buf[i*kalmanStateLen:(i+1)*kalmanStateLen], values[i], b.cnt[i], b.count1, b.forget)
				}
			}
		})
	case KindHolt:
		a, be, d := b.alpha, b.beta, b.damp
		level, trend, cnt := b.level[:len(values)], b.trend[:len(values)], b.cnt[:len(values)]
		for i, v := range values {
			if seen != nil && !seen[i] {
				continue
			}
			if cnt[i] < 2 {
				level[i], trend[i] = holtStep(level[i], trend[i], v, cnt[i], a, be, d)
				continue
			}
			l0, t0 := level[i], d*trend[i]
			l := a*v + (1-a)*(l0+t0)
			level[i] = l
			trend[i] = be*(l-l0) + (1-be)*t0
		}
	case KindLast:
		if seen == nil {
			copy(b.level, values)
			break
		}
		for i, v := range values {
			if seen[i] {
				b.level[i] = v
			}
		}
	case KindAuto:
		if err := b.auto.observe(values, seen); err != nil {
			return err
		}
	default:
		for i, v := range values {
			if seen == nil || seen[i] {
				if err := b.models[i].Observe(v); err != nil {
					return fmt.Errorf("predictor: bank %s: series %d: %w", b.name, i, err)
				}
			}
		}
	}
	b.countSeen(seen)
	return nil
}

func (b *Bank) countSeen(seen []bool) {
	b.count++
	for i := range b.cnt {
		if seen == nil || seen[i] {
			b.cnt[i]++
		}
	}
}

// Predict writes the prediction of every series for the next interval into
// out, which must have Len() elements. A series without history predicts 0.
func (b *Bank) Predict(out []float64) error {
	if len(out) != b.n {
		return fmt.Errorf("predictor: bank %s: predict got %d slots for %d series", b.name, len(out), b.n)
	}
	if b.margin != nil {
		return b.margin.predict(out)
	}
	switch {
	case b.count == 0:
		clear(out)
	case b.kind == KindAR1:
		b.predictAR1(out)
	case b.kind == KindAnalog:
		b.predictAnalog(out)
	case b.kind == KindKalman:
		parallel(len(out), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				if b.cnt[i] == 0 {
					out[i] = 0
					continue
				}
				st := b.buf[i*kalmanStateLen : (i+1)*kalmanStateLen]
				out[i] = nonNeg(st[kalmanBest(st)*kalmanPerF])
			}
		})
	case b.kind == KindHolt:
		d := b.damp
		for i := range out {
			if b.cnt[i] == 0 {
				out[i] = 0
				continue
			}
			out[i] = nonNeg(b.level[i] + d*b.trend[i])
		}
	case b.kind == KindLast:
		copy(out, b.level)
	case b.kind == KindAuto:
		return b.auto.predict(out)
	default:
		for i, m := range b.models {
			out[i] = m.Predict()
		}
	}
	return nil
}

// window copies series i's held values of a ring bank, oldest first, into
// x (len ≥ w) and returns them.
func (b *Bank) window(i int, x []float64) []float64 {
	w, c := b.w, b.cnt[i]
	held := min(c, w)
	ring := b.buf[i*w : (i+1)*w]
	start := (c - held) % w
	n := copy(x, ring[start:min(start+held, w)])
	copy(x[n:held], ring[:held-n])
	return x[:held]
}

// predictAR1 fits Eq. (1) to every series' window, split over goroutines for
// large banks (each chunk with its own scratch).
func (b *Bank) predictAR1(out []float64) {
	parallel(len(out), func(lo, hi int) {
		x := make([]float64, b.w)
		for i := lo; i < hi; i++ {
			if b.cnt[i] == 0 {
				out[i] = 0
				continue
			}
			win := b.window(i, x)
			mu, phi := ar1Fit(win, b.phiMax)
			out[i] = nonNeg(mu + phi*(win[len(win)-1]-mu))
		}
	})
}

// predictAnalog runs the analog fit of every series, split over goroutines
// for large banks (each chunk with its own scratch; series are independent,
// so the result does not depend on the split).
func (b *Bank) predictAnalog(out []float64) {
	parallel(len(out), func(lo, hi int) {
		x := make([]float64, b.w)
		nb := newAnalogNeighbours(b.k)
		for i := lo; i < hi; i++ {
			if b.cnt[i] == 0 {
				out[i] = 0
				continue
			}
			p, _, _ := analogFit(b.window(i, x), b.m, &nb)
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

// Detail says how series i's last prediction was made: the model that made
// it (the bank's spec; for "auto" the candidate chosen for the series) and
// the margin a "+qNN" bank added to its base forecast (0 without one). It
// describes the state of the last Predict.
type Detail struct {
	Model  string
	Margin float64
}

// baseName is the bank's spec without its margin.
func (b *Bank) baseName() string {
	base, _, _ := strings.Cut(b.name, "+")
	return base
}

// Detail returns series i's Detail (zero for no such series).
func (b *Bank) Detail(i int) Detail {
	if i < 0 || i >= b.n {
		return Detail{}
	}
	if b.margin != nil {
		d := b.margin.base.Detail(i)
		d.Margin = b.margin.off[i]
		return d
	}
	switch {
	case b.auto != nil:
		return Detail{Model: AutoCandidates[b.auto.chosen[i]]}
	case b.models != nil:
		if a, ok := b.models[i].(*Auto); ok {
			return Detail{Model: a.Chosen()}
		}
		if mg, ok := b.models[i].(*Margin); ok {
			d := Detail{Model: b.baseName(), Margin: mg.Offset()}
			if a, ok := mg.Base().(*Auto); ok {
				d.Model = a.Chosen()
			}
			return d
		}
	}
	return Detail{Model: b.baseName()}
}
