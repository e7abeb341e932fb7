package dataplane

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// CountFlows counts entry flows at the stages they were routed through here
// and learned flows from their output port and routing bytes, and nothing
// towards an instance that is not live.
func TestCountFlows(t *testing.T) {
	const n, m = 2, 3
	var live [routing.MaxStages]map[uint8]Ports
	for s := 1; s <= m; s++ {
		live[s-1] = map[uint8]Ports{}
		for _, idx := range []uint8{2, 3} {
			live[s-1][idx] = InstancePorts(s, idx)
		}
	}
	entry := func(first, last int, insts ...uint8) Flow {
		d := routing.Decision{Verdict: routing.Forward, First: first, Last: last}
		for i, x := range insts {
			d.Instances[first-1+i] = x
		}
		return Flow{Decision: d}
	}
	flows := []Flow{
		entry(1, 3, 2, 3, 2), // every stage here
		entry(1, 1, 3),       // stage 1 only, then the tunnel
		entry(2, 3, 9, 3),    // stage 2 on an instance that is not live
		{Decision: routing.Decision{Verdict: routing.Drop}}, // dropped: pinned nowhere
	}
	ip := func(b1, b2, b3, b4 uint8) uint32 { return uint32(b1)<<24 | uint32(b2)<<16 | uint32(b3)<<8 | uint32(b4) }
	learned := []ovs.LearnedFlow{
		{DstIP: ip(0, 3, 2, 1), OutPort: InstancePorts(2, 3).In}, // stages 2, 3 here, exit DC 1
		{DstIP: ip(2, 0, 0, 1), OutPort: InstancePorts(1, 2).In}, // stage 1 here, stage 2 at DC 0
		{DstIP: ip(0, 0, 0, 0), OutPort: 4242},                   // a port of no live instance
	}
	got := CountFlows(flows, learned, live, n, m)
	want := map[InstanceRef]int{
		{1, 2}: 2, {1, 3}: 1,
		{2, 2}: 0, {2, 3}: 2,
		{3, 2}: 2, {3, 3}: 1,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for r, w := range want {
		if got[r] != w {
			t.Errorf("stage %d index %d: %d flows, want %d (all %v)", r.Stage, r.Index, got[r], w, got)
		}
	}
}

// A learned rule the plane cannot read is skipped, counted and reported
// once: the DC's instances still get their counts from the other rules.
// Before, one unreadable rule made FlowCounts fail, so every instance of
// the DC reported its flows unknown (no trim, no drain end) until that
// rule idled out.
func TestUnreadableLearnedRuleLeavesTheOthersCounted(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: 1, Paths: nil})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 2}, {Index: 3}}); err != nil {
		t.Fatal(err)
	}
	dump := " cookie=0x1307000000000000, table=1, priority=190 actions=output:1004\n" +
		" cookie=0x1307000000000000, table=1, priority=190 actions=output:1006\n" +
		` cookie=0x1307000000000000, table=1, priority=190 actions=output:"odd"` + "\n"
	sw := &fakeSwitch{learned: ovs.ParseLearned(dump)}
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}, learning: true, name: "tokyo"}
	st.live[0] = map[uint8]Ports{2: InstancePorts(1, 2), 3: InstancePorts(1, 3)}
	var reported []error
	p := &Plane{dcs: []*dcState{st}, cfg: Config{OnError: func(err error) { reported = append(reported, err) }}}
	for range 2 {
		fs, err := p.FlowCounts(context.Background(), 0)
		if err != nil {
			t.Fatalf("one unreadable learned rule: %v", err)
		}
		if len(fs) != 2 || fs[0].Flows != 1 || fs[1].Flows != 1 {
			t.Fatalf("counts %+v, want 1 flow on each instance (ports 1004, 1006)", fs)
		}
	}
	if got := p.SkippedLearned(0); got != 1 {
		// rules, not rule-reads: before, the one rule counted once per read
		t.Errorf("skipped %d rules after 2 reads of the same unreadable rule, want 1", got)
	}
	// what the daemon exports (ims_orch_dataplane_learned_rules_skipped)
	l := NewLazy([]string{"tokyo"})
	if got := l.SkippedLearned(); got != nil {
		t.Errorf("skipped %v before the plane is set, want nil", got)
	}
	l.Set(p)
	if got := l.SkippedLearned(); !maps.Equal(got, map[string]int{"tokyo": 1}) {
		t.Errorf("skipped by DC %v, want tokyo: 1", got)
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "line 3") {
		t.Errorf("reported %v, want the unreadable rule once, naming line 3", reported)
	}
	if loads := tb.Instances(1); loads[0].Load != 1 || loads[1].Load != 1 {
		t.Errorf("loads %+v, want the counts", loads)
	}
}
