package local

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// flagRound runs round r with one target of the firewall, flagged as
// given.
func (e *env) flagRound(r uint64, working int, noRise, fast bool) {
	e.t.Helper()
	d := decision(r, map[string]int{"firewall": working})
	d.Targets[0].NoRise, d.Targets[0].Fast = noRise, fast
	e.roundDecision(r, d)
}

// Under NoRise an overload below the utilisation bar holds reactive
// scale-out 120 s (NoRiseConfig.Hold), not one minute; the next round
// without the flag goes back to the minute.
func TestNoRiseHoldsTheRelease(t *testing.T) {
	over := Stats{CPU: 92, Mem: 60} // below the bar 0.95
	for _, tc := range []struct {
		name      string
		noRise    bool
		none, one int // seconds of overload with no scale-out yet; with one
	}{
		{"without the flag: 1 min", false, 60, 70},
		{"no rise: 2 min", true, 120, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
			e.flagRound(1, 1, tc.noRise, false)
			id := e.ids(StateNormal)[0]
			e.load[id] = over
			e.seconds(tc.none)
			if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
				t.Fatalf("scaled out after %d s: %+v", tc.none, as)
			}
			e.seconds(tc.one - tc.none)
			as := e.actions(KindCreate, ReasonReactive)
			want := map[bool]string{false: "released after 1m0s", true: "released after 2m0s"}[tc.noRise]
			if len(as) != 1 || !strings.Contains(as[0].Detail, want) {
				t.Fatalf("reactive creates after %d s: %+v, want one %q", tc.one, as, want)
			}
		})
	}
	t.Run("the flag lasts one round", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
		e.flagRound(1, 1, true, false)
		e.flagRound(2, 1, false, false)
		e.load[e.ids(StateNormal)[0]] = over
		e.seconds(70)
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
			t.Fatalf("%d reactive creates after 70 s, want the minute's one", len(as))
		}
	})
	t.Run("a decision not naming the VNF ends it", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
		e.flagRound(1, 1, true, false)
		e.round(2, map[string]int{})
		e.load[e.ids(StateNormal)[0]] = over
		e.seconds(70)
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
			t.Fatalf("%d reactive creates after 70 s, want the minute's one", len(as))
		}
	})
}

// A round whose enter never comes (a lost global controller) ends with
// MaxPause: reactive scaling resumes and the round's NoRise is dropped,
// so the hold is one minute again.
func TestNoRiseDroppedAfterMaxPause(t *testing.T) {
	e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
	e.flagRound(1, 1, true, false)
	e.req(2, protocol.StepAcquire, nil) // paused; no step 4 or 5 follows
	e.seconds(61)                       // MaxPause (60 s) resumes reactive scaling
	e.load[e.ids(StateNormal)[0]] = Stats{CPU: 92, Mem: 60}
	e.seconds(70)
	if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 || !strings.Contains(as[0].Detail, "released after 1m0s") {
		t.Fatalf("reactive creates %+v, want one after the minute's hold", as)
	}
}

// A global lost after a round's enter (no acquire comes, so MaxPause
// never acts) does not leave the round's NoRise standing (revH MED-2): the
// flags end two round periods (measured between the last two acquires:
// 50 s) plus MaxPause (60 s) after their decision, 160 s, and after
// flagsUnmeasuredMaxAge (10 min) without a measured period. Until then
// they stand: an overload 10 s after the decision is held 2 min.
func TestNoRiseEndsWithoutRounds(t *testing.T) {
	over := Stats{CPU: 92, Mem: 60} // below the bar 0.95
	for _, tc := range []struct {
		name     string
		rounds   int // 50 s apart, the last with NoRise
		after    int // seconds from the last decision to the overload
		none, by int // seconds of overload with no reactive create; with one
	}{
		{"measured period, overload at once: held 2 min", 2, 10, 120, 130},
		{"measured period, overload at 100 s: held until 160 s", 2, 100, 55, 70},
		{"unmeasured period: held 2 min at 5 min", 1, 300, 120, 130},
		{"unmeasured period, after an hour: 1 min", 1, 3600, 55, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
			for r := 1; r <= tc.rounds; r++ {
				if r > 1 {
					e.seconds(50)
				}
				e.flagRound(uint64(r), 1, r == tc.rounds, false)
			}
			e.seconds(tc.after)
			e.load[e.ids(StateNormal)[0]] = over
			e.seconds(tc.none)
			if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
				t.Fatalf("scaled out within %d s: %+v", tc.none, as)
			}
			e.seconds(tc.by - tc.none)
			if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
				t.Fatalf("%d reactive creates within %d s of the overload, want 1", len(as), tc.by)
			}
		})
	}
}

