package openstack

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// quiet sends the driver's log (the re-issued deletes) nowhere.
func quiet(d *Driver) { d.SetLogger(slog.New(slog.DiscardHandler)) }

// quietDriver is newTestDriver with the driver's log discarded.
func quietDriver(t *testing.T, f *fakeNova, cfg Config) (*Driver, *clock.Virtual) {
	d, clk := newTestDriver(t, f, cfg)
	quiet(d)
	return d, clk
}

// refuseDeletes makes Nova answer every DELETE of one Terminate (its
// retries included) 503: the Terminate gives up.
func refuseDeletes(f *fakeNova, cfg Config) {
	for range cfg.Retries + 1 {
		f.inject("delete", fault{status: 503, file: "unavailable_503.json"})
	}
}

// launchedOne is a fake Nova and a quiet driver on it (testConfig) that
// launched instance id in dc-a.
func launchedOne(t *testing.T, id string) (*fakeNova, *Driver, *clock.Virtual, drivers.Instance) {
	t.Helper()
	f := newFakeNova(t)
	d, clk := quietDriver(t, f, testConfig())
	in, err := d.Launch(ctx, spec("dc-a", id))
	th.AssertNoErr(t, err)
	return f, d, clk, in
}

// giveUp terminates instance id with every DELETE refused (refuseDeletes):
// the Terminate must return an error.
func giveUp(t *testing.T, f *fakeNova, d *Driver, clk *clock.Virtual, id string) {
	t.Helper()
	refuseDeletes(f, d.cfg)
	if err := inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", id) }); err == nil {
		t.Fatalf("Terminate of %s with every DELETE refused: no error (%d DELETEs sent in all)", id, f.deletes)
	}
}

// listed lists every DC as a Reconciler's pass does (List, then
// ReissueDeletes from it) and returns instance id as listed.
func listed(t *testing.T, d *Driver, id string) (drivers.Instance, bool) {
	t.Helper()
	l, err := d.List(ctx, "")
	th.AssertNoErr(t, err)
	d.ReissueDeletes(ctx, "")
	for _, in := range l {
		if in.ID == id {
			return in, true
		}
	}
	return drivers.Instance{}, false
}

// terminatedInARace launches instance id in dc-a on a fake Nova and
// terminates it (in virtual time), the delete running into race and the
// DELETE requests answered with faults first.
func terminatedInARace(t *testing.T, id string, race deleteRace, faults ...fault) (*fakeNova, *Driver, *clock.Virtual, drivers.Instance) {
	t.Helper()
	f, d, clk, in := launchedOne(t, id)
	f.races = []deleteRace{race}
	f.inject("delete", faults...)
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", id) }))
	return f, d, clk, in
}

// The real Nova's delete-during-build race (tombstone.go): after Terminate
// the server is unlisted, then listed again BUILD/scheduling (not
// deleting), then destroyed. List never shows it (the conformance suite's
// RefusedSpec saw it come back), and the pass (ReissueDeletes) deletes it
// again when it is listed.
func TestListHidesATerminatedServerNovaListsAgain(t *testing.T) {
	f, d, _, _ := terminatedInARace(t, "r1", deleteRace{hidden: 1, shown: 3})
	for i := range 5 {
		if in, ok := listed(t, d, "r1"); ok {
			t.Fatalf("List %d after Terminate shows r1: %+v", i+1, in)
		}
	}
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 2, f.deletes) // Terminate's and one re-issued
	th.AssertEquals(t, uint64(1), d.ReissuedDeletes())
}

