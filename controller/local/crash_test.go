package local

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// crashCfg: one firewall kept (min 1), backoff 10 s doubling to 40 s,
// stable after 10 min.
func crashCfg() Config {
	cfg := fwConfig(1)
	cfg.CrashBackoff = CrashBackoff{Initial: 10 * time.Second, Max: 40 * time.Second, Reset: 10 * time.Minute}
	return cfg
}

// offsets are the instants of actions of a kind, as offsets from t0.
func (e *env) offsets(kind ActionKind, reason Reason) []time.Duration {
	var out []time.Duration
	for _, a := range e.actions(kind, reason) {
		out = append(out, a.At.Sub(t0))
	}
	return out
}

func ds(secs ...int) []time.Duration {
	out := make([]time.Duration, len(secs))
	for i, s := range secs {
		out[i] = time.Duration(s) * time.Second
	}
	return out
}

// A VNF whose first five instances end their boot (2 s) in error: the
// first failure is replaced at once, each further one after twice the wait
// of the one before (10 s, 20 s, 40 s), capped at Max (40 s); the sixth
// instance comes up. Each held-back replacement is a backoff action naming
// the failed instance and the instant it ends.
func TestCrashLoopBackoffDoublesTheWait(t *testing.T) {
	const boot = 2 * time.Second
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: boot, FailNext: 5})
	e.seconds(200)
	// failures at 2, 4, 16, 38, 80; replacements at 2 (at once), 4+10,
	// 16+20, 38+40, 80+40 (capped)
	if got, want := e.offsets(KindReplace, ReasonReplacement), ds(2, 14, 36, 78, 120); !slices.Equal(got, want) {
		t.Fatalf("replacements launched at %v, want %v", got, want)
	}
	if got, want := e.offsets(KindDestroy, ReasonFailure), ds(2, 4, 16, 38, 80); !slices.Equal(got, want) {
		t.Fatalf("failures at %v, want %v", got, want)
	}
	bo := e.actions(KindBackoff, ReasonReplacement)
	if got, want := e.offsets(KindBackoff, ReasonReplacement), ds(4, 16, 38, 80); !slices.Equal(got, want) {
		t.Fatalf("backoff actions at %v, want %v: %+v", got, want, bo)
	}
	launches := e.drv.Launches()
	for i, a := range bo {
		failed := launches[i+1].ID // the 2nd..5th instance failed in a row
		until := t0.Add(ds(14, 36, 78, 120)[i]).Format(time.RFC3339)
		if a.InstanceID != failed || !strings.Contains(a.Detail, fmt.Sprintf("%d quick failures in a row", i+2)) ||
			!strings.Contains(a.Detail, until) {
			t.Fatalf("backoff action %d: %+v (want %s held back until %s)", i, a, failed, until)
		}
	}
	// every deferred launch names the instance it replaces
	for i := 2; i < len(launches); i++ {
		if launches[i].Replaces != launches[i-1].ID {
			t.Fatalf("launch %d %s replaces %q, want %s", i, launches[i].ID, launches[i].Replaces, launches[i-1].ID)
		}
	}
	if len(launches) != 6 || len(e.c.Routable("firewall")) != 1 {
		t.Fatalf("%d launches, routable %+v", len(launches), e.c.Routable("firewall"))
	}
	b := e.c.Backoffs()
	if len(b) != 1 || b[0].Failures != 5 || b[0].Holding(e.clk.Now()) || b[0].Owed != 0 || !strings.Contains(b[0].LastFailure, launches[4].ID) {
		t.Fatalf("backoffs after the loop %+v", b)
	}
}

