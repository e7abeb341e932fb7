package predictor

// Last is the naive model: the next value equals the last observed one. It is
// a baseline for backtests (a model that cannot beat it is not worth its
// parameters).
type Last struct {
	name string
	last float64
}

// Name implements Model.
func (m *Last) Name() string { return m.name }

// Observe implements Model.
func (m *Last) Observe(x float64) error {
	if err := CheckValue(x); err != nil {
		return err
	}
	m.last = x
	return nil
}

// Predict implements Model.
func (m *Last) Predict() float64 { return m.last }
