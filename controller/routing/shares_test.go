package routing

import (
	"slices"
	"testing"
)

// stageWith is a one-DC, one-stage table with insts and the given pack and
// spread limits.
func stageWith(t *testing.T, insts []InstanceLoad, pack, spread float64) *Table {
	t.Helper()
	tb := newTables(t, 2, 1, 1, pathMap{pr(0, 0): {0, 0, 0}}, false)[0]
	if err := tb.SetInstances(1, insts); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetPackLimit(1, pack); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetSpreadLimit(1, spread); err != nil {
		t.Fatal(err)
	}
	return tb
}

// count is how many of got went to each index.
func count(got []uint8) map[uint8]float64 {
	c := map[uint8]float64{}
	for _, x := range got {
		c[x]++
	}
	return c
}

// Shares are the proportions Route gives a batch of flows: with packing a
// batch that fills the stage puts each normal instance's room on it.
func TestSharesArePackingsFillOfTheStage(t *testing.T) {
	insts := []InstanceLoad{{Index: 10, Load: 5}, {Index: 11}, {Index: 12, Load: 2, Overloaded: true}, {Index: 13, Load: 10}}
	tb := stageWith(t, insts, 10, 0)
	sh := tb.Shares(1)
	want := []Share{{Index: 10, Weight: 5}, {Index: 11, Weight: 10}} // 12 overloaded, 13 full
	if !slices.Equal(sh, want) {
		t.Fatalf("Shares = %v, want %v", sh, want)
	}
	c := count(routeN(t, tb, 0, 15)) // the room of the stage
	for _, s := range sh {
		if c[s.Index] != s.Weight {
			t.Errorf("a batch of 15 flows put %v on %d, its share is %v (all: %v)", c[s.Index], s.Index, s.Weight, c)
		}
	}
	// full: packing's fallback, the least-loaded normal one takes the next
	// flows, and so would every normal one in turn
	if sh := tb.Shares(1); !slices.Equal(sh, []Share{{Index: 10, Weight: 1}, {Index: 11, Weight: 1}, {Index: 13, Weight: 1}}) {
		t.Fatalf("Shares of a full stage = %v, want the normal instances alike", sh)
	}
}

// Without packing Route evens the loads out: a long batch gives every normal
// instance the same number of flows, up to the loads' initial difference.
func TestSharesOfLeastLoadedRoutingAreEqual(t *testing.T) {
	insts := []InstanceLoad{{Index: 10, Load: 3}, {Index: 11}, {Index: 12, Load: 1}, {Index: 13, Overloaded: true}}
	tb := stageWith(t, insts, 0, 0)
	want := []Share{{Index: 10, Weight: 1}, {Index: 11, Weight: 1}, {Index: 12, Weight: 1}}
	if sh := tb.Shares(1); !slices.Equal(sh, want) {
		t.Fatalf("Shares = %v, want %v", sh, want)
	}
	c := count(routeN(t, tb, 0, 300))
	for _, s := range want {
		if c[s.Index] < 97 || c[s.Index] > 103 {
			t.Errorf("a batch of 300 put %v on %d, want 100 ± 3 (the initial loads): %v", c[s.Index], s.Index, c)
		}
	}
	// no normal instance: the overloaded ones alike
	tb = stageWith(t, []InstanceLoad{{Index: 10, Load: 3, Overloaded: true}, {Index: 11, Overloaded: true}}, 4, 0)
	if sh := tb.Shares(1); !slices.Equal(sh, []Share{{Index: 10, Weight: 1}, {Index: 11, Weight: 1}}) {
		t.Fatalf("Shares without a normal instance = %v, want both overloaded alike", sh)
	}
	if sh := stageWith(t, nil, 0, 0).Shares(1); sh != nil {
		t.Fatalf("Shares without instances = %v, want none", sh)
	}
	if sh := tb.Shares(2); sh != nil {
		t.Fatalf("Shares of stage 2 of a 1-stage table = %v, want none", sh)
	}
}

// Past the spread limit Route sends the next flow to the overloaded
// instance with the fewest flows: that one alone.
func TestSharesPastTheSpreadLimit(t *testing.T) {
	insts := []InstanceLoad{{Index: 10, Load: 5}, {Index: 11, Load: 2, Overloaded: true}, {Index: 12, Load: 1, Overloaded: true}}
	tb := stageWith(t, insts, 0, 5)
	if sh, x := tb.Shares(1), routeN(t, tb, 0, 1); !slices.Equal(sh, []Share{{Index: 12, Weight: 1}}) || x[0] != 12 {
		t.Fatalf("Shares = %v, Route chose %v; want 12 alone", sh, x)
	}
}
