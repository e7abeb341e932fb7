package openstack

import (
	"testing"
	"time"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ims-orch/ims-orch/drivers"
)

func TestSubscribeEmitsStateChanges(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.PollInterval = Duration(2 * time.Second)
	d, clk := newTestDriver(t, f, cfg)
	f.addServer("a1", "ACTIVE", ours("dc-a", "a1"), Tag)
	f.bootReads = 1
	_, err := d.Launch(ctx, spec("dc-a", "a2")) // BUILD; ACTIVE after one more read
	th.AssertNoErr(t, err)

	var got []drivers.Event
	cancel := d.Subscribe(func(e drivers.Event) { got = append(got, e) })
	clk.Advance(2 * time.Second) // baseline: a1 active, a2 booting -> no events
	th.AssertEquals(t, 0, len(got))

	clk.Advance(2 * time.Second) // a2 became ACTIVE
	th.AssertEquals(t, 1, len(got))
	th.AssertEquals(t, drivers.Event{ID: "a2", DC: "dc-a", VNF: "pcscf", State: drivers.StateActive,
		Reason: "state active", At: clk.Now()}, got[0])

	// deleted behind our back: reported gone once
	f.mu.Lock()
	for id, s := range f.servers {
		if s.Name == "a1" {
			delete(f.servers, id)
		}
	}
	f.mu.Unlock()
	f.addServer("b1", "ERROR", ours("dc-b", "b1"), Tag)
	clk.Advance(2 * time.Second)
	th.AssertEquals(t, 3, len(got))
	th.AssertEquals(t, drivers.Event{ID: "b1", DC: "dc-b", VNF: "pcscf", State: drivers.StateError, Reason: "appeared", At: clk.Now()}, got[1])
	th.AssertEquals(t, drivers.Event{ID: "a1", DC: "dc-a", VNF: "pcscf", State: drivers.StateGone, Reason: "vanished", At: clk.Now()}, got[2])
	clk.Advance(2 * time.Second)
	th.AssertEquals(t, 3, len(got))

	// an API outage is not "everything vanished"; the poller does not retry
	// (its next tick does), so nothing blocks the clock
	f.inject("list", fault{status: 500, file: "internal_500.json"})
	clk.Advance(2 * time.Second)
	th.AssertEquals(t, 3, len(got))
	clk.Advance(2 * time.Second) // the API is back: still nothing changed
	th.AssertEquals(t, 3, len(got))

	cancel()
	f.addServer("a9", "ACTIVE", ours("dc-a", "a9"), Tag)
	clk.Advance(10 * time.Second)
	th.AssertEquals(t, 3, len(got)) // unsubscribed
	th.AssertNoErr(t, d.Close())
	if clk.Pending() != 0 {
		t.Errorf("%d timers pending after Close", clk.Pending())
	}
}

func TestDiffOrder(t *testing.T) {
	at := time.Unix(5, 0)
	prev := map[string]drivers.Instance{"a/1": {ID: "1", DC: "a", State: drivers.StateBooting}, "a/2": {ID: "2", DC: "a", State: drivers.StateActive}}
	cur := map[string]drivers.Instance{"a/1": {ID: "1", DC: "a", State: drivers.StateError}, "a/0": {ID: "0", DC: "a", State: drivers.StateBooting}}
	got := diff(prev, cur, at)
	want := []drivers.Event{
		{ID: "0", DC: "a", State: drivers.StateBooting, Reason: "appeared", At: at},
		{ID: "1", DC: "a", State: drivers.StateError, Reason: "state error", At: at},
		{ID: "2", DC: "a", State: drivers.StateGone, Reason: "vanished", At: at},
	}
	th.AssertDeepEquals(t, want, got)
}

// Of several servers with one instance id the poller reports the newest,
// as the look-ups and Plan take it (nova review L2): an older server in
// ERROR whose Nova id sorts after the instance's (Nova ids are random) is
// no reason to report the healthy instance failed.
func TestThePollerReportsTheNewestOfSeveralServers(t *testing.T) {
	f := newFakeNova(t)
	cfg := testConfig()
	cfg.PollInterval = Duration(2 * time.Second)
	d, clk := quietDriver(t, f, cfg)
	instance := f.addServer("d1", "ACTIVE", ours("dc-a", "d1"), Tag)
	var got []drivers.Event
	cancel := d.Subscribe(func(e drivers.Event) { got = append(got, e) })
	defer cancel()
	clk.Advance(2 * time.Second) // baseline: d1 active
	older := f.addServer("d1", "ERROR", ours("dc-a", "d1"), Tag)
	f.mu.Lock()
	f.servers[older].Created = f.servers[instance].Created.Add(-time.Minute)
	f.mu.Unlock()
	clk.Advance(2 * time.Second)
	if len(got) != 0 {
		t.Fatalf("an older server of d1 (ERROR, Nova id %s after %s) made the poller report %+v", older, instance, got)
	}
}