// Under NoRise the scale-in guard counts a DP stage's instance as full at
// 99 % of its capacity (NoRiseConfig.Guard), not at its 90 % load
// threshold: four instances at 70 % (280 %) keep 3, not 4.
func TestNoRiseGuardsAt99(t *testing.T) {
	for _, tc := range []struct {
		noRise, cp bool // cp: a control-plane VNF (no PinnedFlows): its CPU threshold stays
		working    int
	}{{false, false, 4}, {true, false, 3}, {true, true, 4}} {
		cfg := utilCfg(4, 0.95)
		cfg.ScaleInGuard = true
		cfg.VNFs[0].PinnedFlows = !tc.cp
		e := newEnv(t, cfg, fake.Options{})
		for _, in := range e.c.Instances() {
			e.load[in.ID] = Stats{CPU: 70, Mem: 30, PktRate: 0.7 * 35000}
		}
		e.seconds(2)
		e.c.cfg.VNFs[0].Min, e.c.vnfs["firewall"].cfg.Min, e.c.vnfs["firewall"].base.Min = 0, 0, 0
		e.flagRound(1, 1, tc.noRise, false)
		if got := e.working("firewall"); got != tc.working {
			t.Fatalf("noRise %v cp %v: working %d after the round, want %d", tc.noRise, tc.cp, got, tc.working)
		}
	}
}

// Under NoRise anticipated scale-out leaves a VNF with at most 2 working
// instances (NoRiseConfig.AnticipateUpTo) alone: the ramp's scale-out
// comes at the overload (100 % CPU), not at 80 %; with 3 working it
// anticipates as without the flag.
func TestNoRiseSkipsAnticipation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		min     int
		noRise  bool
		wantCPU float64
	}{
		{"1 working, no flag", 1, false, 80},
		{"1 working, no rise", 1, true, 100},
		{"2 working, no rise", 2, true, 100},
		{"3 working, no rise", 3, true, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := anticipateEnv(t, tc.min, 10*time.Second, nil)
			e.flagRound(1, tc.min, tc.noRise, false)
			ids := e.ids(StateNormal)
			gotCPU := -1.0
			e.ramp(ids, 45, func(_ int, cpu float64) {
				if gotCPU < 0 && len(e.actions(KindCreate, ReasonReactive)) > 0 {
					gotCPU = cpu
				}
			})
			if gotCPU != tc.wantCPU {
				t.Fatalf("scale-out at %v %% CPU, want %v %%", gotCPU, tc.wantCPU)
			}
		})
	}
}

// fastEnv is a DP stage (capacity 35 000 packets/s) with 2 working
// instances whose boot (60 s) was seen, reactive (no anticipation, no
// overload: memory stays low), carrying 40 % each.
func fastEnv(t *testing.T) *env {
	t.Helper()
	e := anticipateEnv(t, 2, 60*time.Second, func(c *Config) { c.Anticipate = false })
	for _, id := range e.ids(StateNormal) {
		e.load[id] = share(40)
	}
	e.seconds(AnticipateRiseTicks + 1) // the rise to 40 % is out of the history's rise
	return e
}

func share(pct float64) Stats {
	return Stats{CPU: pct, Mem: 30, PktRate: pct / 100 * 35000, Flows: 100}
}

// fastRamp raises the 2 first instances' load 1 % a second from 41 % to
// 100 % and returns each deferred launch's load (the round's creates
// after the first before).
func (e *env) fastRamp(ids []string, before int) []float64 {
	e.t.Helper()
	var at []float64
	for pct := 41.0; pct <= 100; pct++ {
		for _, id := range ids {
			e.load[id] = share(pct)
		}
		e.second()
		for len(at) < len(e.actions(KindCreate, ReasonProactive))-before {
			at = append(at, pct)
		}
	}
	return at
}

