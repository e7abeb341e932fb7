package routing

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Reroute counts a forwarded decision like Route and leaves the counters
// alone on a drop; either way it decides what Route would.
func TestRerouteCountsOnlyAForward(t *testing.T) {
	tb, err := NewTable(Config{DC: 0, N: 2, Stages: 1, Paths: pathMap{pr(0, 1): {0, 0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	c := callBetween(0, 1, 1)
	if err := tb.AddCall(c); err != nil {
		t.Fatal(err)
	}
	if d := tb.Route(callerPacket(c)); d.Reason != DropNoInstance {
		t.Fatalf("first decision %v, want a drop for no instance", d)
	}
	before := tb.Counters()
	for range 3 {
		if d := tb.Reroute(callerPacket(c)); d.Verdict != Drop || d.Reason != DropNoInstance {
			t.Fatalf("retry without an instance: %v, want the same drop", d)
		}
	}
	if got := tb.Counters(); got != before {
		t.Fatalf("3 dropped retries changed the counters: %+v, was %+v", got, before)
	}
	instancesFor(t, tb, 2, 1, 1)
	if d := tb.Reroute(callerPacket(c)); d.Verdict != Forward {
		t.Fatalf("retry with an instance: %v, want forwarded", d)
	}
	got := tb.Counters()
	if got.Decisions != before.Decisions+1 || got.Forwarded != 1 || got.Entered != 1 || got.TotalDropped() != 1 {
		t.Fatalf("after a forwarded retry: %+v, want one more decision, forwarded and entered once, 1 drop", got)
	}
}

// AddLoad and SetLoads change only the named instances' loads; bad input is
// an error naming the field, and changes nothing.
func TestAddLoadAndSetLoads(t *testing.T) {
	tb, err := NewTable(Config{DC: 0, N: 2, Stages: 2, Paths: pathMap{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 2, Load: 1}, {Index: 3, Load: 2, Overloaded: true}, {Index: 4}}); err != nil {
		t.Fatal(err)
	}
	want := func(ls ...float64) {
		t.Helper()
		xs := tb.Instances(1)
		for i, l := range ls {
			if xs[i].Load != l {
				t.Fatalf("loads %+v, want %v", xs, ls)
			}
		}
		if !xs[1].Overloaded {
			t.Fatalf("instance 3 lost its overload: %+v", xs)
		}
	}
	if ok, err := tb.AddLoad(1, 3, 1.5); !ok || err != nil {
		t.Fatalf("AddLoad(1, 3): %v %v", ok, err)
	}
	want(1, 3.5, 0)
	if ok, err := tb.AddLoad(1, 9, 1); ok || err != nil {
		t.Fatalf("AddLoad of an unknown index: %v %v, want false, nil", ok, err)
	}
	if err := tb.SetLoads(1, map[uint8]float64{2: 5, 4: 7, 9: 1}); err != nil {
		t.Fatal(err)
	}
	want(5, 3.5, 7)
	for _, c := range []struct {
		err   error
		field string
	}{
		{tb.SetLoads(1, map[uint8]float64{2: -1}), "loads[stage 1][2]"},
		{tb.SetLoads(3, nil), "stage"},
		{func() error { _, err := tb.AddLoad(1, 2, math.NaN()); return err }(), "load"},
		{func() error { _, err := tb.AddLoad(0, 2, 1); return err }(), "stage"},
	} {
		if !strings.Contains(fmt.Sprint(c.err), c.field) {
			t.Errorf("error %v, want one naming %s", c.err, c.field)
		}
	}
	want(5, 3.5, 7)
}
