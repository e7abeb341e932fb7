package dataplane

import (
	"context"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// BenchmarkFlowCountsNoSwitchRead measures Plane.FlowCounts' own work for a
// DC whose switch is not read (no tag rule: the usual DC without transit
// flows), once per DC per second: the count over 400 entry flows and the
// loads it writes back, 3 stages of 20 instances, standalone table.
func BenchmarkFlowCountsNoSwitchRead(b *testing.B) {
	const n, m, per = 2, 3, 20
	tb, err := routing.NewTable(routing.Config{DC: 0, N: n, Stages: m, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		b.Fatal(err)
	}
	st := &dcState{t: tb, sw: &fakeSwitch{}, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	for s := 1; s <= m; s++ {
		st.live[s-1] = map[uint8]Ports{}
		var xs []routing.InstanceLoad
		for i := 0; i < per; i++ {
			idx := uint8(n + i)
			st.live[s-1][idx] = InstancePorts(s, idx)
			xs = append(xs, routing.InstanceLoad{Index: idx})
		}
		if err := tb.SetInstances(s, xs); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 400; i++ {
		d := routing.Decision{Verdict: routing.Forward, First: 1, Last: m}
		for s := 1; s <= m; s++ {
			d.Instances[s-1] = uint8(n + i%per)
		}
		st.flows[uint32(i+1)] = Flow{Serial: uint32(i + 1), Decision: d}
	}
	p := &Plane{dcs: []*dcState{st}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.FlowCounts(ctx, 0); err != nil {
			b.Fatal(err)
		}
	}
}
