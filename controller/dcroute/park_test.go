package dcroute

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
)

// An instance that leaves routing (buffered) keeps its index, so a new
// instance does not take it while its pinned flows run, and keeps the load
// of those flows (less the ones that ended meanwhile): when it is reused it
// re-enters with that load, and packing does not fill it on top of its
// pinned calls. Before, it re-entered at load 0.
func TestBufferedInstanceKeepsItsIndexAndLoad(t *testing.T) {
	var errs []error
	r, err := New("a", []string{"a", "b"}, []string{"firewall"}, 0, func(e error) { errs = append(errs, e) })
	if err != nil {
		t.Fatal(err)
	}
	entries := []protocol.PathEntry{{Entry: "a", Exit: "b", Hops: []string{"a", "a", "b"}}}
	r.StoreNext(1, entries)
	r.Enter(1)
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: 0x0a000001, CalleeIP: 0x0a000002, CallerSendPort: 4000, CallerRecvPort: 4002,
		CalleeSendPort: 5000, CalleeRecvPort: 5002, CallerEntryIP: 0x0b000001, CalleeEntryIP: 0x0b000002}
	if err := r.AddCall(call); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPackLimit("firewall", 4); err != nil {
		t.Fatal(err)
	}
	pkt := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: call.CallerIP, SrcPort: 4000, DstIP: call.CallerEntryIP, DstPort: 5002}
	route := func() routing.Decision {
		d := r.Route(pkt)
		if d.Verdict != routing.Forward {
			t.Fatalf("not forwarded: %v", d)
		}
		return d
	}
	loads := func() map[string]float64 {
		out := map[string]float64{}
		r.View(func(tb *routing.Table, id func(int, uint8) string) {
			for _, x := range tb.Instances(1) {
				out[id(1, x.Index)] = x.Load
			}
		})
		return out
	}
	x, y, z := local.RoutableInstance{ID: "x"}, local.RoutableInstance{ID: "y"}, local.RoutableInstance{ID: "z"}
	r.SetInstances("firewall", []local.RoutableInstance{x, y})
	var onX []routing.Decision
	for i := 0; i < 3; i++ {
		d := route()
		if r.InstanceID(1, d.Instances[0]) != "x" {
			t.Fatalf("flow %d packed on %s, want x", i, r.InstanceID(1, d.Instances[0]))
		}
		onX = append(onX, d)
	}
	xIdx := onX[0].Instances[0]
	r.SetInstances("firewall", []local.RoutableInstance{y}) // x to the buffer with 3 calls
	route()                                                 // on y
	r.Release(&onX[0])                                      // one of x's calls ends while it is buffered
	r.SetInstances("firewall", []local.RoutableInstance{y, z})
	if got := r.InstanceID(1, xIdx); got != "x" {
		t.Fatalf("index %d of the buffered x now names %q: a new instance took it while x's flows run", xIdx, got)
	}
	r.SetInstances("firewall", []local.RoutableInstance{x, y, z}) // x reused
	if l := loads(); l["x"] != 2 || l["y"] != 1 || l["z"] != 0 {
		t.Fatalf("loads after reusing x: %v, want x 2 (its pinned calls), y 1, z 0", l)
	}
	if d := route(); r.InstanceID(1, d.Instances[0]) != "x" || d.Instances[0] != xIdx {
		t.Fatalf("next flow on %s (index %d), want x (index %d: its own, the most loaded with room)", r.InstanceID(1, d.Instances[0]), d.Instances[0], xIdx)
	}
	if len(errs) != 0 {
		t.Fatal(errs)
	}
}

// With every index taken, the longest parked instance's index is reused.
func TestParkedIndexReclaimedWhenNoneIsFree(t *testing.T) {
	r, err := New("a", []string{"a", "b"}, []string{"firewall"}, 0, func(e error) { t.Errorf("router: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	var all []local.RoutableInstance
	for i := 0; i < 254; i++ {
		all = append(all, local.RoutableInstance{ID: string(rune('A' + i))})
	}
	r.SetInstances("firewall", all)
	r.SetInstances("firewall", all[1:])                                            // A parked
	r.SetInstances("firewall", all[2:])                                            // then B
	r.SetInstances("firewall", append(all[2:], local.RoutableInstance{ID: "new"})) // takes A's index
	if r.InstanceID(1, 2) != "new" || r.InstanceID(1, 3) != "B" {
		t.Fatalf("index 2 %q, 3 %q: want the longest parked (A, index 2) reclaimed", r.InstanceID(1, 2), r.InstanceID(1, 3))
	}
}
