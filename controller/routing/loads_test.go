package routing

import "testing"

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
