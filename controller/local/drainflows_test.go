package local

import (
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A report that could not count flows (Stats.FlowsUnknown: the real data
// plane when its switch's rules could not be read) does not say an
// instance is empty: the interval's trim drains it instead of destroying
// it, and the draining rules wait for a report that counted 0 flows.
// Before, the trim destroyed such an instance at once with calls pinned to
// it.
func TestDrainingWaitsForCountedFlows(t *testing.T) {
	cfg := fwConfig(1)
	cfg.TrimBuffer = true
	e := newEnv(t, cfg, fake.Options{})
	e.seconds(1)
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(2)
	e.round(2, map[string]int{"firewall": 1})
	buf := e.c.Buffer("firewall")
	if len(buf) != 1 {
		t.Fatalf("buffered %v, want 1", buf)
	}
	id := buf[0].ID
	e.load[id] = Stats{CPU: 1, PktRate: 50, FlowsUnknown: true}
	e.seconds(2)
	e.round(3, map[string]int{"firewall": 1}) // the trim: a whole interval in the buffer
	if st := e.state(id); st != StateDraining {
		t.Fatalf("%s is %q after the trim, want draining (its flows were not counted)", id, st)
	}
	e.seconds(3)
	if st := e.state(id); st != StateDraining {
		t.Fatalf("%s is %q after uncounted reports of 0 flows, want still draining", id, st)
	}
	e.load[id] = Stats{CPU: 1, PktRate: 50, Flows: 2}
	e.seconds(2)
	if st := e.state(id); st != StateDraining {
		t.Fatalf("%s is %q with 2 flows counted, want draining", id, st)
	}
	destroyed := func() bool {
		for _, a := range e.c.Actions() {
			if a.Kind == KindDestroy && a.InstanceID == id {
				return true
			}
		}
		return false
	}
	if destroyed() {
		t.Fatalf("%s destroyed before a report counted 0 flows: %+v", id, e.c.Actions())
	}
	e.load[id] = Stats{CPU: 0, Flows: 0}
	e.seconds(1)
	if !destroyed() {
		t.Fatalf("%s not destroyed after a report that counted 0 flows (state %q)", id, e.state(id))
	}
}