// A delete Nova lost (the server boots ACTIVE after its delete was
// accepted) does not leak the VM: the pass deletes it again, and once more
// after reissueEvery (its delete backoff, delBackoffBase) when the
// re-issued delete failed.
func TestATerminatedServerNovaKeepsIsDeletedAgain(t *testing.T) {
	f, d, clk, _ := terminatedInARace(t, "r2", deleteRace{hidden: 1, shown: 1, lost: true})
	f.inject("delete", fault{status: 500, file: "internal_500.json"}) // the first re-issue fails
	for i := range 4 {
		if in, ok := listed(t, d, "r2"); ok {
			t.Fatalf("List %d after Terminate shows r2: %+v", i+1, in)
		}
	}
	th.AssertEquals(t, 1, f.count()) // lost, and the re-issue failed: still there, hidden
	th.AssertEquals(t, 2, f.deletes)
	clk.Advance(max(reissueEvery, delBackoffBase))
	for range 3 {
		if _, ok := listed(t, d, "r2"); ok {
			t.Fatal("r2 listed")
		}
	}
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 3, f.deletes)
	th.AssertEquals(t, uint64(2), d.ReissuedDeletes())
}

// A launch of the terminated id (a replacement under the same name) makes
// a new server: the reappearing one is not taken for it, and WaitActive
// waits for the new one.
func TestLaunchAfterTerminateIgnoresTheServerNovaListsAgain(t *testing.T) {
	f, d, clk, old := terminatedInARace(t, "r3", deleteRace{shown: 10})
	again := relaunched(t, f, d, clk, "r3", old)
	in, ok := listed(t, d, "r3")
	if !ok || in.CloudID != again.CloudID {
		t.Fatalf("List: %+v %v, want the new server %s", in, ok, again.CloudID)
	}
}

// The poller reports a terminated server gone once, not "appeared" again
// when Nova lists it again.
func TestPollerDoesNotResurrectATerminatedServer(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.PollInterval = Duration(2 * time.Second)
	d, clk := quietDriver(t, f, cfg)
	f.addServer("p1", "ACTIVE", ours("dc-a", "p1"), Tag)
	var got []drivers.Event
	cancel := d.Subscribe(func(e drivers.Event) { got = append(got, e) })
	defer cancel()
	clk.Advance(2 * time.Second) // baseline
	f.races = []deleteRace{{hidden: 1, shown: 2}}
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "p1"))
	for range 4 {
		clk.Advance(2 * time.Second)
	}
	th.AssertEquals(t, 1, len(got))
	th.AssertEquals(t, drivers.StateGone, got[0].State)
	th.AssertEquals(t, "p1", got[0].ID)
}

func TestTombstonesAreBounded(t *testing.T) {
	var ts tombstones
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for i := range maxTombstones + 1 {
		ts.add(fmt.Sprintf("s%d", i), "dc-a", "x", t0)
	}
	th.AssertEquals(t, maxTombstones, ts.len(t0))
	th.AssertEquals(t, false, ts.has("s0", t0)) // the oldest went first
	th.AssertEquals(t, true, ts.has("s1", t0))
	later := t0.Add(time.Minute)
	ts.add("late", "dc-a", "y", later) // full: s1 goes
	th.AssertEquals(t, false, ts.has("s1", later))
	th.AssertEquals(t, true, ts.has("s2", t0.Add(tombstoneTTL-time.Nanosecond)))
	th.AssertEquals(t, false, ts.has("s2", t0.Add(tombstoneTTL)))
	th.AssertEquals(t, 1, ts.len(t0.Add(tombstoneTTL)))
	th.AssertEquals(t, false, ts.has("late", later.Add(tombstoneTTL)))
}

