package local

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A round's KeepBuffered (the global stage floor's hold) keeps that many
// of the VNF's buffered instances through each way the buffer is emptied
// (TrimEmpty, TrimBuffer at the enter, τ expiry) while its decisions ask
// for it (an interval without such a decision lets them go; the keep 0
// rows: without it they go at once). Three emptied
// firewalls are buffered by round 2 (4 → 1 working); rounds 2–5 ask to
// keep keep of them.
func TestRoundKeepsBuffered(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		trimEmpty, trimBuffer bool
		tau                   uint64
	}{
		{"TrimEmpty", true, false, 0},
		{"TrimBuffer", false, true, 0},
		{"tau 2", false, false, 2},
	} {
		for _, keep := range []int{0, 2} {
			cfg := fwConfig(1)
			cfg.TrimEmpty, cfg.TrimBuffer, cfg.Tau = tc.trimEmpty, tc.trimBuffer, tc.tau
			e := newEnv(t, cfg, fake.Options{})
			e.round(1, map[string]int{"firewall": 4})
			for _, id := range e.ids(StateNormal) {
				e.load[id] = Stats{CPU: 10, Mem: 20, PktRate: 100, Flows: 3}
			}
			e.seconds(LoadTrendTicks + 2) // a steady load: not rising
			for r := uint64(2); r <= 5; r++ {
				d := decision(r, map[string]int{"firewall": 1})
				d.Targets[0].KeepBuffered = keep
				e.roundDecision(r, d)
				for _, id := range e.ids(StateBuffered) {
					e.load[id] = Stats{CPU: 1, Mem: 20}
				}
				e.seconds(3)
			}
			if b := len(e.c.Buffer("firewall")); b != keep {
				t.Fatalf("%s, keep %d: %d buffered after round 5, want %d; actions %v", tc.name, keep, b, keep, e.c.Actions())
			}
			if tc.trimBuffer && keep > 0 && !strings.Contains(fmt.Sprint(e.c.Actions()), "beyond the 2 buffered instances the round's hold keeps") {
				t.Fatalf("%s, keep %d: no trim detail naming the round's hold: %v", tc.name, keep, e.c.Actions())
			}
			// round 6 never broadcasts here: only its enter arrives, and
			// round 5's hold ended with interval 6
			if er := e.req(6, protocol.StepEnter, nil); er.Error != "" {
				t.Fatalf("round 6 enter: %s", er.Error)
			}
			e.seconds(3)
			if b := len(e.c.Buffer("firewall")); b != 0 {
				t.Fatalf("%s, keep %d: %d buffered once the held interval ended, want 0", tc.name, keep, b)
			}
		}
	}
}

// A negative KeepBuffered refuses the target, naming the field.
func TestRoundKeepNegative(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	d := decision(1, map[string]int{"firewall": 2})
	d.Targets[0].KeepBuffered = -1
	e.req(1, protocol.StepAcquire, nil)
	resp := e.req(1, protocol.StepBroadcast, d)
	if !strings.Contains(resp.Error, "decision.targets[0].keepBuffered -1: negative") {
		t.Fatalf("error %q, want one naming keepBuffered", resp.Error)
	}
}

// The round's hold keeps an instance the falling scale-in buffered through
// the falling trim (with TrimEmpty off, the only trim that could destroy
// it here): keep 0 lets the trim destroy it once empty, keep 1 does not.
func TestRoundKeepsBufferedFallingTrim(t *testing.T) {
	for _, keep := range []int{0, 1} {
		e := fallEnvCfg(t, 0.94, 4, func(c *Config) { c.TrimEmpty = false })
		e.fall(80, 0.5, 26)
		if w, b := e.working("firewall"), len(e.c.Buffer("firewall")); w != 3 || b != 1 {
			t.Fatalf("keep %d: %d working, %d buffered after the fall, want 3 and 1", keep, w, b)
		}
		a := e.c.vnfs["firewall"].buf.Entries()[0].ID
		d := decision(2, map[string]int{"firewall": 3})
		d.Targets[0].KeepBuffered = keep
		e.roundDecision(2, d)
		if b := e.c.Buffer("firewall"); len(b) != 1 {
			t.Fatalf("keep %d: %d buffered after round 2's enter, want 1 (%s); actions %v", keep, len(b), a, e.c.Actions())
		}
		fallingRoom(e, a, e.ids(StateNormal), Stats{CPU: 0, Mem: 20}, 6)
		var trimmed []Action
		for _, x := range e.actions(KindDestroy, ReasonExpiry) {
			if x.InstanceID == a && strings.Contains(x.Detail, "on a falling load") {
				trimmed = append(trimmed, x)
			}
		}
		if ds := e.actions(KindDestroy, ReasonExpiry); keep > 0 && len(ds) > 0 {
			t.Fatalf("keep %d: destroyed %+v, want the hold to keep %s", keep, ds, a)
		}
		if keep == 0 && len(trimmed) != 1 {
			t.Fatalf("keep 0: falling-trim destroys of %s %+v, want 1; actions %v", a, trimmed, e.c.Actions())
		}
	}
}

// A round whose enter never comes (the global down after step 4): when
// reactive scaling resumes after MaxPause, the round's hold ends too, and
// TrimEmpty trims the instances it kept.
func TestRoundKeepEndsAtMaxPause(t *testing.T) {
	cfg := fwConfig(1)
	cfg.TrimEmpty, cfg.MaxPause = true, 30*time.Second
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 4})
	for _, id := range e.ids(StateNormal) {
		e.load[id] = Stats{CPU: 10, Mem: 20, PktRate: 100, Flows: 3}
	}
	e.seconds(LoadTrendTicks + 2)
	d := decision(2, map[string]int{"firewall": 1})
	d.Targets[0].KeepBuffered = 2
	e.roundDecision(2, d)
	d = decision(3, map[string]int{"firewall": 1})
	d.Targets[0].KeepBuffered = 2
	e.req(3, protocol.StepAcquire, nil)
	if resp := e.req(3, protocol.StepBroadcast, d); resp.Error != "" {
		t.Fatal(resp.Error)
	}
	for range 25 {
		for _, id := range e.ids(StateBuffered) {
			e.load[id] = Stats{CPU: 1, Mem: 20}
		}
		e.seconds(1)
	}
	if b := len(e.c.Buffer("firewall")); b != 2 || !e.c.Paused() {
		t.Fatalf("%d buffered, paused %v before MaxPause, want 2 held and paused", b, e.c.Paused())
	}
	for range 10 {
		for _, id := range e.ids(StateBuffered) {
			e.load[id] = Stats{CPU: 1, Mem: 20}
		}
		e.seconds(1)
	}
	if b := len(e.c.Buffer("firewall")); e.c.Paused() || b != 0 {
		t.Fatalf("%d buffered, paused %v after MaxPause without the enter, want 0 and resumed; actions %v", b, e.c.Paused(), e.c.Actions())
	}
}
