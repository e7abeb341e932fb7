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

// savesVMSeconds fails the test unless hybrid with the default (h) took at
// least min VM-seconds fewer than without it (h0) and lost no more packets;
// what names the default, setting its value in the log line.
func savesVMSeconds(t *testing.T, h, h0 *Result, what string, setting any, min float64) {
	t.Helper()
	v, v0 := h.Cost.VMSeconds, h0.Cost.VMSeconds
	lost, lost0 := h.Recorder.DPLost, h0.Recorder.DPLost
	t.Logf("hybrid: %s %v VM-s %.0f lost %.0f; without %.0f lost %.0f", what, setting, v, lost, v0, lost0)
	if v > v0-min {
		t.Fatalf("hybrid VM-s %.0f with %s, %.0f without: want ≥ %.0f fewer", v, what, v0, min)
	}
	if lost > lost0 {
		t.Fatalf("hybrid lost %.0f packets with %s, %.0f without: want no more", lost, what, lost0)
	}
}
