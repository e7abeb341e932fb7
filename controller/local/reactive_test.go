package local

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

func TestOverloadDetection(t *testing.T) {
	type step struct {
		s    Stats
		skip bool // no report this second
	}
	rep := func(s Stats, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = step{s: s}
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		want  State
	}{
		{"two metrics for 5 s", rep(hot2, 5), StateOverload},
		{"two metrics for 4 s is not enough", rep(hot2, 4), StateNormal},
		{"three metrics for 5 s", rep(hot3, 5), StateOverload},
		{"one metric for 20 s is not enough", rep(hotCPU, 20), StateNormal},
		{"a dip resets", cat(rep(hot2, 4), rep(idle, 1), rep(hot2, 4)), StateNormal},
		{"a dip then 5 s again", cat(rep(hot2, 4), rep(idle, 1), rep(hot2, 5)), StateOverload},
		{"two metrics must each persist", cat(rep(hot2, 3), rep(hotMemP, 2)), StateNormal},
		{"mem persists, cpu then pkt: only one metric 5 s", cat(rep(hot2, 3), rep(hotMemP, 3)), StateNormal},
		{"a missing sample breaks consecutive", cat(rep(hot2, 3), []step{{skip: true}}, rep(hot2, 2)), StateNormal},
		{"back to normal when one of two dips", cat(rep(hot2, 6), rep(hotCPU, 1)), StateNormal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fwConfig(1), fake.Options{})
			id := e.ids(StateNormal)[0]
			for _, st := range tc.steps {
				e.silent[id] = st.skip
				e.load[id] = st.s
				e.second()
			}
			if got := e.state(id); got != tc.want {
				t.Fatalf("state %s, want %s", got, tc.want)
			}
			r := e.c.Routable("firewall")
			if len(r) != 1 || r[0].Overloaded != (tc.want == StateOverload) {
				t.Fatalf("routable %+v", r)
			}
			if got := e.sink.last("firewall"); len(got) != 1 || got[0].Overloaded != (tc.want == StateOverload) {
				t.Fatalf("sink last %+v", got)
			}
		})
	}
}

func reactiveCfg(min int) Config {
	c := fwConfig(min)
	c.Reactive = true
	return c
}

func TestMajorityRule(t *testing.T) {
	tests := []struct {
		name     string
		min      int
		hot      int
		reactive bool
		want     int // reactive creates within 10 s of sustained load
	}{
		{"2 of 3 overloaded adds one", 3, 2, true, 1},
		{"1 of 3 overloaded adds nothing", 3, 1, true, 0},
		{"1 of 2 is not a majority", 2, 1, true, 0},
		{"1 of 1 adds one", 1, 1, true, 1},
		{"proactive-only never adds", 3, 3, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(tc.min)
			cfg.Reactive = tc.reactive
			e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
			ids := e.ids(StateBooting)
			e.clk.Advance(30 * time.Second)
			e.report()
			if n := len(e.ids(StateNormal)); n != tc.min {
				t.Fatalf("%d normal instances, want %d", n, tc.min)
			}
			for _, id := range ids[:tc.hot] {
				e.load[id] = hot2
			}
			e.seconds(4)
			if n := len(e.actions(KindCreate, ReasonReactive)); n != 0 {
				t.Fatalf("scaled out after 4 s")
			}
			e.seconds(6)
			if n := len(e.actions(KindCreate, ReasonReactive)); n != tc.want {
				t.Fatalf("%d reactive creates, want %d; actions %+v", n, tc.want, e.c.Actions())
			}
			if got := e.working("firewall"); got != tc.min+tc.want {
				t.Fatalf("working %d, want %d", got, tc.min+tc.want)
			}
			if tc.want > 0 {
				a := e.actions(KindCreate, ReasonReactive)[0]
				if want := t0.Add(35 * time.Second); !a.At.Equal(want) {
					t.Fatalf("scaled out at %v, want %v (5th over sample)", a.At, want)
				}
			}
		})
	}
}