// A list asked for before the delete was answered shows the server as it
// was: hidden, but no reason to delete it again. Once due, a server is
// deleted again at most every reissueEvery.
func TestTombstoneReissueNeedsAListAskedForAfterTheDelete(t *testing.T) {
	var ts tombstones
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	dcA := map[string]bool{"dc-a": true}
	ts.add("s1", "dc-a", "x", t0.Add(-time.Minute))
	live := []servers.Server{{ID: "s1", Status: "ACTIVE"}}
	// laid, its DELETE not answered yet: no list shows what the delete did
	th.AssertEquals(t, 0, len(ts.due(live, t0.Add(-time.Second), t0.Add(-time.Second), dcA, nil)))
	ts.sent("s1", t0) // the 204
	th.AssertEquals(t, 0, len(ts.due(live, t0.Add(-time.Second), t0.Add(time.Second), dcA, nil)))
	th.AssertEquals(t, 0, len(ts.due([]servers.Server{{ID: "s1", Status: "ACTIVE", TaskState: "deleting"}}, t0, t0, dcA, nil)))
	th.AssertEquals(t, 1, len(ts.due(live, t0, t0.Add(time.Second), dcA, nil)))
	th.AssertEquals(t, 0, len(ts.due(live, t0.Add(2*time.Second), t0.Add(2*time.Second), dcA, nil)))
	th.AssertEquals(t, 1, len(ts.due(live, t0.Add(reissueEvery), t0.Add(reissueEvery+time.Second), dcA, nil)))
	th.AssertEquals(t, uint64(2), ts.reDels)
}

// A DELETE Nova accepted whose answer was lost (a 500 here; a timeout or a
// proxy's 502 alike) is retried: the retry finds the server hidden or
// deleting and must not return without a tombstone, or the build's
// clean-up lists it again (revB #3).
func TestTerminateRetryAfterALostAnswerLeavesATombstone(t *testing.T) {
	f, d, _, _ := terminatedInARace(t, "r4", deleteRace{hidden: 1, shown: 3},
		fault{status: 500, file: "internal_500.json", applied: true})
	for i := range 5 {
		if in, ok := listed(t, d, "r4"); ok {
			t.Fatalf("List %d after Terminate shows r4: %+v", i+1, in)
		}
	}
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 2, f.deletes) // Terminate's (answer lost) and one re-issued by the pass
}

// A DELETE that failed before Nova took it (a 503) is sent again by the
// retry although the server is tombstoned already.
func TestTerminateRetryResendsADeleteNovaDidNotTake(t *testing.T) {
	f, d, clk, _ := launchedOne(t, "r6")
	f.inject("delete", fault{status: 503, file: "unavailable_503.json"})
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "r6") }))
	th.AssertEquals(t, 2, f.deletes)
	if _, ok := listed(t, d, "r6"); ok {
		t.Fatal("r6 listed after Terminate")
	}
	th.AssertEquals(t, uint64(0), d.ReissuedDeletes())
}

// WaitGone (Reconciler.replace's wait) deletes again a terminated server
// whose delete Nova lost, also when the first re-issue fails, instead of
// waiting ActiveTimeout for a List that may never come (revB #5).
func TestWaitGoneReissuesALostDelete(t *testing.T) {
	f, d, clk, _ := terminatedInARace(t, "r7", deleteRace{shown: 1, lost: true})
	f.inject("delete", fault{status: 500, file: "internal_500.json"}) // the first re-issue fails
	start := clk.Now()
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.WaitGone(ctx, "dc-a", "r7") }))
	if took := clk.Now().Sub(start); took > reissueEvery+3*pollMax {
		t.Fatalf("WaitGone took %s of virtual time, want ≤ reissueEvery + 3 polls (Nova shows it deleting for one)", took)
	}
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 3, f.deletes) // Terminate's, the failed re-issue, the one after reissueEvery
	th.AssertEquals(t, uint64(2), d.ReissuedDeletes())
}

// A lost delete whose re-issues keep failing: the server stays tombstoned
// as long as Nova lists it (past tombstoneTTL), so it never shows up beside
// a relaunch of its id, and Terminate of that id deletes the new server,
// not the phantom (revB #4).
func TestATombstoneLastsWhileNovaListsTheServer(t *testing.T) {
	f, d, clk, old := terminatedInARace(t, "r5", deleteRace{shown: 1, lost: true, stuck: true})
	again, err := d.Launch(ctx, spec("dc-a", "r5"))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 2, f.creates)
	for i := range 4 { // a poller's lists, two tombstoneTTLs in all
		clk.Advance(tombstoneTTL / 2)
		l, err := d.List(ctx, "dc-a")
		th.AssertNoErr(t, err)
		for _, in := range l {
			if in.CloudID == old.CloudID {
				t.Fatalf("List %d (%s after Terminate) shows the terminated server %s", i+1, time.Duration(i+1)*tombstoneTTL/2, old.CloudID)
			}
		}
	}
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "r5"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[again.CloudID]; ok && s.Task != "deleting" {
		t.Fatalf("Terminate left the relaunched server %s %s/%s", again.CloudID, s.Status, s.Task)
	}
	if _, ok := f.servers[old.CloudID]; !ok {
		t.Fatal("the stuck server went away: the test lost its premise")
	}
}

