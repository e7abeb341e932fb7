package dataplane

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// callTable returns DC 0's table of 2 DCs with path for the pair 0→1 (its
// stages: len(path)-2), interval 1, no instance, a call from DC 0 to DC 1
// stored, and the first packet of the caller's media flow.
func callTable(t *testing.T, path placement.Path) (*routing.Table, routing.Call, routing.Packet) {
	t.Helper()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: path}
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: len(path) - 2, Interval: 1, Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	call := routing.Call{
		CallerDC: 0, CalleeDC: 1, CallerIP: 0x0a000005, CalleeIP: 0x0a010007,
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 6000, CalleeRecvPort: 6002,
		CallerEntryIP: 0xc0a80001, CalleeEntryIP: 0xc0a80101,
	}
	if err := tb.AddCall(call); err != nil {
		t.Fatal(err)
	}
	media := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: call.CallerIP, SrcPort: 4000, DstIP: call.CallerEntryIP, DstPort: 6002}
	return tb, call, media
}

// A call answered while its entry DC cannot route it yet (no working
// instance of stage 1, as while the DC starts) gets a dropping flow rule;
// once the DC can carry it the next sync routes it (its rule forwards),
// while a flow dropped for a fault of its own (no Table 1 mapping) stays
// dropped.
func TestRepairRoutesAFlowDroppedBeforeTheDCCouldRouteIt(t *testing.T) {
	tb, call, media := callTable(t, placement.Path{0, 0, 1, 1, 1})
	stray := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: 0x0a000009, SrcPort: 4000, DstIP: call.CallerEntryIP, DstPort: 6002}
	st := &dcState{t: tb, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	for i, p := range []routing.Packet{media, stray} {
		d := tb.Route(p)
		if d.Verdict != routing.Drop {
			t.Fatalf("packet %d routed %v before any instance", i, d)
		}
		st.flows[uint32(i+1)] = Flow{Serial: uint32(i + 1), Decision: d, Packet: p}
	}
	if r := st.flows[1].Decision.Reason; r != routing.DropNoInstance {
		t.Fatalf("the call's flow dropped for %v, want no instance", r)
	}
	var live [routing.MaxStages]map[uint8]Ports
	live[0] = map[uint8]Ports{10: InstancePorts(1, 10)}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 10}}); err != nil {
		t.Fatal(err)
	}
	repairFlows(st, tb, live)
	if d := st.flows[1].Decision; d.Verdict != routing.Forward || d.Instances[0] != 10 {
		t.Fatalf("the call's flow after the DC got an instance: %v, want forwarded to instance 10", d)
	}
	if d := st.flows[2].Decision; d.Verdict != routing.Drop || d.Reason != routing.DropNoMapping {
		t.Fatalf("a flow without a Table 1 mapping: %v, want still dropped (no mapping)", d)
	}
}

// A flow repairFlows moves off a departed instance carries its load on the
// instance it moved to, so EndCall's Release of it leaves that instance's
// other flows counted. Before, the move added no load (PickInstance) and
// the Release took away the load of a flow the instance really carried.
func TestRepairedFlowChargesItsNewInstance(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 2, Load: 1}, {Index: 3, Load: 1}}); err != nil {
		t.Fatal(err)
	}
	dec := func(idx uint8) routing.Decision {
		d := routing.Decision{Verdict: routing.Forward, DC: 0, First: 1, Last: 1, Load: 1}
		d.Instances[0] = idx
		return d
	}
	st := &dcState{flows: map[uint32]Flow{1: {Serial: 1, Decision: dec(2)}, 2: {Serial: 2, Decision: dec(3)}}}
	// instance 2 destroyed at its drain timeout: only 3 is live
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3, Load: 1}}); err != nil {
		t.Fatal(err)
	}
	var live [routing.MaxStages]map[uint8]Ports
	live[0] = map[uint8]Ports{3: InstancePorts(1, 3)}
	repairFlows(st, tb, live)
	if got := st.flows[1].Decision.Instances[0]; got != 3 {
		t.Fatalf("flow 1 moved to %d, want 3", got)
	}
	load := func() float64 { return tb.Instances(1)[0].Load }
	if load() != 2 {
		t.Errorf("after the repair instance 3 carries 2 flows, its load is %g", load())
	}
	d := st.flows[1].Decision
	tb.Release(&d) // EndCall of the moved call
	if load() != 1 {
		t.Errorf("after the moved call ended instance 3 still carries flow 2, its load is %g, want 1", load())
	}
}

// A flow that stays unroutable is counted dropped once, however often the
// syncs retry it: before, every repairFlows ran Route again and each
// failed retry counted the drop again, so Dropped[reason] grew once per
// rule update of the DC. Once it is routed, it counts as forwarded once.
func TestRetriedDropIsCountedOnce(t *testing.T) {
	tb, _, media := callTable(t, placement.Path{0, 0, 1})
	d := tb.Route(media) // StartCall's decision: no instance yet
	st := &dcState{t: tb, flows: map[uint32]Flow{1: {Serial: 1, Decision: d, Packet: media}}, byCall: map[routing.Call][]uint32{}}
	var live [routing.MaxStages]map[uint8]Ports
	for range 5 { // five rule updates while the DC has no instance
		repairFlows(st, tb, live)
	}
	c := tb.Counters()
	if got := c.Drops(routing.DropNoInstance); got != 1 {
		t.Errorf("one flow retried by 5 syncs: %d drops counted (no instance), want 1", got)
	}
	if c.Decisions != 1 {
		t.Errorf("decisions %d after 5 failed retries, want 1", c.Decisions)
	}
	live[0] = map[uint8]Ports{10: InstancePorts(1, 10)}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 10}}); err != nil {
		t.Fatal(err)
	}
	repairFlows(st, tb, live)
	repairFlows(st, tb, live)
	c = tb.Counters()
	if st.flows[1].Decision.Verdict != routing.Forward || c.Forwarded != 1 || c.TotalDropped() != 1 || c.Decisions != 2 {
		t.Errorf("after the repair: %v, counters %+v; want forwarded once, still 1 drop, 2 decisions", st.flows[1].Decision, c)
	}
}
