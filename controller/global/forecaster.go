package global

import (
	"fmt"
	"sync"

	"github.com/ims-orch/ims-orch/predictor"
)

// ModelForecaster is a Forecaster with one predictor model per series, all
// built from one model spec (e.g. "ar1", see predictor.ParseSpec). Series
// are created on their first observation.
type ModelForecaster struct {
	spec    string
	mu      sync.Mutex
	m       map[string]predictor.Model
	last    map[string]float64
	horizon float64
}

// SetHorizon makes Predict return, for the workload series, the largest
// load of a linear trajectory through the forecast over the next interval
// and the boot horizon after it, instead of the interval's mean: with û the
// model's forecast of the interval's mean and Δ = û − (the last observed
// interval), the load at the interval's start is ≈ û − Δ/2 and at h
// intervals after its middle û + h·Δ, so Predict = û + max(−Δ/2, h·Δ).
// h = ½ + boot delay / interval covers the interval's end and the boot time
// of the instances the next round would add (what this round's instances
// must carry until then). h = 0 (the default) is the paper's mean forecast.
// Delay series keep the model's forecast.
func (f *ModelForecaster) SetHorizon(h float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.horizon = max(0, h)
}

var _ Forecaster = (*ModelForecaster)(nil)

// NewModelForecaster checks the spec and returns an empty forecaster.
func NewModelForecaster(spec string) (*ModelForecaster, error) {
	if _, err := predictor.New(spec); err != nil {
		return nil, err
	}
	return &ModelForecaster{spec: spec, m: map[string]predictor.Model{}, last: map[string]float64{}}, nil
}

// Observe appends an interval average to a series.
func (f *ModelForecaster) Observe(key string, x float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.m[key]
	if !ok {
		var err error
		if m, err = predictor.New(f.spec); err != nil {
			return fmt.Errorf("series %s: %w", key, err)
		}
		f.m[key] = m
	}
	if err := m.Observe(x); err != nil {
		return err
	}
	f.last[key] = x
	return nil
}

// Predict forecasts a series' next interval (0 for an unknown series).
func (f *ModelForecaster) Predict(key string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.m[key]
	if !ok {
		return 0
	}
	u := m.Predict()
	if f.horizon == 0 {
		return u
	}
	if kind, _, _, ok := ParseSeriesKey(key); !ok || kind == KindDelay {
		return u
	}
	d := u - f.last[key]
	return max(0, u+max(-d/2, f.horizon*d))
}
