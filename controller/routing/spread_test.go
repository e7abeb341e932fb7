package routing

import (
	"slices"
	"testing"
)

// routeN routes n new caller flows of load 1 through tb (one DC, one
// stage) and returns the chosen instance indices.
func routeN(t *testing.T, tb *Table, first, n int) []uint8 {
	t.Helper()
	var got []uint8
	for i := first; i < first+n; i++ {
		c := callBetween(0, 0, i)
		if err := tb.AddCall(c); err != nil {
			t.Fatal(err)
		}
		d := tb.Route(callerPacket(c))
		if d.Verdict != Forward {
			t.Fatalf("flow %d: %v", i, d)
		}
		got = append(got, d.Instances[0])
	}
	return got
}

// While two of three instances are overloaded, the paper's rule sends every
// new flow to the one still normal, past any limit; with a spread limit the
// flows that would take it past the limit go to the overloaded instance
// with the most headroom (the fewest flows) while one has less load.
func TestSpreadLimitUsesOverloadedHeadroom(t *testing.T) {
	insts := []InstanceLoad{{Index: 10, Load: 3}, {Index: 11, Load: 2, Overloaded: true}, {Index: 12, Load: 1, Overloaded: true}}
	tb := newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)[0]
	if err := tb.SetInstances(1, insts); err != nil {
		t.Fatal(err)
	}
	if got := routeN(t, tb, 0, 10); !slices.Equal(got, []uint8{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}) {
		t.Fatalf("without a spread limit the flows went to %v, want all on the normal 10", got)
	}

	tb = newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)[0]
	if err := tb.SetInstances(1, insts); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetSpreadLimit(1, 5); err != nil {
		t.Fatal(err)
	}
	if got := tb.SpreadLimit(1); got != 5 {
		t.Fatalf("SpreadLimit = %v, want 5", got)
	}
	// 10 takes flows up to the limit (3→4→5); then the overloaded ones with
	// less load take them, the least-loaded first (ties: the earlier), until
	// they carry as much as 10 (5); then 10 again.
	want := []uint8{10, 10, 12, 11, 12, 11, 12, 11, 12, 10}
	if got := routeN(t, tb, 0, 10); !slices.Equal(got, want) {
		t.Fatalf("with spread limit 5 the flows went to %v, want %v", got, want)
	}
	for i, w := range []float64{6, 5, 5} {
		if got := tb.Instances(1)[i].Load; got != w {
			t.Fatalf("loads %v, want 6 5 5", tb.Instances(1))
		}
	}

	// PickInstance agrees with Route and adds nothing.
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 5}, {Index: 11, Load: 4, Overloaded: true}}); err != nil {
		t.Fatal(err)
	}
	if idx, ok := tb.PickInstance(1); !ok || idx != 11 {
		t.Fatalf("PickInstance = %d %v, want the overloaded 11 (10 would pass the limit)", idx, ok)
	}
	if got := tb.Instances(1)[1].Load; got != 4 {
		t.Fatalf("PickInstance added load: %v", got)
	}
	// an overloaded instance carrying as much or more never gets the flow
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 7}, {Index: 11, Load: 9, Overloaded: true}, {Index: 12, Load: 9, Overloaded: true}}); err != nil {
		t.Fatal(err)
	}
	if got := routeN(t, tb, 10, 2); !slices.Equal(got, []uint8{10, 10}) {
		t.Fatalf("flows went to %v, want the normal 10 (no overloaded instance carries less)", got)
	}
	// every instance normal: least-loaded, limit or not
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 8}, {Index: 11, Load: 9}}); err != nil {
		t.Fatal(err)
	}
	if got := routeN(t, tb, 12, 3); !slices.Equal(got, []uint8{10, 10, 11}) {
		t.Fatalf("all normal: flows went to %v, want 10 10 11", got)
	}
}

// Packing comes first; the spread limit decides only where the flows that
// packing cannot place go.
func TestSpreadLimitAfterPacking(t *testing.T) {
	tb := newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)[0]
	if err := tb.SetInstances(1, []InstanceLoad{{Index: 10, Load: 3}, {Index: 11, Load: 1, Overloaded: true}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetPackLimit(1, 4); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetSpreadLimit(1, 5); err != nil {
		t.Fatal(err)
	}
	// packed to 4, then least-loaded normal to the spread limit 5, then the
	// overloaded 11 until it carries as much as 10
	want := []uint8{10, 10, 11, 11, 11, 11, 10}
	if got := routeN(t, tb, 0, 7); !slices.Equal(got, want) {
		t.Fatalf("flows went to %v, want %v", got, want)
	}
}

func TestSetSpreadLimitErrors(t *testing.T) {
	tb := newTables(t, 2, 2, 1, nil, false)[0]
	checkLimitErrors(t, "spreadLimit", tb.SetSpreadLimit, tb.SpreadLimit)
}
