package daemon

import (
	"testing"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/api/apitest"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// TestBackendConformance runs the API backend suite that the in-memory
// apitest.Backend passes too.
func TestBackendConformance(t *testing.T) {
	apitest.Conformance(t, func(t *testing.T) apitest.Env {
		return apitest.Env{Backend: newTestBackend(t), DC: "london",
			Saved: api.Policy{Name: "night", IntervalSeconds: 10, Tau: 10, DelayBoundMs: 200, Predictor: "holt",
				Strategy: strategy.Hybrid.Name()}}
	})
}
