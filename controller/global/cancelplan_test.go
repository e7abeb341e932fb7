package global

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// stopCtx is the plan's context with its checks counted; at the stopAt-th
// check it runs stop first (a leadership loss or a shutdown while the plan
// runs), so the plan's steps are counted, not timed.
type stopCtx struct {
	context.Context
	checks, stopAt int
	stop           func()
}

func (c *stopCtx) Err() error {
	c.checks++
	if c.checks == c.stopAt {
		c.stop()
	}
	return c.Context.Err()
}

// Stop cancels a running plan: the plan returns at its next step (the next
// check of its context) with context.Canceled instead of running to its end,
// its result is dropped (DroppedPlans), nothing is committed for step 3, and
// the engine started again plans the round anew and finishes it.
func TestStopCancelsTheRunningPlan(t *testing.T) {
	h := newHarness(t, 6, transportCfgNone, Hooks{}, func(i, j int) float64 { return float64(8000 + 1000*((i+j)%5)) })
	const stopAt = 3
	var ctxs []*stopCtx
	var errs []error
	h.eng.plan = func(ctx context.Context, s *placement.Snapshot, o placement.Options) (*placement.Decision, error) {
		c := &stopCtx{Context: ctx}
		if len(ctxs) == 0 {
			c.stopAt, c.stop = stopAt, h.eng.Stop
		}
		ctxs = append(ctxs, c)
		d, err := placement.PlanContext(c, s, o)
		errs = append(errs, err)
		return d, err
	}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	for limit := h.clk.Now().Add(2 * h.cfg.Interval); len(ctxs) == 0; h.clk.Advance(100 * time.Millisecond) {
		if !h.clk.Now().Before(limit) {
			t.Fatal("round 0 did not reach its plan")
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("the first plan returned %v, want context.Canceled", errs)
	}
	if ctxs[0].checks != stopAt {
		t.Errorf("the cancelled plan checked its context %d times, want %d: it went on after the stop", ctxs[0].checks, stopAt)
	}
	if h.eng.Running() {
		t.Fatal("engine still running after Stop")
	}
	if st := h.eng.Stats(); st.DroppedPlans != 1 || st.DroppedCommits != 0 {
		t.Errorf("stats %+v: want 1 dropped plan, no dropped commit", st)
	}
	if st := h.store.State(); st.Round == nil || st.Round.Done != protocol.StepAcquire {
		t.Fatalf("round after the cancelled plan: %+v, want step 2 done and no decision", st.Round)
	}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 1)
	if len(ctxs) != 2 || errs[1] != nil {
		t.Fatalf("plans %d, errors %v: want the restarted engine's plan to succeed", len(ctxs), errs)
	}
	if n := ctxs[1].checks; n <= 2*stopAt {
		t.Fatalf("a whole plan of this round checks its context %d times: too few to show a stop mid-way at %d", n, stopAt)
	}
	recs := h.eng.Records()
	if len(recs) != 1 || !recs[0].Resumed || recs[0].PlanError != "" || len(recs[0].Decision) != len(h.topo.DCs) {
		t.Fatalf("records %+v: want round 0 resumed and planned once", recs)
	}
	for dc, p := range h.parts {
		if p.maxActed() != 1 || p.actedCount(0, protocol.StepBroadcast) != 1 {
			t.Errorf("%s: acted %d times at most, %d times on round 0's step 4; want once", dc, p.maxActed(), p.actedCount(0, protocol.StepBroadcast))
		}
	}
}