// A sighting restarts a tombstone's TTL and makes it the most recently
// seen (the last to go when the table is full).
func TestTombstoneSightingRestartsItsTTL(t *testing.T) {
	var ts tombstones
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	ts.add("s1", "dc-a", "x", t0)
	ts.add("s2", "dc-a", "y", t0)
	ts.sighted([]servers.Server{{ID: "s1"}, {ID: "other"}}, t0.Add(time.Minute))
	th.AssertEquals(t, false, ts.has("s2", t0.Add(tombstoneTTL)))
	th.AssertEquals(t, true, ts.has("s1", t0.Add(tombstoneTTL)))
	th.AssertEquals(t, false, ts.has("s1", t0.Add(time.Minute+tombstoneTTL)))
	ts.add("s3", "dc-a", "z", t0)
	ts.add("s4", "dc-a", "w", t0)
	ts.sighted([]servers.Server{{ID: "s3"}}, t0.Add(time.Second))
	th.AssertDeepEquals(t, []string{"s4", "s3"}, ts.order)
}

// A driver that did not terminate the server itself (ims-orch restarted
// during the race, or another node's driver over the same cloud) has no
// tombstone of it, and still never lists it, adopts it for a launch of its
// id, nor leaves it running: Terminate marked it in Nova (its name) before
// the DELETE, and the mark outlives the race.
func TestARestartedDriverHidesATerminatedServerNovaListsAgain(t *testing.T) {
	f, _, _, _ := terminatedInARace(t, "r8", deleteRace{hidden: 1, shown: 3})
	restarted, _ := newTestDriver(t, f, testConfig())
	quiet(restarted)
	for i := range 5 {
		if in, ok := listed(t, restarted, "r8"); ok {
			t.Fatalf("List %d of a restarted driver shows the terminated r8: %+v", i+1, in)
		}
	}
	th.AssertEquals(t, 0, f.count())
	th.AssertEquals(t, 1, f.deletes) // Terminate's: the accepted delete took it
	th.AssertEquals(t, 2, f.updates) // the mark, again after the delete (BUILD)
	th.AssertEquals(t, Stats{Tombstones: 1, MarksAdopted: 1}, restarted.Stats())

	// a delete Nova lost: the restarted driver deletes it again, giving
	// the process that marked it reissueEvery to send its own DELETE
	fl, _, _, _ := terminatedInARace(t, "r10", deleteRace{shown: 1, lost: true})
	restartedL, clkL := newTestDriver(t, fl, testConfig())
	quiet(restartedL)
	for range 3 {
		if _, ok := listed(t, restartedL, "r10"); ok {
			t.Fatal("a restarted driver lists the terminated r10")
		}
	}
	th.AssertEquals(t, 1, fl.deletes)
	clkL.Advance(reissueEvery)
	for range 3 {
		if _, ok := listed(t, restartedL, "r10"); ok {
			t.Fatal("a restarted driver lists the terminated r10")
		}
	}
	th.AssertEquals(t, 2, fl.deletes)
	th.AssertEquals(t, 0, fl.count())
	th.AssertEquals(t, Stats{ReissuedDeletes: 1, Tombstones: 1, MarksAdopted: 1}, restartedL.Stats())

	f2, _, _, old2 := terminatedInARace(t, "r9", deleteRace{shown: 10})
	restarted2, clk2 := quietDriver(t, f2, testConfig())
	relaunched(t, f2, restarted2, clk2, "r9", old2)
}

