package global

import (
	"reflect"
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// A DC that stops reporting: its series are missing (held, not zero) for
// SilentHoldRounds rounds, then 0; a DC that reports its kind without a pair
// has 0 on that pair at once; a fresh report ends the hold.
func TestSilentDCHeldNotZero(t *testing.T) {
	s := newSilence()
	series := map[string]bool{"dp/a/b": true, "dp/b/a": true, "dp/c/a": true}
	pl := func(a, b string, r float64) protocol.PairLoad { return protocol.PairLoad{Entry: a, Exit: b, Rate: r} }
	round := func(r uint64, reports ...protocol.WorkloadReport) (map[string]float64, []string, []string) {
		in := newIntake()
		for _, rep := range reports {
			in.add(rep)
		}
		s.learn(&in)
		avg, kinds := in.averages()
		held, dcs := s.fill(series, avg, &in, kinds, r, 3)
		return avg, held, dcs
	}
	all := []protocol.WorkloadReport{
		{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 100)}},
		{DC: "b", Kind: KindDP, Pairs: []protocol.PairLoad{pl("b", "a", 50)}},
		{DC: "c", Kind: KindDP, Pairs: []protocol.PairLoad{pl("c", "a", 70)}},
	}
	if _, held, _ := round(1, all...); len(held) != 0 {
		t.Fatalf("held %v with every DC reporting", held)
	}
	// b silent, c reports its kind but no pair (no traffic)
	quiet := []protocol.WorkloadReport{all[0], {DC: "c", Kind: KindDP}}
	for r := uint64(2); r <= 4; r++ {
		avg, held, dcs := round(r, quiet...)
		if !reflect.DeepEqual(held, []string{"dp/b/a"}) || !reflect.DeepEqual(dcs, []string{"b"}) {
			t.Fatalf("round %d: held %v silent %v, want dp/b/a of b", r, held, dcs)
		}
		if _, ok := avg["dp/b/a"]; ok {
			t.Fatalf("round %d: a silent DC's series has an average %v", r, avg["dp/b/a"])
		}
		if v, ok := avg["dp/c/a"]; !ok || v != 0 {
			t.Fatalf("round %d: c reported no traffic on c→a, average %v %v", r, v, ok)
		}
	}
	// the documented timeout: 3 rounds held, then 0
	if avg, held, _ := round(5, quiet...); len(held) != 0 || avg["dp/b/a"] != 0 {
		t.Fatalf("after the hold: held %v, dp/b/a %v", held, avg["dp/b/a"])
	}
	// b reports again: counted, and a later silence is held again
	if avg, held, _ := round(6, all...); len(held) != 0 || avg["dp/b/a"] != 50 {
		t.Fatalf("b back: held %v avg %v", held, avg)
	}
	if _, held, _ := round(7, quiet...); !reflect.DeepEqual(held, []string{"dp/b/a"}) {
		t.Fatalf("b silent again: held %v", held)
	}
}