func TestReactiveCooldownAndCascade(t *testing.T) {
	// 3 of 3 stay overloaded: +1 (3 of 4 still a majority), the next +1
	// only after ReactiveCooldown (= OverloadWindow, 5 s).
	e := newEnv(t, reactiveCfg(3), fake.Options{})
	for _, id := range e.ids(StateNormal) {
		e.load[id] = hot2
	}
	e.seconds(5)
	if n := len(e.actions(KindCreate, ReasonReactive)); n != 1 {
		t.Fatalf("after 5 s: %d reactive creates, want 1", n)
	}
	e.seconds(4)
	if n := len(e.actions(KindCreate, ReasonReactive)); n != 1 {
		t.Fatalf("within cooldown: %d reactive creates, want 1", n)
	}
	e.seconds(1)
	if n := len(e.actions(KindCreate, ReasonReactive)); n != 2 {
		t.Fatalf("after cooldown: %d reactive creates, want 2", n)
	}
	// 3 of 5 overloaded: still a majority; 3 of 6: not.
	e.seconds(20)
	if n := len(e.actions(KindCreate, ReasonReactive)); n != 3 {
		t.Fatalf("at 3 of 6: %d reactive creates, want 3", n)
	}
}

func TestReactiveMax(t *testing.T) {
	cfg := reactiveCfg(2)
	cfg.VNFs[0].Max = 2
	e := newEnv(t, cfg, fake.Options{})
	for _, id := range e.ids(StateNormal) {
		e.load[id] = hot2
	}
	e.seconds(20)
	if got := e.working("firewall"); got != 2 {
		t.Fatalf("working %d above max 2", got)
	}
}

func TestReactiveReusesBufferTailFirst(t *testing.T) {
	e := newEnv(t, reactiveCfg(0), fake.Options{BootDelay: 20 * time.Second})
	e.round(0, map[string]int{"firewall": 4})
	e.clk.Advance(20 * time.Second)
	e.report()
	ids := e.ids(StateNormal)
	// Give distinct flow counts so the least-loaded choice is known.
	for i, id := range ids {
		s := idle
		s.Flows = 10 * (i + 1)
		e.load[id] = s
	}
	e.second()
	e.round(1, map[string]int{"firewall": 3}) // buffers ids[0] (10 flows) at interval 1
	e.second()
	e.round(2, map[string]int{"firewall": 2}) // buffers ids[1] (20 flows) at interval 2
	buf := e.c.Buffer("firewall")
	if len(buf) != 2 || buf[0].ID != ids[0] || buf[1].ID != ids[1] || buf[0].Interval != 1 || buf[1].Interval != 2 {
		t.Fatalf("buffer %+v, want [%s@1 %s@2]", buf, ids[0], ids[1])
	}
	for _, r := range e.c.Routable("firewall") {
		if r.ID == ids[0] || r.ID == ids[1] {
			t.Fatalf("buffered instance %s still routable", r.ID)
		}
	}
	launches := len(e.drv.Launches())
	for _, id := range ids[2:] {
		e.load[id] = hot2
	}
	e.seconds(5)
	reuse := e.actions(KindReuse, ReasonReactive)
	if len(reuse) != 1 || reuse[0].InstanceID != ids[1] {
		t.Fatalf("reactive reuse %+v, want tail %s", reuse, ids[1])
	}
	if len(e.drv.Launches()) != launches {
		t.Fatal("launched although the buffer had an instance")
	}
	if e.state(ids[1]) != StateNormal {
		t.Fatalf("reused instance in state %s", e.state(ids[1]))
	}
	// The reused instance is routable at once (no boot).
	found := false
	for _, r := range e.c.Routable("firewall") {
		found = found || r.ID == ids[1]
	}
	if !found {
		t.Fatal("reused instance not routable")
	}
}

