package apitest

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

func TestConformance(t *testing.T) {
	Conformance(t, func(t *testing.T) Env {
		return Env{Backend: Paper(func() time.Time { return time.Unix(1_800_000_000, 0) }), DC: "dc3",
			Saved: api.Policy{Name: "night", IntervalSeconds: 50, Tau: 10, DelayBoundMs: 200, Predictor: "holt",
				Strategy: strategy.Hybrid.Name()}}
	})
}
