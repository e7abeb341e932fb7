package openstack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/drivers/openstack/novasweeptest"
)

// The integration tests' clean-up (sweep) leaves no server behind when
// Nova loses deletes: a server a Terminate deleted whose delete Nova lost
// (hidden by its tombstone, booted ACTIVE again) and a server whose
// sweep DELETE Nova lost are deleted again, every novasweeptest.Resend, until Nova
// lists none (before: one DELETE per server List showed, then a wait for
// the count to reach 0, so both stayed and the wait ran out). It deletes
// only the run's servers (revN3 MED-2): a tagged server of a DC the
// driver does not manage, managed by someone else, or of another run
// (session 14: its run id in RunKey) is left alone.
func TestSweepResendsLostDeletes(t *testing.T) {
	f, d, clk, _ := terminatedInARace(t, "t1", deleteRace{hidden: 1, shown: 1, lost: true})
	_, err := d.Launch(ctx, spec("dc-b", "v1"))
	th.AssertNoErr(t, err)
	foreignDC := f.addServer("x1", "ACTIVE", ours("dc-z", "x1"), Tag) // another test package's, another cloud's DC
	otherOwner := ours("dc-a", "y1")
	otherOwner["ims-orch.managed-by"] = "someone-else"
	foreignOwner := f.addServer("y1", "ACTIVE", otherOwner, Tag)
	otherRun := ours("dc-a", "z1")
	otherRun[novasweeptest.RunKey] = "an-earlier-run"
	foreignRun := f.addServer("z1", "ACTIVE", otherRun, Tag)
	// a user without a Reconciler: nothing re-sends t1's delete. The
	// driver's List does not scope by run (it must not: the run id is a
	// test's label), so z1 shows; t1 is hidden by its tombstone
	l, err := d.List(ctx, "")
	th.AssertNoErr(t, err)
	if got := ids(l); len(got) != 2 || !hasID(l, "v1") || !hasID(l, "z1") {
		t.Fatalf("listed %v, want v1 and z1 only (t1 hidden)", got)
	}
	// the tests' start-up check names z1, its run and a command deleting it
	err = noOtherRun(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "server delete --wait "+foreignRun+"\n") || !strings.Contains(err.Error(), `run "an-earlier-run": `+foreignRun) {
		t.Fatalf("noOtherRun with z1 of another run: %v", err)
	}
	f.mu.Lock()
	f.deletes = 0
	f.races = []deleteRace{{lost: true}, {lost: true}} // the sweep's first DELETEs: lost as well
	f.mu.Unlock()
	res, err := inVirtualTime(clk, func() ret3 { r, err := sweepServers(ctx, d, sweepLimit); return ret3{r, err} }).unpack()
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 4, f.deletes)                                                 // two lost, two taken
	th.AssertEquals(t, novasweeptest.Result{Servers: 2, Deletes: 4, Resent: 2}, res) // counted as sent
	if err := noOtherRun(ctx, d); err == nil {                                       // z1 is still there: only the run's were swept
		t.Fatal("noOtherRun after the sweep: nil, want z1 named")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.servers) != 3 || f.servers[foreignDC] == nil || f.servers[foreignOwner] == nil || f.servers[foreignRun] == nil {
		t.Fatalf("Nova after the sweep: %d servers (foreign DC kept %v, foreign owner kept %v, other run's kept %v); want only those three",
			len(f.servers), f.servers[foreignDC] != nil, f.servers[foreignOwner] != nil, f.servers[foreignRun] != nil)
	}
}

// A sweep that runs out of time says how many DELETEs it sent, re-sends
// included (revN3 LOW-4: it counted the servers).
func TestSweepThatGivesUpCountsItsDeletes(t *testing.T) {
	f := newFakeNova(t)
	d, clk := quietDriver(t, f, testConfig())
	md := ours("dc-a", "k1")
	md[novasweeptest.RunKey] = fakeRun
	f.refuse(f.addServer("k1", "ACTIVE", md, Tag), true) // every DELETE refused (403)
	limit := 3*novasweeptest.Resend + time.Second
	res, err := inVirtualTime(clk, func() ret3 { r, err := sweepServers(ctx, d, limit); return ret3{r, err} }).unpack()
	sent := f.reqs.take()["DELETE /servers/"]
	if sent < 2 || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d DELETEs sent (%d re-sent)", sent, sent-1)) {
		t.Fatalf("sweep of a server whose DELETEs are refused: %v; Nova got %d DELETEs", err, sent)
	}
	th.AssertEquals(t, novasweeptest.Result{Servers: 1, Deletes: sent, Resent: sent - 1}, res)
}

type ret3 struct {
	res novasweeptest.Result
	err error
}

func (r ret3) unpack() (novasweeptest.Result, error) { return r.res, r.err }

// With only the run's servers (and other DCs' or owners') on Nova, the
// start-up check passes.
func TestNoOtherRunPassesOnTheRunsOwn(t *testing.T) {
	f := newFakeNova(t)
	d, _ := quietDriver(t, f, testConfig())
	md := ours("dc-a", "k1")
	md[novasweeptest.RunKey] = fakeRun
	f.addServer("k1", "ACTIVE", md, Tag)
	f.addServer("x1", "ACTIVE", ours("dc-z", "x1"), Tag)
	if err := noOtherRun(ctx, d); err != nil {
		t.Fatal(err)
	}
}
