package simulation

import (
	"reflect"
	"testing"

	"github.com/ims-orch/ims-orch/controller/strategy"
)

// withAndWithout runs hybrid and reactive-only (seed 1) on e, an
// experiment with a default of the strategies with rounds on, and on off,
// the same experiment with that default off. It fails the test when
// reactive-only's summary moves between the two (such a default must leave
// the yardstick alone: what names the default) and returns hybrid's runs
// and reactive-only's summary on e.
func withAndWithout(t *testing.T, e, off *Experiment, what string) (h, h0 *Result, r Summary) {
	t.Helper()
	h, h0 = runExp(t, e, strategy.Hybrid, 1), runExp(t, off, strategy.Hybrid, 1)
	r, r0 := runExp(t, e, strategy.Reactive, 1).Summarize(), runExp(t, off, strategy.Reactive, 1).Summarize()
	if !reflect.DeepEqual(r, r0) {
		t.Fatalf("reactive-only moved with %s: %+v against %+v", what, r, r0)
	}
	return h, h0, r
}
