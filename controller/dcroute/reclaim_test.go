package dcroute

import (
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
)

func fillStage(t *testing.T, errs *[]error) (*Router, []local.RoutableInstance) {
	t.Helper()
	r, err := New("a", []string{"a", "b"}, []string{"firewall"}, 0, func(e error) { *errs = append(*errs, e) })
	if err != nil {
		t.Fatal(err)
	}
	var all []local.RoutableInstance
	for i := 0; i < 254; i++ { // every index 2..255
		all = append(all, local.RoutableInstance{ID: string(rune('A' + i))})
	}
	r.SetInstances("firewall", all)
	return r, all
}

// With every index taken, a new instance may reclaim only the index of a
// parked instance without load: before, the longest parked one was taken
// regardless of load, so a buffered instance's pinned calls moved silently
// to the new instance while gone instances parked after it kept theirs.
func TestReclaimSkipsALoadedParkedIndex(t *testing.T) {
	var errs []error
	r, all := fillStage(t, &errs)
	r.SetLoads(1, map[uint8]float64{2: 3}) // A (index 2) carries 3 flows
	r.SetInstances("firewall", all[1:])    // A buffered with its 3 flows
	r.SetInstances("firewall", all[3:])    // B, C leave at load 0
	r.SetInstances("firewall", append(all[3:], local.RoutableInstance{ID: "new"}))
	if got := r.InstanceID(1, 2); got != "A" {
		t.Errorf("index 2 (buffered A, 3 pinned flows) now names %q; B/C (0 flows) were reclaimable", got)
	}
	if got := r.InstanceID(1, 3); got != "new" {
		t.Errorf("index 3 (B, parked longest at load 0) names %q, want new", got)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

// When only loaded parked indices are left, a new instance is not routed
// and the error says why (its calls would have moved).
func TestReclaimFailsWhenOnlyLoadedIndicesAreParked(t *testing.T) {
	var errs []error
	r, all := fillStage(t, &errs)
	r.SetLoads(1, map[uint8]float64{2: 3})
	r.SetInstances("firewall", all[1:]) // A buffered with 3 flows
	r.SetInstances("firewall", append(all[1:], local.RoutableInstance{ID: "new"}))
	if got := r.InstanceID(1, 2); got != "A" {
		t.Errorf("index 2 names %q, want A", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "instance new not routed") || !strings.Contains(errs[0].Error(), "pinned flows") {
		t.Fatalf("errors %v, want one naming the unrouted instance and the pinned flows", errs)
	}
}

// An instance reported gone frees its index: parked ones at once, routable
// ones when they leave routing. Before, a destroyed instance stayed parked
// for ever and, after 256-N launches, every new instance was a reclaim.
func TestForgetFreesTheIndexOfAGoneInstance(t *testing.T) {
	var errs []error
	r, all := fillStage(t, &errs)
	r.SetLoads(1, map[uint8]float64{2: 3, 3: 1})
	r.SetInstances("firewall", all[2:]) // A (3 flows), B (1 flow) parked
	r.Forget("firewall", "A")           // destroyed (at its drain timeout)
	if got := r.InstanceID(1, 2); got != "" {
		t.Errorf("index 2 of gone A names %q, want free", got)
	}
	r.Forget("firewall", "C") // still routable: freed when it leaves
	r.SetInstances("firewall", all[3:])
	if got := r.InstanceID(1, 4); got != "" {
		t.Errorf("index 4 of gone C names %q, want free", got)
	}
	r.SetInstances("firewall", append(all[3:], local.RoutableInstance{ID: "n1"}, local.RoutableInstance{ID: "n2"}))
	if r.InstanceID(1, 2) != "n1" || r.InstanceID(1, 4) != "n2" || r.InstanceID(1, 3) != "B" {
		t.Errorf("indices 2,3,4 = %q %q %q, want n1 B n2", r.InstanceID(1, 2), r.InstanceID(1, 3), r.InstanceID(1, 4))
	}
	if len(r.gone[0]) != 0 {
		t.Errorf("gone set not emptied: %v", r.gone[0])
	}
	r.Forget("nope", "x") // unknown VNF: ignored
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}
