package dataplane

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// DC 1 of the 6.3.2 setup holding the three path sets of intervals 4, 5, 6.
func compileDC1(t *testing.T, ignore bool) []ovs.Flow {
	t.Helper()
	return compileDC1With(t, ignore, nil)
}

// compileDC1With is compileDC1 with flows entering the chain at DC 1.
func compileDC1With(t *testing.T, ignore bool, flows []Flow) []ovs.Flow {
	t.Helper()
	tb, err := routing.NewTable(routing.Config{DC: 1, N: 2, Stages: 3, Interval: 4, Paths: consistencyPaths(4), IgnoreIntervalTag: ignore})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.StoreNext(5, consistencyPaths(5)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Enter(5); err != nil {
		t.Fatal(err)
	}
	if err := tb.StoreNext(6, consistencyPaths(6)); err != nil {
		t.Fatal(err)
	}
	var live [routing.MaxStages]map[uint8]Ports
	for s := 1; s <= 3; s++ {
		live[s-1] = map[uint8]Ports{uint8(10 * s): InstancePorts(s, uint8(10*s))}
		if err := tb.SetInstances(s, []routing.InstanceLoad{{Index: uint8(10 * s)}}); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := Compile(Inputs{Table: tb, Live: live, UsersMAC: UsersMAC(1), Flows: flows})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func tagRules(fs []ovs.Flow) []ovs.Flow {
	var out []ovs.Flow
	for _, f := range fs {
		if f.Cookie&^0xffff == ovs.CookieTag&^0xffff && f.Table == 1 {
			out = append(out, f)
		}
	}
	return out
}

func TestCompileTagRulesPerHeldInterval(t *testing.T) {
	// DC 1 hosts the chain of 0→1 in odd intervals: only interval 5's set
	// routes 0→1 through it; 1→0 in even intervals 4 and 6 heads to DC 0.
	tags := tagRules(compileDC1(t, false))
	if len(tags) != 1 {
		t.Fatalf("tag rules %v, want the one of 0→1 in interval 5", tags)
	}
	port, _ := routing.NewTag(0, 1, 5).Encode()
	want := fmt.Sprintf("tp_dst=%d", port)
	if !strings.Contains(tags[0].Match, want) || !strings.Contains(tags[0].Match, "nw_dst=1.0.0.0/255.0.0.0") {
		t.Fatalf("rule %s: want %s and routing byte 1 = DC 1", tags[0], want)
	}
	if !strings.Contains(tags[0].Actions, "learn(") || !strings.Contains(tags[0].Actions, "output:1020") {
		t.Fatalf("rule %s: want a learned per-flow rule and output to stage 1's instance", tags[0])
	}
}

func TestCompileIgnoreIntervalTagUsesOnlyTheCurrentSet(t *testing.T) {
	tags := tagRules(compileDC1(t, true))
	if len(tags) != 1 || !strings.Contains(tags[0].Match, "/0xfffc") {
		t.Fatalf("tag rules %v, want one with the interval bits masked", tags)
	}
}

func TestCompileRejectsWhatItCannotExpress(t *testing.T) {
	tb, _ := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	in := Inputs{Table: tb}
	if _, err := in.rule(routing.FlowRule{Match: routing.Match{From: routing.Source{Kind: routing.SourceStage, Stage: 2}}}, 1, 0); err == nil {
		t.Fatal("stage 2 of a 1-stage chain: want an error")
	}
	if _, err := in.rule(routing.FlowRule{Match: routing.Match{From: routing.Source{Kind: routing.SourceUser}, DstPortMask: 0xffff}}, 1, 0); err == nil {
		t.Fatal("a port match without UDP/TCP: want an error")
	}
}

// Every arrival rule first counts its packet on its pair's counter rule
// (ovs.CountPair), and the rule set holds the counter rules whatever the
// calls (N = 1: the pair 0→0): no call's end deletes a pair's counter
// (the switch reads no counters on a call's rule update). Session 14.
func TestArrivalRulesCountOnTheirPairsCounter(t *testing.T) {
	b := newTakeoverBed(t)
	counters := func(what string) {
		t.Helper()
		n := 0
		for _, f := range b.sw.want {
			if p, ok := ovs.CounterOf(f.Cookie); ok {
				if f != ovs.PairCounter(p) {
					t.Fatalf("%s: counter rule %v, want %v", what, f, ovs.PairCounter(p))
				}
				n++
			}
		}
		if n != 1 { // N = 1: the pair 0→0
			t.Fatalf("%s: %d counter rules, want 1", what, n)
		}
	}
	a := sipCall("127.0.0.101", "127.0.0.91")
	if err := b.p.OpenCall(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	counters("one call")
	arrivals := 0
	for _, fs := range b.arrivals() {
		for _, f := range fs {
			p, _ := ovs.PairOf(f.Cookie)
			if !strings.HasPrefix(f.Actions, ovs.CountPair(p, "")+",") {
				t.Fatalf("arrival rule %v does not count on pair %v's counter first", f, p)
			}
			arrivals++
		}
	}
	if arrivals != 2 {
		t.Fatalf("%d arrival rules, want 2", arrivals)
	}
	if err := b.p.CloseCall(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	counters("the call ended")
}

// A bridge holds the counter rules its entry rules can name, not one per
// pair of the topology (revC M1: n² rules per bridge, dumped by every
// meter read and built on every call's rule update): at DC 1 of 2, the
// pairs 1→0 and 1→1 of its routed flows and 0→0 of the dropped ones (the
// zero tag), and every compiled entry rule's pair has its counter rule.
func TestCompileInstallsOnlyTheCounterRulesEntryRulesName(t *testing.T) {
	pk := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: routing.IPv4(0x0a650001), SrcPort: 6000, DstIP: routing.IPv4(0x0a640001), DstPort: 7000}
	routed := routing.Decision{Verdict: routing.Forward, Entry: true, DC: 1, Stages: 3, First: 1, Last: 3, Packet: pk, Tag: routing.NewTag(1, 0, 5)}
	for s := 1; s <= 3; s++ {
		routed.Instances[s-1] = uint8(10 * s)
	}
	flows := []Flow{
		{Serial: 1, Decision: routed},
		{Serial: 2, Decision: routing.Decision{Verdict: routing.Drop, DC: 1, Stages: 3, Packet: pk}}, // no mapping: the zero tag
	}
	counterSet := func(fs []ovs.Flow) map[ovs.Pair]bool {
		c := map[ovs.Pair]bool{}
		for _, f := range fs {
			if p, ok := ovs.CounterOf(f.Cookie); ok {
				c[p] = true
			}
		}
		return c
	}
	fs := compileDC1With(t, false, flows)
	counters := counterSet(fs)
	// the same set with no flow: no flow's start or end adds or deletes a
	// counter rule (a deletion reads the counters before its bundle)
	if none := counterSet(compileDC1(t, false)); !maps.Equal(none, counters) {
		t.Fatalf("counter rules of pairs %v with no flow, %v with flows: want the same", none, counters)
	}
	want := map[ovs.Pair]bool{{Entry: 0, Exit: 0}: true, {Entry: 1, Exit: 0}: true, {Entry: 1, Exit: 1}: true}
	if len(counters) != len(want) {
		t.Fatalf("counter rules of pairs %v, want %v (n+1 at DC 1 of n = 2)", counters, want)
	}
	for p := range want {
		if !counters[p] {
			t.Fatalf("counter rules of pairs %v: no %v", counters, p)
		}
	}
	entries := 0
	for _, f := range fs {
		if p, ok := ovs.PairOf(f.Cookie); ok {
			entries++
			if !counters[p] {
				t.Fatalf("entry rule %v names pair %v, which has no counter rule", f, p)
			}
		}
	}
	if entries != len(flows) {
		t.Fatalf("%d entry rules, want %d", entries, len(flows))
	}
}