// relaunched launches instance id again on d after old, its server, was
// terminated: d must create a new server, not adopt old, and WaitActive
// must wait for the new one. It returns the new server.
func relaunched(t *testing.T, f *fakeNova, d *Driver, clk *clock.Virtual, id string, old drivers.Instance) drivers.Instance {
	t.Helper()
	again, err := d.Launch(ctx, spec("dc-a", id))
	th.AssertNoErr(t, err)
	th.AssertEquals(t, 2, f.creates)
	if again.CloudID == old.CloudID {
		t.Fatalf("Launch of %s after Terminate returned the terminated server %s", id, old.CloudID)
	}
	up, err := inVirtualTime(clk, func() ret { in, err := d.WaitActive(ctx, "dc-a", id); return ret{in, err} }).unpack()
	th.AssertNoErr(t, err)
	th.AssertEquals(t, again.CloudID, up.CloudID)
	return again
}

// A delete Nova refuses (a 4xx: the server stays) takes the mark away
// again with the tombstone: the server is still ours and listed.
func TestARefusedTerminateUnmarksTheServer(t *testing.T) {
	f, d, _, in := launchedOne(t, "u1")
	f.inject("delete", fault{status: 403, file: "not_found_404.json"})
	if err := d.Terminate(ctx, "dc-a", "u1"); err == nil {
		t.Fatal("Terminate refused with 403: no error")
	}
	th.AssertEquals(t, 2, f.updates) // marked, then unmarked
	f.mu.Lock()
	name := f.servers[in.CloudID].Name
	f.mu.Unlock()
	th.AssertEquals(t, "u1", name)
	other, _ := newTestDriver(t, f, testConfig())
	if _, ok := listed(t, other, "u1"); !ok {
		t.Fatal("a server whose delete Nova refused is not listed by another driver")
	}
	if _, ok := listed(t, d, "u1"); !ok {
		t.Fatal("a server whose delete Nova refused is not listed")
	}
}

// A mark Nova does not take (a 5xx) does not stop the delete: the
// tombstone still covers this process.
func TestTerminateDeletesWhenTheMarkFails(t *testing.T) {
	f, d, _, _ := launchedOne(t, "u2")
	f.inject("update", fault{status: 500, file: "internal_500.json"})
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "u2"))
	th.AssertEquals(t, 1, f.deletes)
	if _, ok := listed(t, d, "u2"); ok {
		t.Fatal("u2 listed after Terminate")
	}
}

// A Terminate that gave up (every DELETE answered 503) keeps its tombstone
// (Nova may have taken one of them), but the server is not hidden for
// good: the caller's next Terminate (the local controller retries every
// tick) sends the DELETE again and reports its outcome, an error while Nova
// still refuses, nil once it took it; it no longer returns nil at once
// for a server that is still running.
func TestATerminateThatGaveUpIsRetriedByTheNextTerminate(t *testing.T) {
	f, d, clk, in := launchedOne(t, "g1")
	cfg := d.cfg
	giveUp(t, f, d, clk, "g1")
	th.AssertEquals(t, cfg.Retries+1, f.deletes)
	clk.Advance(delBackoffBase) // its delete backoff (delbackoff.go)
	giveUp(t, f, d, clk, "g1")  // the next Terminate, every DELETE refused again
	th.AssertEquals(t, 2*(cfg.Retries+1), f.deletes)
	clk.Advance(2 * delBackoffBase)
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "g1") }))
	th.AssertEquals(t, 2*(cfg.Retries+1)+1, f.deletes)
	f.mu.Lock()
	s, ok := f.servers[in.CloudID]
	f.mu.Unlock()
	if ok && s.Task != "deleting" {
		t.Fatalf("after a Terminate that returned nil the server is %s/%s", s.Status, s.Task)
	}
	th.AssertEquals(t, uint64(2), d.Stats().TerminateFailures)
}