// Under Fast a round's raise launches only what the measured load,
// projected at its rise over one boot (60 s), needs at 100 %: on a flat
// 80 % on 2 instances nothing; the rest comes tick by tick as the
// projection passes each instance (the tick reads the samples of the
// second before: at 53 % on each, 106 % rising 1.73 %/s over the last 15
// ticks projects 210 %, the third; at 91 %, 182 % + 2 %/s × 60 s passes
// 300 %, the fourth: the third is still booting),
// never beyond the round's target (3: the projection's 4 are not
// launched). Without the flag the round launches all at once.
func TestFastLaunchesJustInTime(t *testing.T) {
	t.Run("no flag", func(t *testing.T) {
		e := fastEnv(t)
		before := len(e.actions(KindCreate, ReasonProactive)) // Min's
		e.flagRound(1, 4, false, false)
		if got := len(e.actions(KindCreate, ReasonProactive)) - before; got != 2 {
			t.Fatalf("%d proactive creates, want 2 at once", got)
		}
	})
	for _, tc := range []struct {
		target int
		at     []float64 // loads at the deferred launches
	}{{4, []float64{54, 92}}, {3, []float64{54}}} {
		t.Run(fmt.Sprintf("fast, target %d", tc.target), func(t *testing.T) {
			e := fastEnv(t)
			before := len(e.actions(KindCreate, ReasonProactive)) // Min's
			e.flagRound(1, tc.target, false, true)
			if got := len(e.actions(KindCreate, ReasonProactive)) - before; got != 0 || e.working("firewall") != 2 {
				t.Fatalf("%d proactive creates, %d working on a flat 80 %%, want none: deferred to the tick", got, e.working("firewall"))
			}
			e.seconds(20) // flat: nothing
			if got := len(e.actions(KindCreate, ReasonProactive)) - before; got != 0 {
				t.Fatalf("%d proactive creates on a flat load", got)
			}
			at := e.fastRamp(e.ids(StateNormal), before)
			if !slices.Equal(at, tc.at) {
				t.Fatalf("deferred launches at %v %%, want at %v %%", at, tc.at)
			}
			as := e.actions(KindCreate, ReasonProactive)[before:]
			if !strings.Contains(as[0].Detail, fmt.Sprintf("deferred target %d", tc.target)) {
				t.Fatalf("detail %q does not name the deferred target", as[0].Detail)
			}
			e.c.mu.Lock()
			need := e.c.fastNeedLocked(e.c.vnfs["firewall"])
			e.c.mu.Unlock()
			e.seconds(70)
			if w := e.working("firewall"); w != tc.target || need < 4 {
				t.Fatalf("working %d (projected need %d at the ramp's top), want the round's %d", w, need, tc.target)
			}
		})
	}
}

// MaxPause also ends a deferred Fast raise: the round's target is not
// released by a later load step once reactive scaling has resumed
// without the enter (the reactive rules act on the step instead).
func TestFastDeferredDroppedAfterMaxPause(t *testing.T) {
	e := fastEnv(t)
	e.flagRound(1, 4, false, true) // 2 working at 40 %: the raise to 4 is deferred
	before := len(e.actions(KindCreate, ReasonProactive))
	e.req(2, protocol.StepAcquire, nil) // paused; no step 4 or 5 follows
	e.seconds(61)
	for _, id := range e.ids(StateNormal) {
		e.load[id] = share(100)
	}
	e.seconds(2)
	if got := len(e.actions(KindCreate, ReasonProactive)) - before; got != 0 {
		t.Fatalf("%d proactive launches of the deferred raise after MaxPause, want none", got)
	}
}

// A step of the load whose projection needs more than the round's raise
// launches the rest of the raise at once, and no more: 2 × 100 % rising
// 8 %/s over the last 15 ticks projects 680 %, 7 instances; the round
// said 4.
func TestFastReleaseCappedByTheRound(t *testing.T) {
	e := fastEnv(t)
	before := len(e.actions(KindCreate, ReasonProactive)) // Min's
	e.flagRound(1, 4, false, true)
	for _, id := range e.ids(StateNormal) {
		e.load[id] = share(100)
	}
	e.seconds(2)
	if got := len(e.actions(KindCreate, ReasonProactive)) - before; got != 2 || e.working("firewall") != 4 {
		t.Fatalf("%d deferred launches, %d working after the step, want the round's 2 more (4)", got, e.working("firewall"))
	}
}

