package local

import (
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// The overload detector's first metric for a DP stage with a capacity is
// its offered load (max of CPU and 100 × PktRate ÷ Capacity) against its
// LoadThreshold (vnfState.overLoad), not its CPU: on the real data plane a
// forwarder past its capacity reports CPU 2 % and an empty input queue,
// and read as CPU it had one metric over (its packet rate), was never
// overloaded, and the reactive rule never added an instance. A VNF that is
// not a DP stage (the CSCFs: no PinnedFlows) keeps CPU.
func TestOverloadReadsADPStagesLoad(t *testing.T) {
	const capacity = 35000 // fwConfig's firewall
	for _, tc := range []struct {
		name   string
		pinned bool
		load   float64        // loadThreshold (0: the default 90)
		thr    vnf.Thresholds // zero: Table 2's firewall (CPU 90, Mem 50, PktRate 35000)
		share  float64        // PktRate ÷ capacity; CPU 2 %, Mem 20 %
		want   State
	}{
		{name: "DP stage past its capacity", pinned: true, share: 1.2, want: StateOverload},
		{name: "DP stage under its capacity", pinned: true, share: 0.95, want: StateNormal},
		{name: "not a DP stage: CPU", pinned: false, share: 1.2, want: StateNormal},
		// the packet term is not capped at the capacity: a load threshold of
		// 100 is passed by an instance offered more than its capacity
		{name: "loadThreshold 100, past the capacity", pinned: true, load: 100, share: 1.1, want: StateOverload},
		{name: "loadThreshold 100, at the capacity", pinned: true, load: 100, share: 1.0,
			thr: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: capacity / 2}, want: StateNormal},
		// the loadThreshold, not the CPU threshold (90)
		{name: "loadThreshold 50", pinned: true, load: 50, share: 0.6,
			thr: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: capacity / 2}, want: StateOverload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reactiveCfg(1)
			cfg.VNFs[0].PinnedFlows, cfg.VNFs[0].LoadThreshold, cfg.VNFs[0].Thresholds = tc.pinned, tc.load, tc.thr
			e := newEnv(t, cfg, fake.Options{})
			id := e.ids(StateNormal)[0]
			e.load[id] = Stats{CPU: 2, Mem: 20, PktRate: tc.share * capacity}
			e.seconds(4)
			if st := e.state(id); st != StateNormal {
				t.Fatalf("%s after 4 s (under the overload window), want normal", st)
			}
			e.seconds(1)
			if st := e.state(id); st != tc.want {
				t.Fatalf("%s after 5 s at %.2f × the capacity (CPU 2 %%), want %s", st, tc.share, tc.want)
			}
			n := len(e.actions(KindCreate, ReasonReactive))
			if want := map[State]int{StateOverload: 1, StateNormal: 0}[tc.want]; n != want {
				t.Fatalf("%d reactive launches, want %d", n, want)
			}
		})
	}
}
