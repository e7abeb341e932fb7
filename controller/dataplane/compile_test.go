package dataplane

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// DC 1 of the 6.3.2 setup holding the three path sets of intervals 4, 5, 6.
func compileDC1(t *testing.T, ignore bool) []ovs.Flow {
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
	fs, err := Compile(Inputs{Table: tb, Live: live, UsersMAC: UsersMAC(1)})
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
// (ovs.CountPair), and the rule set holds a counter rule for every pair of
// the topology whatever the calls: no call's end deletes a pair's counter
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