// The state is visible while it holds: Backoffs and Counts say until when
// and after how many failures; it ends on the instant.
func TestCrashLoopBackoffVisible(t *testing.T) {
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second, FailNext: 2})
	e.seconds(5) // failures at 2 and 4: held back until 14
	b := e.c.Backoffs()
	want := t0.Add(14 * time.Second)
	if len(b) != 1 || b[0].VNF != "firewall" || b[0].Failures != 2 || !b[0].Until.Equal(want) || b[0].Owed != 1 || !b[0].Holding(e.clk.Now()) {
		t.Fatalf("backoffs %+v, want 2 failures, until %v, 1 owed", b, want)
	}
	if s := b[0].String(); !strings.Contains(s, "held back until "+want.Format(time.RFC3339)+" after 2 failure(s) in a row") {
		t.Fatalf("backoff text %q", s)
	}
	if cb := e.c.Counts()["firewall"].Backoff; cb == nil || *cb != b[0] {
		t.Fatalf("counts backoff %+v, want %+v", cb, b[0])
	}
	e.clk.Advance(14*time.Second - 5*time.Second - time.Nanosecond)
	if n := len(e.drv.Launches()); n != 2 {
		t.Fatalf("%d launches before the backoff ends, want 2", n)
	}
	e.clk.Advance(time.Nanosecond)
	if n := len(e.drv.Launches()); n != 3 {
		t.Fatalf("%d launches when the backoff ends, want 3", n)
	}
	if b := e.c.Backoffs(); len(b) != 1 || b[0].Holding(e.clk.Now()) || !b[0].Until.IsZero() || b[0].Owed != 0 {
		t.Fatalf("backoffs after the launch %+v", b)
	}
}

// A replacement up for Reset ends the loop (a backoff action says so): the
// next failure is replaced at once again, the one after waits Initial (the
// count starts over). One up for less than Reset does not: its failure is
// the next in the row.
func TestCrashLoopResetAfterAStablePeriod(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   time.Duration // how long the replacement runs before it dies
		// wait before the replacement of the dying replacement
		wait time.Duration
	}{
		{"reset after 10 min", 10 * time.Minute, 0},
		{"no reset after 9m59s", 10*time.Minute - time.Second, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second, FailNext: 2})
			e.seconds(16) // failures at 2, 4; third instance launched at 14, up at 16
			up := e.c.Routable("firewall")
			if len(up) != 1 || !e.clk.Now().Equal(t0.Add(16*time.Second)) {
				t.Fatalf("routable %+v at %v", up, e.clk.Now())
			}
			e.seconds(int((tc.up - time.Second) / time.Second))
			if b := e.c.Backoffs(); len(b) != 1 {
				t.Fatalf("loop reset before the replacement was up for 10 min: %+v", b)
			}
			e.second()
			ended := e.actions(KindBackoff, ReasonReplacement)
			if reset := len(e.c.Backoffs()) == 0; reset != (tc.wait == 0) {
				t.Fatalf("after %v up: backoffs %+v", tc.up, e.c.Backoffs())
			}
			if tc.wait == 0 && (len(ended) != 2 || ended[1].InstanceID != "" || !strings.Contains(ended[1].Detail, "crash loop over after 2 quick failures")) {
				t.Fatalf("no action says the loop ended: %+v", ended)
			}
			died := e.clk.Now()
			e.drv.Kill(up[0].ID)
			e.clk.Advance(0)
			e.seconds(25)
			rep := e.actions(KindReplace, ReasonReplacement)
			if got := rep[len(rep)-1].At.Sub(died); got != tc.wait {
				t.Fatalf("replacement of the stable instance %v after its death, want %v", got, tc.wait)
			}
			if tc.wait > 0 {
				return
			}
			// the count started over: the next quick failure waits Initial
			next := e.c.Routable("firewall")[0].ID
			died = e.clk.Now()
			e.drv.Kill(next)
			e.clk.Advance(0)
			e.seconds(12)
			rep = e.actions(KindReplace, ReasonReplacement)
			if got := rep[len(rep)-1].At.Sub(died); got != 10*time.Second {
				t.Fatalf("quick failure after the reset replaced %v after it, want 10s", got)
			}
		})
	}
}

