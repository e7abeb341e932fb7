package simulation

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// LoadLog is a run's workload as the traffic engine reported it, per pair
// (entry, exit) and kind: every DP report (one a second) and every CP
// report (one per CP report period, averaged over it), from the traffic's
// start on (the warm start's hint is not traffic). The same experiment and
// seed give every strategy the same log (Result.Loads), so one run's log
// can tell another run's rounds the load to come (Oracle).
type LoadLog struct {
	start  time.Time
	n      int
	dp, cp []loadSample
}

type loadSample struct {
	t     time.Duration // since the traffic's start
	rates []float64     // [entry·n + exit]
}

func newLoadLog(start time.Time, n int) *LoadLog { return &LoadLog{start: start, n: n} }

func (l *LoadLog) record(kind string, at time.Time, loads []traffic.PairLoad) {
	if l == nil || !at.After(l.start) {
		return
	}
	s := loadSample{t: at.Sub(l.start), rates: make([]float64, l.n*l.n)}
	for _, p := range loads {
		if p.Entry >= 0 && p.Entry < l.n && p.Exit >= 0 && p.Exit < l.n && validLoad(p.Rate) {
			s.rates[p.Entry*l.n+p.Exit] += p.Rate
		}
	}
	if kind == global.KindCP {
		l.cp = append(l.cp, s)
	} else {
		l.dp = append(l.dp, s)
	}
}

// Oracle makes a run's rounds plan with the load they will meet instead of
// a forecast (an analysis of what round sizing alone can reach, not a
// strategy: docs/reproduction.md, "Session 8: simultaneous floor"). Each
// workload series is planned at the largest rate its pair carries in Log
// over (now, now + Window] — or, with Mean, the average, with Quantile q
// in (0, 1) the q-quantile of the window's per-report rates (the rate
// exceeded by a fraction 1 − q of the window) — and a delay series at its
// last observed value.
type Oracle struct {
	Log      *LoadLog
	Window   time.Duration
	Mean     bool
	Quantile float64
}

func (o *Oracle) validate() error {
	switch {
	case o.Log == nil:
		return fmt.Errorf("oracle: no load log")
	case o.Window <= 0:
		return fmt.Errorf("oracle: window %v: must be > 0", o.Window)
	case o.Quantile < 0 || o.Quantile >= 1 || math.IsNaN(o.Quantile):
		return fmt.Errorf("oracle: quantile %v: must be in (0, 1), or 0 for the largest rate", o.Quantile)
	case o.Quantile > 0 && o.Mean:
		return fmt.Errorf("oracle: a quantile and the mean: choose one")
	}
	return nil
}

// oracleForecaster is the global.Forecaster of an Oracle.
type oracleForecaster struct {
	o     Oracle
	clk   clock.Clock
	start time.Time // this run's traffic start (the log's t = 0)
	dc    map[string]int
	delay map[string]float64
}

func newOracleForecaster(o Oracle, clk clock.Clock, start time.Time, dcs []string) *oracleForecaster {
	f := &oracleForecaster{o: o, clk: clk, start: start, dc: map[string]int{}, delay: map[string]float64{}}
	for i, d := range dcs {
		f.dc[d] = i
	}
	return f
}

// Observe keeps the delay series' averages; the workload series need none.
func (f *oracleForecaster) Observe(avg map[string]float64) error {
	for k, v := range avg {
		if kind, _, _, ok := global.ParseSeriesKey(k); ok && kind == global.KindDelay {
			f.delay[k] = v
		}
	}
	return nil
}

// Predict returns each series' rate over (now, now + Window] of the log.
func (f *oracleForecaster) Predict(keys []string) map[string]global.Forecast {
	now := f.clk.Now().Sub(f.start)
	out := make(map[string]global.Forecast, len(keys))
	for _, k := range keys {
		kind, a, b, ok := global.ParseSeriesKey(k)
		if !ok {
			out[k] = global.Forecast{}
			continue
		}
		if kind == global.KindDelay {
			out[k] = global.Forecast{Value: f.delay[k], Mean: f.delay[k], Model: "oracle"}
			continue
		}
		i, okA := f.dc[a]
		j, okB := f.dc[b]
		samples := f.o.Log.dp
		if kind == global.KindCP {
			samples = f.o.Log.cp
		}
		v := 0.0
		if okA && okB {
			v = windowRate(samples, i*f.o.Log.n+j, now, now+f.o.Window, f.o.Mean, f.o.Quantile)
		}
		out[k] = global.Forecast{Value: v, Mean: v, Model: "oracle"}
	}
	return out
}

// windowRate is the largest rate of pair p over the samples with
// from < t ≤ to — with mean the average, with q in (0, 1) the q-quantile
// (the ⌈q·n⌉-th smallest) — and 0 without any.
func windowRate(samples []loadSample, p int, from, to time.Duration, mean bool, q float64) float64 {
	var xs []float64
	for _, s := range samples {
		if s.t > from && s.t <= to {
			xs = append(xs, s.rates[p])
		}
	}
	if len(xs) == 0 {
		return 0
	}
	if mean {
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return sum / float64(len(xs))
	}
	slices.Sort(xs)
	if q > 0 {
		return xs[max(0, int(math.Ceil(q*float64(len(xs))))-1)]
	}
	return xs[len(xs)-1]
}