// A list that runs while Terminate marks the server (its tombstone laid,
// the DELETE not sent yet) shows it live, as it is: hidden, but not a
// reason to delete it again (on the real Nova the mark's request made
// such lists common: 4 ACTIVE servers re-deleted in one TestIntegrationNova).
func TestAListDuringTheMarkDoesNotReissueTheDelete(t *testing.T) {
	f, d, _, _ := launchedOne(t, "m1")
	f.beforeUpdate = func() {
		if _, ok := listed(t, d, "m1"); ok {
			t.Error("m1 listed while Terminate marks it")
		}
	}
	th.AssertNoErr(t, d.Terminate(ctx, "dc-a", "m1"))
	th.AssertEquals(t, 1, f.deletes)
	th.AssertEquals(t, uint64(0), d.ReissuedDeletes())
	if _, ok := listed(t, d, "m1"); ok {
		t.Fatal("m1 listed after Terminate")
	}
}

// A server deleted while it is still being scheduled: its mark went to the
// build request and is lost (the conductor makes the instance from its own
// copy), the delete lands on the instance and races its build. Terminate
// marks a BUILD server again after the delete, so a restarted driver still
// hides what the build's clean-up lists (seen on the real Nova:
// BUILD/networking, unmarked, taken for live).
func TestAServerDeletedWhileScheduledIsMarkedAgain(t *testing.T) {
	f, d, clk, _ := launchedOne(t, "b1")
	f.lostRenames = 1
	f.races = []deleteRace{{hidden: 1, shown: 3}}
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "b1") }))
	restarted, _ := newTestDriver(t, f, testConfig())
	quiet(restarted)
	for i := range 5 {
		if in, ok := listed(t, restarted, "b1"); ok {
			t.Fatalf("List %d of a restarted driver shows b1, whose first mark was lost: %+v", i+1, in)
		}
	}
	th.AssertEquals(t, 2, f.updates)
}

// refusedWhileListed launches u1 and terminates it with the DELETE refused
// (403), a list of lister running during the unmark (the server still
// carries the mark). It returns the Terminating driver.
func refusedWhileListed(t *testing.T, f *fakeNova, lister func(d *Driver) *Driver) *Driver {
	t.Helper()
	d, _ := quietDriver(t, f, testConfig())
	l := lister(d)
	_, err := d.Launch(ctx, spec("dc-a", "u1"))
	th.AssertNoErr(t, err)
	puts := 0
	f.beforeUpdate = func() {
		if puts++; puts == 2 { // the unmark
			_, _ = l.List(ctx, "")
		}
	}
	f.inject("delete", fault{status: 403, file: "not_found_404.json"})
	if err := d.Terminate(ctx, "dc-a", "u1"); err == nil {
		t.Fatal("Terminate refused with 403: no error")
	}
	f.beforeUpdate = nil
	return d
}

// A list that lands while a refused delete's server still carries the
// mark (revB M1) adopts a tombstone from it: the unmark takes it away
// again, in another driver and in the Terminating one (its poller), so the
// server is listed and its delete is not re-sent.
func TestARefusedDeleteListedWhileMarkedIsShownAgain(t *testing.T) {
	f := newFakeNova(t)
	other, oclk := newTestDriver(t, f, testConfig())
	quiet(other)
	refusedWhileListed(t, f, func(*Driver) *Driver { return other })
	th.AssertEquals(t, uint64(1), other.Stats().MarksAdopted)
	if _, ok := listed(t, other, "u1"); !ok {
		t.Fatal("another driver that listed u1 while marked hides it after the unmark")
	}
	before := f.deletes
	oclk.Advance(11 * time.Second)
	_, _ = listed(t, other, "u1")
	th.AssertEquals(t, before, f.deletes)
	th.AssertEquals(t, uint64(0), other.Stats().ReissuedDeletes)
	th.AssertEquals(t, 0, other.Stats().Tombstones)

	f2 := newFakeNova(t)
	d := refusedWhileListed(t, f2, func(d *Driver) *Driver { return d })
	if _, ok := listed(t, d, "u1"); !ok {
		t.Fatal("the Terminating driver, whose list ran during the unmark, hides u1")
	}
	th.AssertEquals(t, 1, f2.deletes) // its list during the unmark re-sent none
	th.AssertEquals(t, Stats{TerminateFailures: 1, DeleteBackoff: 1}, d.Stats())
}