// While a replacement is held back, the DC reports what it has: the
// missing instance is counted neither working nor booting, so the round
// does not plan with its capacity; but it counts for the target (it comes
// when its backoff ends), so a round asking for the same count launches
// nothing more and one asking for one more launches one.
func TestCrashLoopCapacityNotCounted(t *testing.T) {
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second})
	e.round(0, map[string]int{"firewall": 3})
	e.seconds(3)
	e.drv.SetFailNext(1)
	victim := e.c.Routable("firewall")[0].ID
	e.drv.Kill(victim) // replaced at once; the replacement fails at boot
	e.clk.Advance(0)
	e.seconds(2)
	if n, h := len(e.drv.Launches()), e.c.Backoffs(); n != 4 || len(h) != 1 || h[0].Owed != 1 || !h[0].Holding(e.clk.Now()) {
		t.Fatalf("%d launches, backoffs %+v: want the second replacement held back", n, h)
	}
	v := e.req(1, protocol.StepAcquire, nil).Provision.VNFs[0]
	if v.Working != 2 || v.Booting != 0 {
		t.Fatalf("provision %+v during the backoff: want 2 working, none booting", v)
	}
	if r := e.req(1, protocol.StepBroadcast, decision(1, map[string]int{"firewall": 3})); r.Created != 0 || r.Error != "" {
		t.Fatalf("round with the same target: %+v", r)
	}
	e.req(1, protocol.StepEnter, nil)
	e.req(2, protocol.StepAcquire, nil)
	if r := e.req(2, protocol.StepBroadcast, decision(2, map[string]int{"firewall": 4})); r.Created != 1 {
		t.Fatalf("round with one more: %+v, want 1 launched", r)
	}
	e.req(2, protocol.StepEnter, nil)
	e.seconds(9)                                 // the others keep reporting
	e.clk.Advance(time.Second - time.Nanosecond) // held 10 s from the second failure
	if n := len(e.drv.Launches()); n != 5 {
		t.Fatalf("%d launches before the backoff ended, want 5", n)
	}
	e.clk.Advance(time.Nanosecond)
	if n := len(e.drv.Launches()); n != 6 || e.working("firewall") != 4 {
		t.Fatalf("%d launches, %d working when the backoff ended: want 6, 4", n, e.working("firewall"))
	}
}

// Instances failing at once (a host, a switch) are different slots: each is
// replaced at once, none held back.
func TestSimultaneousFailuresReplacedAtOnce(t *testing.T) {
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second})
	e.round(0, map[string]int{"firewall": 4})
	e.seconds(3)
	for _, r := range e.c.Routable("firewall") {
		e.drv.Kill(r.ID)
	}
	e.clk.Advance(0)
	if n := len(e.drv.Launches()); n != 8 || len(e.actions(KindBackoff, ReasonReplacement)) != 0 || len(e.c.Backoffs()) != 0 {
		t.Fatalf("%d launches, backoffs %+v: want 4 replacements at once", n, e.c.Backoffs())
	}
}

// With the backoff off (Initial negative) every failure is replaced at once.
func TestCrashLoopBackoffOff(t *testing.T) {
	cfg := crashCfg()
	cfg.CrashBackoff = CrashBackoff{Initial: -1}
	e := newEnv(t, cfg, fake.Options{BootDelay: 2 * time.Second, FailNext: 4})
	e.seconds(12)
	if got, want := e.offsets(KindReplace, ReasonReplacement), ds(2, 4, 6, 8); !slices.Equal(got, want) {
		t.Fatalf("replacements at %v, want %v", got, want)
	}
	if len(e.c.Backoffs()) != 0 || len(e.actions(KindBackoff, ReasonReplacement)) != 0 {
		t.Fatalf("backoff state with the backoff off: %+v", e.c.Backoffs())
	}
}

func TestCrashBackoffDelayAndDefaults(t *testing.T) {
	b, err := CrashBackoff{}.WithDefaults("x")
	if err != nil || b != DefaultCrashBackoff {
		t.Fatalf("defaults %+v %v", b, err)
	}
	var got []time.Duration
	for n := 0; n <= 10; n++ {
		got = append(got, b.Delay(n))
	}
	want := ds(0, 0, 10, 20, 40, 80, 160, 300, 300, 300, 300)
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	if d := b.Delay(1 << 30); d != 5*time.Minute {
		t.Fatalf("delay after 2^30 failures %v", d)
	}
	for _, tc := range []struct {
		b    CrashBackoff
		want string
	}{
		{CrashBackoff{Max: -time.Second}, "crashBackoff.max -1s: must not be negative"},
		{CrashBackoff{Reset: -time.Second}, "crashBackoff.reset -1s: must not be negative"},
		{CrashBackoff{Initial: time.Minute, Max: 30 * time.Second}, "crashBackoff.max 30s: below local: config crashBackoff.initial 1m0s"},
	} {
		cfg := fwConfig(1)
		cfg.CrashBackoff = tc.b
		if _, err := New(cfg, nil, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: error %v, want %q", tc.b, err, tc.want)
		}
	}
}