// A Fast raise is deferred only to what a measured load shows, and never
// below the VNF's floors: with no working instance, or the only one still
// booting, no load is measured and the round's whole raise is launched
// (revH MED-3); with one measured instance at 10 %, a minimum of 2 raised
// by the decision is launched; an operator's hold floor (ScaleHold +2 on
// 2 working: 4) whose fill was refused stays owed and is refilled, not cut
// to the 2 working (revH HIGH-1; the run without Fast reaches the round's 5).
func TestFastDeferralFloors(t *testing.T) {
	fastTo := func(e *env, r uint64, target, min int) {
		e.t.Helper()
		d := decision(r, map[string]int{"firewall": target})
		d.Targets[0].Fast = true
		if min > 0 {
			d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: min}}
		}
		e.roundDecision(r, d)
	}
	t.Run("none working", func(t *testing.T) {
		e := anticipateEnv(t, 0, 10*time.Second, func(c *Config) { c.Anticipate = false })
		e.seconds(20) // a recorded load of 0
		fastTo(e, 1, 3, 0)
		if w := e.working("firewall"); w != 3 {
			t.Fatalf("working %d after a fast raise from none to 3, want 3 at once", w)
		}
	})
	t.Run("a control-plane VNF", func(t *testing.T) {
		e := anticipateEnv(t, 2, 60*time.Second, func(c *Config) { c.Anticipate, c.VNFs[0].PinnedFlows = false, false })
		for _, id := range e.ids(StateNormal) {
			e.load[id] = share(40)
		}
		e.seconds(AnticipateRiseTicks + 1)
		fastTo(e, 1, 4, 0)
		if w := e.working("firewall"); w != 4 {
			t.Fatalf("working %d after a fast raise of a control-plane VNF to 4, want 4 at once (Fast defers DP stages only)", w)
		}
	})
	t.Run("the only instance booting", func(t *testing.T) {
		e := anticipateEnv(t, 0, 30*time.Second, func(c *Config) { c.Anticipate = false })
		e.seconds(20)
		fastTo(e, 1, 1, 0)
		e.seconds(1)
		fastTo(e, 2, 3, 0)
		if w := e.working("firewall"); w != 3 {
			t.Fatalf("working %d after a fast raise to 3 with the only instance booting, want 3 at once", w)
		}
	})
	t.Run("the decision's minimum", func(t *testing.T) {
		e := anticipateEnv(t, 1, 10*time.Second, func(c *Config) { c.Anticipate = false })
		e.load[e.ids(StateNormal)[0]] = share(10)
		e.seconds(AnticipateRiseTicks + 1)
		fastTo(e, 1, 3, 2)
		if w := e.working("firewall"); w != 2 {
			t.Fatalf("working %d after a fast raise to 3 at 10 %% with minimum 2, want the minimum at once", w)
		}
	})
	t.Run("the operator's hold floor", func(t *testing.T) {
		for _, fast := range []bool{false, true} {
			reject := false
			cfg := anticipateConfig(2)
			cfg.Anticipate = false
			e := newEnv(t, cfg, fake.Options{BootDelay: 60 * time.Second, Reject: func(drivers.Spec) error {
				if reject {
					return errors.New("no capacity now")
				}
				return nil
			}})
			e.seconds(61)
			for _, id := range e.ids(StateNormal) {
				e.load[id] = share(40)
			}
			e.seconds(AnticipateRiseTicks + 1)
			reject = true
			if _, err := e.c.ScaleHold("firewall", 2, "operator", time.Time{}); err != nil {
				t.Fatal(err)
			}
			e.seconds(2)
			e.flagRound(1, 5, false, fast)
			reject = false
			e.seconds(200)
			if w, want := e.working("firewall"), map[bool]int{false: 5, true: 4}[fast]; w != want {
				t.Errorf("fast %v: working %d after the refused fill of the hold floor 4 and a round to 5, want %d", fast, w, want)
			}
		}
	})
}

// The feature is advertised by a reactive controller only, and not with
// NoRiseConfig.Off; a bad field is an error naming it.
func TestNoRiseFeatureAndConfig(t *testing.T) {
	for _, tc := range []struct {
		reactive, off, want bool
	}{{true, false, true}, {false, false, false}, {true, true, false}} {
		cfg := fwConfig(1)
		cfg.Reactive, cfg.NoRise.Off = tc.reactive, tc.off
		e := newEnv(t, cfg, fake.Options{})
		resp := e.req(1, protocol.StepAcquire, nil)
		if got := resp.Provision != nil && resp.Provision.Has(protocol.FeatureNoRise); got != tc.want {
			t.Fatalf("reactive %v off %v: advertises noRise %v, want %v", tc.reactive, tc.off, got, tc.want)
		}
	}
	c, err := fwConfig(1).withDefaults()
	if err != nil || c.NoRise != DefaultNoRise || DefaultNoRise != (NoRiseConfig{Hold: 120 * time.Second, Guard: 99, AnticipateUpTo: 2, FastLoad: 100}) {
		t.Fatalf("defaults %+v, %v: want candidate H's", c.NoRise, err)
	}
	for name, n := range map[string]NoRiseConfig{
		"hold": {Hold: -time.Second}, "guard": {Guard: 101}, "anticipateUpTo": {AnticipateUpTo: -1}, "fastLoad": {FastLoad: -5},
	} {
		cfg := fwConfig(1)
		cfg.NoRise = n
		if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), "noRise."+name) {
			t.Errorf("%s: %v, want an error naming noRise.%s", name, err, name)
		}
	}
}