// An adopted tombstone outlives a missing mark while the server is still
// being scheduled (BUILD, no host): a server deleted while it was a build
// request is listed so, unmarked, before Nova destroys it (the mark's gap).
// Hidden, but not re-deleted (its owner may have kept it); once listed on a
// host without the mark, it is shown.
func TestAnAdoptedTombstoneOutlivesTheMarkWhileScheduling(t *testing.T) {
	f := newFakeNova(t)
	d, clk := quietDriver(t, f, testConfig())
	cloudID := f.addServer(terminatedName("s1"), "BUILD", ours("dc-a", "s1"), Tag)
	if _, ok := listed(t, d, "s1"); ok {
		t.Fatal("marked s1 listed")
	}
	f.mu.Lock()
	f.servers[cloudID].Name = "s1"
	f.servers[cloudID].getsLeft = 100
	f.mu.Unlock()
	clk.Advance(11 * time.Second)
	if _, ok := listed(t, d, "s1"); ok {
		t.Fatal("s1 listed BUILD without a host, its mark lost: the mark's gap")
	}
	th.AssertEquals(t, 0, f.deletes)
	f.mu.Lock()
	f.servers[cloudID].Host = "fake-1"
	f.mu.Unlock()
	if _, ok := listed(t, d, "s1"); !ok {
		t.Fatal("s1 on a host without the mark still hidden")
	}
}

// A Terminate that picks a server an earlier one gave up on (revB L2) and
// has its DELETE refused (4xx) keeps the tombstone and the mark: one of
// the earlier DELETEs may have been taken, only this one was refused.
func TestARefusedRetryOfATerminateThatGaveUpKeepsTheMark(t *testing.T) {
	f, d, clk, in := launchedOne(t, "g2")
	giveUp(t, f, d, clk, "g2")
	clk.Advance(delBackoffBase)
	f.inject("delete", fault{status: 403, file: "not_found_404.json"})
	if err := inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "g2") }); err == nil {
		t.Fatal("the next Terminate, its DELETE refused with 403: no error")
	}
	f.mu.Lock()
	name := f.servers[in.CloudID].Name
	f.mu.Unlock()
	th.AssertEquals(t, terminatedName("g2"), name)
	if _, ok := listed(t, d, "g2"); ok {
		t.Fatal("g2 listed after a refused retry of a Terminate that gave up")
	}
	restarted, _ := newTestDriver(t, f, testConfig())
	quiet(restarted)
	if _, ok := listed(t, restarted, "g2"); ok {
		t.Fatal("g2 listed by a restarted driver")
	}
}

// Terminate renames a server once (nova review L1): a retry of its DELETE
// (here two 503s) and the next Terminate after one that gave up find the
// server marked already and send no second PUT.
func TestTerminateMarksAServerOnce(t *testing.T) {
	f, d, clk, _ := launchedOne(t, "o1")
	f.inject("delete", fault{status: 503, file: "unavailable_503.json"}, fault{status: 503, file: "unavailable_503.json"})
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "o1") }))
	th.AssertEquals(t, 3, f.deletes)
	th.AssertEquals(t, 1, f.updates)

	_, err := d.Launch(ctx, spec("dc-a", "o2"))
	th.AssertNoErr(t, err)
	giveUp(t, f, d, clk, "o2")
	clk.Advance(delBackoffBase)
	th.AssertNoErr(t, inVirtualTime(clk, func() error { return d.Terminate(ctx, "dc-a", "o2") }))
	th.AssertEquals(t, 3+d.cfg.Retries+2, f.deletes)
	th.AssertEquals(t, 2, f.updates)
}
