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
	spec string
	mu   sync.Mutex
	m    map[string]predictor.Model
}

var _ Forecaster = (*ModelForecaster)(nil)

// NewModelForecaster checks the spec and returns an empty forecaster.
func NewModelForecaster(spec string) (*ModelForecaster, error) {
	if _, err := predictor.New(spec); err != nil {
		return nil, err
	}
	return &ModelForecaster{spec: spec, m: map[string]predictor.Model{}}, nil
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
	return m.Observe(x)
}

// Predict forecasts a series' next interval (0 for an unknown series).
func (f *ModelForecaster) Predict(key string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.m[key]; ok {
		return m.Predict()
	}
	return 0
}
