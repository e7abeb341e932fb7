package predictor

import (
	"errors"
	"fmt"
	"math"
)

// Model predicts the next value of one series from the values observed so
// far. Implementations keep their own state and are not safe for concurrent
// use.
type Model interface {
	// Name is the canonical spec of the model (see ParseSpec).
	Name() string
	// Observe appends the value measured in the interval that just ended.
	// NaN, ±Inf, negative values and values above MaxValue are rejected with
	// an error wrapping ErrInvalidValue, and the state is left unchanged.
	Observe(x float64) error
	// Predict returns the prediction for the next interval, never negative.
	// With no observation yet it returns 0. It does not change the state.
	Predict() float64
}

// ErrInvalidValue is wrapped by every error about a rejected observation.
var ErrInvalidValue = errors.New("invalid value")

// MaxValue is the largest accepted observation. No workload (per second) or
// delay (ms) comes near it, and it keeps every model's sums and squares far
// from overflow.
const MaxValue = 1e15

// CheckValue returns nil if x is an acceptable observation (finite, in
// [0, MaxValue]), otherwise an error wrapping ErrInvalidValue that says why.
func CheckValue(x float64) error {
	switch {
	case math.IsNaN(x):
		return fmt.Errorf("%w: NaN", ErrInvalidValue)
	case math.IsInf(x, 0):
		return fmt.Errorf("%w: %v is not finite", ErrInvalidValue, x)
	case x < 0:
		return fmt.Errorf("%w: %v is negative (workloads and delays are ≥ 0)", ErrInvalidValue, x)
	case x > MaxValue:
		return fmt.Errorf("%w: %v is above the limit %g", ErrInvalidValue, x, MaxValue)
	}
	return nil
}

// nonNeg clamps a prediction to ≥ 0 (workloads and delays cannot be
// negative; a linear model can extrapolate below zero on a falling series).
func nonNeg(x float64) float64 {
	if x > 0 {
		return x
	}
	return 0
}
