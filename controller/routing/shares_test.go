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

// sharesOf is Shares as a map index → weight.
func sharesOf(sh []Share) map[uint8]float64 {
	c := map[uint8]float64{}
	for _, s := range sh {
		c[s.Index] = s.Weight
	}
	return c
}

// count is how many of got went to each index.
func count(got []uint8) map[uint8]float64 {
	c := map[uint8]float64{}
	for _, x := range got {
		c[x]++
	}
	return c
}

// Shares(stage, batch) is where Route puts the next batch flows: the same
// counts as routing them, for packing, least-loaded and the spread limit,
// and the table's loads are untouched.
func TestSharesAreRoutesNextFlows(t *testing.T) {
	for _, c := range []struct {
		name         string
		insts        []InstanceLoad
		pack, spread float64
		batch        int
		want         map[uint8]float64
	}{
		// packing: the next flows go to the most-loaded with room, not
		// in proportion to the room (that gave 21 most of them)
		{"packing, room 1 on the fullest", []InstanceLoad{{Index: 20, Load: 9}, {Index: 21, Load: 1}}, 10, 0, 2, map[uint8]float64{20: 1, 21: 1}},
		{"packing, room 40 on the fullest", []InstanceLoad{{Index: 20, Load: 300}, {Index: 21, Load: 20}}, 340, 0, 2, map[uint8]float64{20: 2}},
		{"packing, overloaded and full skipped", []InstanceLoad{{Index: 10, Load: 5}, {Index: 11}, {Index: 12, Load: 8, Overloaded: true}, {Index: 13, Load: 10}}, 10, 0, 7, map[uint8]float64{10: 5, 11: 2}},
		{"packing, stage full: least-loaded", []InstanceLoad{{Index: 10, Load: 10}, {Index: 11, Load: 10}}, 10, 0, 3, map[uint8]float64{10: 2, 11: 1}},
		// without packing: the emptiest first, then alike
		{"least-loaded, 100 and 0", []InstanceLoad{{Index: 10, Load: 100}, {Index: 11}}, 0, 0, 2, map[uint8]float64{11: 2}},
		{"least-loaded, evens out", []InstanceLoad{{Index: 10, Load: 3}, {Index: 11}, {Index: 12, Load: 1}, {Index: 13, Overloaded: true}}, 0, 0, 7, map[uint8]float64{10: 1, 11: 4, 12: 2}},
		{"no normal instance", []InstanceLoad{{Index: 10, Load: 3, Overloaded: true}, {Index: 11, Overloaded: true}}, 4, 0, 2, map[uint8]float64{11: 2}},
		{"past the spread limit", []InstanceLoad{{Index: 10, Load: 5}, {Index: 11, Load: 2, Overloaded: true}, {Index: 12, Load: 1, Overloaded: true}}, 0, 5, 2, map[uint8]float64{12: 1, 11: 1}},
	} {
		tb := stageWith(t, c.insts, c.pack, c.spread)
		sh := tb.Shares(1, c.batch, nil)
		if got := sharesOf(sh); !mapsEqual(got, c.want) {
			t.Errorf("%s: Shares = %v, want %v", c.name, sh, c.want)
		}
		if !slices.IsSortedFunc(sh, func(a, b Share) int {
			return slices.IndexFunc(c.insts, func(x InstanceLoad) bool { return x.Index == a.Index }) -
				slices.IndexFunc(c.insts, func(x InstanceLoad) bool { return x.Index == b.Index })
		}) {
			t.Errorf("%s: Shares %v not in SetInstances' order", c.name, sh)
		}
		if again := tb.Shares(1, c.batch, nil); !slices.Equal(again, sh) {
			t.Errorf("%s: Shares changed the loads: %v then %v", c.name, sh, again)
		}
		if got := count(routeN(t, tb, 0, c.batch)); !mapsEqual(got, c.want) {
			t.Errorf("%s: Route put the next %d flows %v, Shares said %v", c.name, c.batch, got, c.want)
		}
	}
}

func mapsEqual(a, b map[uint8]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// use leaves instances out as if they were not registered; no instance, a
// batch < 1 or a stage out of range give none.
func TestSharesEdges(t *testing.T) {
	tb := stageWith(t, []InstanceLoad{{Index: 20, Load: 9}, {Index: 21, Load: 1}, {Index: 22, Load: 5}}, 10, 0)
	if sh := tb.Shares(1, 2, func(i uint8) bool { return i != 20 }); !slices.Equal(sh, []Share{{Index: 22, Weight: 2}}) {
		t.Errorf("Shares without 20 = %v, want 22 alone (the fullest left with room)", sh)
	}
	if sh := tb.Shares(1, 2, func(uint8) bool { return false }); sh != nil {
		t.Errorf("Shares with no instance usable = %v, want none", sh)
	}
	if sh := tb.Shares(1, 0, nil); sh != nil {
		t.Errorf("Shares of a batch of 0 = %v, want none", sh)
	}
	if sh := tb.Shares(2, 2, nil); sh != nil {
		t.Errorf("Shares of stage 2 of a 1-stage table = %v, want none", sh)
	}
	if sh := stageWith(t, nil, 0, 0).Shares(1, 2, nil); sh != nil {
		t.Errorf("Shares without instances = %v, want none", sh)
	}
}