func TestReactivePausedDuringProactiveRound(t *testing.T) {
	e := newEnv(t, reactiveCfg(3), fake.Options{})
	ids := e.ids(StateNormal)
	e.req(0, 2, nil) // acquire
	if !e.c.Paused() {
		t.Fatal("not paused after acquire")
	}
	e.load[ids[0]], e.load[ids[1]] = hot2, hot2
	e.seconds(10)
	if n := len(e.ids(StateOverload)); n != 2 {
		t.Fatalf("%d overloaded; overload detection must go on while paused", n)
	}
	if n := len(e.c.Actions()); n != 3 { // the 3 Min creates only
		t.Fatalf("acted while paused: %+v", e.c.Actions())
	}
	e.req(0, 4, decision(0, map[string]int{"firewall": 3}))
	e.seconds(2)
	if n := len(e.actions(KindCreate, ReasonReactive)); n != 0 {
		t.Fatal("reactive scale-out between broadcast and enter")
	}
	e.req(0, 5, nil)
	if e.c.Paused() {
		t.Fatal("still paused after enter")
	}
	e.clk.Advance(0)
	a := e.actions(KindCreate, ReasonReactive)
	if len(a) != 1 || !a[0].At.Equal(e.clk.Now()) {
		t.Fatalf("want one reactive create right at enter, got %+v", a)
	}
}

func TestPauseSafetyNet(t *testing.T) {
	cfg := reactiveCfg(1)
	cfg.MaxPause = 30 * time.Second
	e := newEnv(t, cfg, fake.Options{})
	e.req(0, 2, nil)
	e.seconds(29)
	if !e.c.Paused() {
		t.Fatal("resumed early")
	}
	e.seconds(1)
	if e.c.Paused() {
		t.Fatal("still paused after MaxPause without enter")
	}
}

func TestNoReactiveScaleIn(t *testing.T) {
	e := newEnv(t, reactiveCfg(2), fake.Options{})
	for _, id := range e.ids(StateNormal) {
		e.load[id] = hot2
	}
	e.seconds(5)
	if got := e.working("firewall"); got != 3 {
		t.Fatalf("working %d, want 3", got)
	}
	for id := range e.load {
		e.load[id] = Stats{}
	}
	e.seconds(120)
	if got := e.working("firewall"); got != 3 {
		t.Fatalf("working %d after 2 idle minutes, want 3 (no reactive scale-in)", got)
	}
	for _, a := range e.c.Actions() {
		if a.Kind == KindBuffer || a.Kind == KindDestroy {
			t.Fatalf("scale-in action %+v", a)
		}
	}
}

func TestPreferNormal(t *testing.T) {
	mixed := []RoutableInstance{{ID: "a", Overloaded: true}, {ID: "b"}, {ID: "c", Overloaded: true}}
	if got := PreferNormal(mixed); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("got %+v", got)
	}
	all := []RoutableInstance{{ID: "a", Overloaded: true}, {ID: "c", Overloaded: true}}
	if got := PreferNormal(all); len(got) != 2 {
		t.Fatalf("all overloaded: got %+v, want both", got)
	}
}

// With the paper's literal majority (running instances only) the same
// overload keeps adding instances while the new ones boot; by default a
// booting instance counts as working and stops the cascade.
func TestPaperMajorityOvershootsWhileBooting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paper bool
		want  int // reactive creates in 29 s of sustained overload, 30 s boots
	}{
		{"default counts booting instances", false, 1},
		{"paper-literal majority", true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := reactiveCfg(1)
			cfg.PaperMajority = tc.paper
			e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
			id := e.ids(StateBooting)[0]
			e.clk.Advance(30 * time.Second)
			e.report()
			e.load[id] = hot2
			e.seconds(29) // overload at 5 s, then every 5 s until 29 s: 5, 10, 15, 20, 25
			if n := len(e.actions(KindCreate, ReasonReactive)); n != tc.want {
				t.Fatalf("%d reactive creates, want %d", n, tc.want)
			}
		})
	}
}