// A held-back replacement whose launch the cloud refuses is still owed,
// its row kept: the retry after RetryBackoff names the failed instance.
func TestCrashLoopRefusedLaunchStillOwed(t *testing.T) {
	refuse := 0
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second, FailNext: 2, Reject: func(drivers.Spec) error {
		if refuse > 0 {
			refuse--
			return drivers.ErrCapacity
		}
		return nil
	}})
	e.seconds(5) // failures at 2 and 4: the third launch held until 14
	refuse = 1
	e.seconds(10) // at 14 the cloud refuses it; retried after RetryBackoff (10 s)
	if n := len(e.drv.Launches()); n != 2 {
		t.Fatalf("%d launches accepted, want 2", n)
	}
	e.seconds(10)
	l := e.drv.Launches()
	if len(l) != 3 || l[2].Replaces != l[1].ID {
		t.Fatalf("launches %+v: want the retry to replace %s", l, l[1].ID)
	}
	rep := e.actions(KindReplace, ReasonReplacement)
	if last := rep[len(rep)-1]; !strings.Contains(last.Detail, "replaces "+l[1].ID) {
		t.Fatalf("retry recorded as %+v", last)
	}
}

// A round that lowers the target below what a held-back replacement would
// fill drops the replacement: its backoff timer is stopped, so nothing is
// launched when the backoff would have ended.
func TestCrashLoopDroppedReplacementStopsItsTimer(t *testing.T) {
	e := newEnv(t, crashCfg(), fake.Options{BootDelay: 2 * time.Second})
	e.round(0, map[string]int{"firewall": 3})
	e.seconds(3)
	e.drv.SetFailNext(1)
	e.drv.Kill(e.c.Routable("firewall")[0].ID) // replaced at once; the replacement fails at boot
	e.clk.Advance(0)
	e.seconds(2)
	if n, h := len(e.drv.Launches()), e.c.Backoffs(); n != 4 || len(h) != 1 || h[0].Owed != 1 || !h[0].Holding(e.clk.Now()) {
		t.Fatalf("%d launches, backoffs %+v: want the second replacement held back", n, h)
	}
	pending := e.clk.Pending()
	e.round(1, map[string]int{"firewall": 2}) // the two working instances suffice
	e.seconds(1)                              // the tick's refill finds nothing missing
	if h := e.c.Backoffs(); len(h) == 1 && h[0].Owed != 0 {
		t.Fatalf("backoffs %+v after the target went down: want nothing owed", h)
	}
	if p := e.clk.Pending(); p >= pending {
		t.Fatalf("%d timers pending after the owed replacement was dropped, %d before: its backoff timer was not stopped", p, pending)
	}
	e.seconds(30)
	if n := len(e.drv.Launches()); n != 4 {
		t.Fatalf("%d launches after the backoff's end, want 4 (the replacement was no longer owed)", n)
	}
}

// Crash loops that end on the same tick are recorded in instance-ID order,
// not in the registry's map order (the action history is compared between
// runs of the same seed).
func TestCrashLoopsEndingTogetherRecordedInIDOrder(t *testing.T) {
	ids := []string{"firewall-1", "firewall-2", "firewall-3", "firewall-4", "firewall-5"}
	for range 10 {
		e := newEnv(t, crashCfg(), fake.Options{})
		e.c.mu.Lock()
		long := e.clk.Now().Add(-time.Hour)
		for _, id := range ids {
			in := &inst{Instance: Instance{ID: id, VNF: "firewall", State: StateNormal, CloudState: drivers.StateActive},
				activeSince: long, crashes: 2}
			e.c.insts[id] = in
		}
		e.c.crashResetLocked()
		e.c.mu.Unlock()
		var got []string
		for _, a := range e.actions(KindBackoff, ReasonReplacement) {
			for _, id := range ids {
				if strings.Contains(a.Detail, id) {
					got = append(got, id)
				}
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("loops ended in order %v, want %v", got, ids)
		}
	}
}
