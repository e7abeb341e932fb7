package dcroute

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

var (
	pathsA = []protocol.PathEntry{{Entry: "a", Exit: "b", Hops: []string{"a", "a", "a", "b"}}}
	pathsB = []protocol.PathEntry{{Entry: "a", Exit: "b", Hops: []string{"a", "b", "b", "b"}}}
)

func newRouter(t *testing.T) (*Router, *[]error, *[][2]uint64) {
	t.Helper()
	var errs []error
	var resyncs [][2]uint64
	r, err := New("a", []string{"a", "b"}, []string{"firewall", "ids"}, 0, func(e error) { errs = append(errs, e) })
	if err != nil {
		t.Fatal(err)
	}
	return r, &errs, &resyncs
}

func hop(r *Router, t *testing.T, interval uint64) placement.Path {
	t.Helper()
	p, ok := r.Path(interval, placement.Pair{Entry: 0, Exit: 1})
	if !ok {
		t.Fatalf("no path of interval %d", interval)
	}
	return p
}

// A router at interval 0 (a restarted node) that gets step 4 of round 14
// jumps to interval 14 with the committed set and follows steps 4 and 5
// without an error (issue 19: hundreds of "path set for interval 15, the
// next interval is 1" warnings per node).
func TestRouterCatchesUpAtStep4(t *testing.T) {
	r, errs, resyncs := newRouter(t)
	r.SetCommitted(func() (Committed, bool) { return Committed{Interval: 14, Current: pathsA}, true },
		func(from, to uint64) { *resyncs = append(*resyncs, [2]uint64{from, to}) })
	r.StoreNext(15, pathsB)
	r.Enter(15)
	if len(*errs) != 0 {
		t.Fatalf("errors: %v", *errs)
	}
	if r.Interval() != 15 || len(*resyncs) != 1 || (*resyncs)[0] != [2]uint64{0, 14} {
		t.Fatalf("interval %d, resyncs %v", r.Interval(), *resyncs)
	}
	// interval 14's committed set is kept as the previous one
	if got := hop(r, t, 14); got[1] != 0 {
		t.Fatalf("interval 14 path %v", got)
	}
	if got := hop(r, t, 15); got[1] != 1 {
		t.Fatalf("interval 15 path %v", got)
	}
}

// A step 5 the router cannot follow (it missed step 4) takes the entered
// set from the committed state; Sync brings a router that is behind to the
// committed interval with its current and next sets.
func TestRouterCatchesUpAtStep5AndSync(t *testing.T) {
	r, errs, _ := newRouter(t)
	c := Committed{Interval: 7, Current: pathsA, Next: pathsB, HasNext: true}
	r.SetCommitted(func() (Committed, bool) { return c, true }, nil)
	r.Enter(8) // committed still at 7 with the decision of round 7: enter its next set
	if len(*errs) != 0 || r.Interval() != 8 || hop(r, t, 8)[1] != 1 {
		t.Fatalf("errors %v, interval %d", *errs, r.Interval())
	}
	c = Committed{Interval: 20, Current: pathsA, Next: pathsB, HasNext: true}
	if !r.Behind() || !r.Sync() {
		t.Fatal("a router 12 intervals behind did not sync")
	}
	if r.Interval() != 20 || hop(r, t, 20)[1] != 0 || hop(r, t, 21)[1] != 1 || r.Behind() {
		t.Fatalf("after sync: interval %d", r.Interval())
	}
	r.Enter(21)
	if len(*errs) != 0 || r.Interval() != 21 {
		t.Fatalf("errors %v, interval %d", *errs, r.Interval())
	}
	// a stale step 4 is still an error and changes nothing
	r.StoreNext(5, pathsA)
	if len(*errs) != 1 || r.Interval() != 21 {
		t.Fatalf("stale step 4: errors %v, interval %d", *errs, r.Interval())
	}
}
