package system

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/placement"
)

func (w *world) churn() int {
	n := 0
	for _, dc := range w.dcs {
		for _, c := range w.sys.Locals[dc].Counts() {
			n += c.Churn
		}
	}
	return n
}

// A load step outruns the forecast, reactive scaling adds instances, then
// the load stays: the next rounds (whose forecast first lags the step) must
// not buffer what the measured load still needs and reuse it again. With
// the scale-in guard (on by default for real drivers) no instance churns.
func TestSteadyLoadAfterStepNoChurn(t *testing.T) {
	run := func(guard bool) (churn, reactive int) {
		w := newWorldWith(t, strategy.Hybrid, 0, 10, func(c *Config, _ *clock.Virtual) { c.Local.ScaleInGuard = guard })
		w.load = func(at time.Duration, p placement.Pair) float64 {
			if p == (placement.Pair{Entry: 0, Exit: 1}) && at > 120*time.Second {
				return 380
			}
			return 20
		}
		w.run(800 * time.Second)
		as := w.actions()
		return w.churn(), count(as, local.KindCreate, local.ReasonReactive, "") + count(as, local.KindReuse, local.ReasonReactive, "")
	}
	offChurn, offReactive := run(false)
	onChurn, onReactive := run(true)
	t.Logf("without the guard: churn %d, reactive scale-outs %d; with it: churn %d, reactive %d", offChurn, offReactive, onChurn, onReactive)
	if onReactive == 0 {
		t.Fatal("the step caused no reactive scale-out: the test proves nothing")
	}
	if offChurn == 0 {
		t.Fatal("no churn even without the guard: the metric or the scenario is wrong")
	}
	if onChurn != 0 {
		t.Fatalf("churn %d at a steady load with the scale-in guard", onChurn)
	}
}
