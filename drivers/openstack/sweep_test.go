package openstack

import (
	"testing"

	th "github.com/gophercloud/gophercloud/v2/testhelper"
)

// The integration tests' clean-up (sweep) leaves no server behind when
// Nova loses deletes: a server a Terminate deleted whose delete Nova lost
// (hidden by its tombstone, booted ACTIVE again) and a server whose
// sweep DELETE Nova lost are deleted again, every novasweep.Resend, until Nova
// lists none (before: one DELETE per server List showed, then a wait for
// the count to reach 0, so both stayed and the wait ran out).
func TestSweepResendsLostDeletes(t *testing.T) {
	f, d, clk, _ := terminatedInARace(t, "t1", deleteRace{hidden: 1, shown: 1, lost: true})
	_, err := d.Launch(ctx, spec("dc-b", "v1"))
	th.AssertNoErr(t, err)
	l, err := d.List(ctx, "") // a user without a Reconciler: nothing re-sends t1's delete
	th.AssertNoErr(t, err)
	if len(l) != 1 || l[0].ID != "v1" {
		t.Fatalf("listed %+v, want v1 only (t1 hidden)", l)
	}
	f.mu.Lock()
	f.deletes = 0
	f.races = []deleteRace{{lost: true}, {lost: true}} // the sweep's first DELETEs: lost as well
	f.mu.Unlock()
	err = inVirtualTime(clk, func() error { return sweepServers(ctx, d, sweepLimit) })
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 4, f.deletes) // two lost, two taken
}
