//go:build !race

package routing

import "testing"

// TestRouteDoesNotAllocate: Route's hot path (entry, transit, exit, drop)
// makes no heap allocation. Not a timing assertion; the race detector's
// instrumentation allocates, hence the build tag.
func TestRouteDoesNotAllocate(t *testing.T) {
	tables, c := threeDC(t)
	entry := callerPacket(c)
	transit := tunnelled(tables[0].Route(entry))
	exit := tunnelled(tables[2].Route(transit))
	stale := transit
	stale.DstPort, _ = Tag{0, 1, 2}.Encode()
	for name, run := range map[string]func(){
		"entry":   func() { tables[0].Route(entry) },
		"transit": func() { tables[2].Route(transit) },
		"exit":    func() { tables[1].Route(exit) },
		"drop":    func() { tables[2].Route(stale) },
	} {
		if n := testing.AllocsPerRun(200, run); n != 0 {
			t.Errorf("%s: %v allocations per Route", name, n)
		}
	}
}
