package global

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// heldApply is one Apply a gateStore holds: it goes on when release is
// closed.
type heldApply struct {
	c       fsm.Command
	release chan struct{}
}

// gateStore is a MemStore whose Apply of the commands hold picks waits
// until the test releases it: a raft commit waiting for its quorum.
type gateStore struct {
	*MemStore
	mu      sync.Mutex
	hold    func(fsm.Command) bool
	entered chan heldApply
}

func newGateStore(hold func(fsm.Command) bool) *gateStore {
	return &gateStore{MemStore: NewMemStore(), hold: hold, entered: make(chan heldApply, 8)}
}

func (g *gateStore) Apply(c fsm.Command) error {
	g.mu.Lock()
	held := g.hold(c)
	g.mu.Unlock()
	if !held {
		return g.MemStore.Apply(c)
	}
	h := heldApply{c: c, release: make(chan struct{})}
	g.entered <- h
	<-h.release
	return g.MemStore.Apply(c)
}

// isPredictOf picks round's step-1 commit.
func isPredictOf(round uint64) func(fsm.Command) bool {
	return func(c fsm.Command) bool {
		s, ok := c.(fsm.RoundStepDone)
		return ok && s.Round == round && s.Step == protocol.StepPredict
	}
}

// within runs f and fails the test if it has not returned after 10 s (a
// guard that turns a deadlock into a failure; f does not wait for time).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // deadlock guard, not a wait for an effect
		t.Fatalf("%s did not return within 10 s", what)
	}
}

// releaser returns a function closing ch once; the test's clean-up calls it
// too, so a failing test never leaves a held Apply or plan blocked.
func releaser(t *testing.T, ch chan struct{}) func() {
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

// waitHeld returns the next Apply the store holds (guarded like within).
func waitHeld(t *testing.T, g *gateStore, what string) heldApply {
	t.Helper()
	select {
	case h := <-g.entered:
		return h
	case <-time.After(10 * time.Second): // deadlock guard, not a wait for an effect
		t.Fatalf("no held Apply of %s within 10 s", what)
		return heldApply{}
	}
}

// goAdvance runs h.clk.Advance(d) in a goroutine (it blocks inside a held
// Apply) and returns a channel closed when it returns.
func goAdvance(h *harness, d time.Duration) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.clk.Advance(d)
	}()
	return done
}

func dpReport(h *harness, rate float64) protocol.WorkloadReport {
	return protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: rate}}}
}

// While a step's commit waits for its quorum (a Store whose Apply blocks),
// the engine takes workload reports and answers Records, Running, Stats,
// Forecasts and Delays: the commit is applied without the engine's lock (it
// was held across Store.Apply, so every report and read waited for raft).
// The report taken during the predict step's commit counts in the interval
// that step opens, the one before it in the interval it closes.
func TestEngineServesWhileAStepCommits(t *testing.T) {
	g := newGateStore(isPredictOf(0))
	h := newHarnessStore(t, 2, transportCfgNone, Hooks{}, nil, g)
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(10 * time.Second)
	if err := h.eng.ReportWorkload(dpReport(h, 100)); err != nil {
		t.Fatal(err)
	}
	clockDone := goAdvance(h, 40*time.Second) // round 0 starts at 50 s
	held := waitHeld(t, g, "round 0's predict step")
	release := releaser(t, held.release)
	within(t, "ReportWorkload while a step commits", func() {
		if err := h.eng.ReportWorkload(dpReport(h, 300)); err != nil {
			t.Error(err)
		}
	})
	within(t, "Records, Running, Stats, Forecasts and Delays while a step commits", func() {
		if n := len(h.eng.Records()); n != 0 {
			t.Errorf("%d records before round 0 completed", n)
		}
		if !h.eng.Running() {
			t.Error("engine not running")
		}
		_ = h.eng.Stats()
		_ = h.eng.Forecasts(0)
		_ = h.eng.Delays()
	})
	if h.eng.Trigger() {
		t.Error("Trigger started a round while round 0's commit is in flight")
	}
	release()
	within(t, "the clock's Advance after the release", func() { <-clockDone })
	h.runRounds(t, 2)
	want := map[uint64]float64{0: 100, 1: 300}
	for _, p := range h.store.History() {
		if w, ok := want[p.Round]; ok {
			if got := p.Actual[SeriesKey(KindDP, "dc0", "dc1")]; got != w {
				t.Errorf("round %d measured dp/dc0/dc1 = %v, want %v", p.Round, got, w)
			}
			delete(want, p.Round)
		}
	}
	if len(want) != 0 {
		t.Errorf("no committed prediction of rounds %v", want)
	}
	if st := h.eng.Stats(); st.Rounds < 2 || st.DroppedCommits != 0 {
		t.Errorf("stats %+v: want ≥ 2 rounds and no dropped commit", st)
	}
}

// countingForecaster counts Observe calls.
type countingForecaster struct {
	Forecaster
	mu       sync.Mutex
	observed int
}

func (c *countingForecaster) Observe(avg map[string]float64) error {
	c.mu.Lock()
	c.observed++
	c.mu.Unlock()
	return c.Forecaster.Observe(avg)
}

// A step whose engine moved on while its commit was in flight (leadership
// lost and won again: Stop and Start) does not apply its result: the
// restarted engine resumes the round from the committed state and commits
// the step itself; the old commit, which lands first, and the new one, then
// stale, leave the round with every step done once: one observation per
// round, one record per round with each step once, every DC acting once
// per step.
func TestStepResultDroppedWhenTheEngineMovedOn(t *testing.T) {
	g := newGateStore(isPredictOf(0))
	h := newHarnessStore(t, 3, transportCfgNone, Hooks{}, func(i, j int) float64 { return float64(100 * (1 + i + j)) }, g)
	fc := &countingForecaster{Forecaster: newAR1()}
	h.eng.d.Forecaster = fc
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	first := goAdvance(h, 50*time.Second)
	old := waitHeld(t, g, "the first engine's predict step")
	within(t, "Stop and Start while a step commits", func() {
		h.eng.Stop()
		if err := h.eng.Start(); err != nil {
			t.Error(err)
		}
	})
	second := goAdvance(h, 0) // the restarted engine resumes round 0 at once
	again := waitHeld(t, g, "the restarted engine's predict step")
	close(old.release) // the old commit lands first: its result is the restarted engine's to read, not to continue
	within(t, "the old commit's Advance", func() { <-first })
	if st := h.store.State(); st.Round == nil || st.Round.Done != protocol.StepPredict {
		t.Fatalf("round after the old commit: %+v, want step 1 done", st.Round)
	}
	if d := h.eng.Stats().DroppedCommits; d != 1 {
		t.Fatalf("DroppedCommits = %d after the old commit came back, want 1", d)
	}
	close(again.release) // stale now: the restarted engine continues from the committed state
	within(t, "the restarted engine's Advance", func() { <-second })
	g.mu.Lock()
	g.hold = func(fsm.Command) bool { return false }
	g.mu.Unlock()
	h.runRounds(t, 3)

	recs := h.eng.Records()
	if len(recs) < 3 {
		t.Fatalf("%d records, want ≥ 3", len(recs))
	}
	for i, r := range recs {
		if r.Round != uint64(i) {
			t.Fatalf("record %d is round %d: rounds %v", i, r.Round, recs)
		}
		seen := map[protocol.Step]int{}
		for _, s := range r.Steps {
			seen[s.Step]++
		}
		for _, s := range []protocol.Step{protocol.StepAcquire, protocol.StepCompute, protocol.StepBroadcast, protocol.StepEnter} {
			if seen[s] != 1 {
				t.Errorf("round %d record: step %v done %d times, want once (%v)", r.Round, s, seen[s], r.Steps)
			}
		}
		if r.Round > 0 && seen[protocol.StepPredict] != 1 {
			t.Errorf("round %d record: step 1 done %d times, want once", r.Round, seen[protocol.StepPredict])
		}
	}
	if r := recs[0]; !r.Resumed || len(r.Predicted) == 0 {
		t.Errorf("round 0 record: resumed %v, %d predictions; want resumed with the committed prediction", r.Resumed, len(r.Predicted))
	}
	st := h.eng.Stats()
	fc.mu.Lock()
	observed := fc.observed
	fc.mu.Unlock()
	if observed != st.Rounds {
		t.Errorf("forecaster observed %d intervals in %d rounds, want one each", observed, st.Rounds)
	}
	if st.DroppedCommits != 1 {
		t.Errorf("DroppedCommits = %d, want 1", st.DroppedCommits)
	}
	rounds := map[uint64]int{}
	var pred0 map[string]float64
	for _, p := range h.store.History() {
		rounds[p.Round]++
		if p.Round == 0 {
			pred0 = p.Predicted
		}
	}
	// the dropped commit's prediction is still the last one: round 1
	// compares with it (the simulator's DPPredicted) and holds from it
	if len(pred0) == 0 {
		t.Fatal("round 0 committed no prediction")
	}
	if got := recs[1].PreviousPredicted; !maps.Equal(got, pred0) {
		t.Errorf("round 1 PreviousPredicted has %d series, want round 0's committed %d: %v, want %v", len(got), len(pred0), got, pred0)
	}
	if got := recs[0].Predicted; !maps.Equal(got, pred0) {
		t.Errorf("round 0 record Predicted %v, want the committed %v", got, pred0)
	}
	for r, n := range rounds {
		if n != 1 {
			t.Errorf("round %d in the history %d times", r, n)
		}
	}
	for dc, p := range h.parts {
		if p.maxActed() != 1 {
			t.Errorf("%s acted twice on a step", dc)
		}
	}
}

// The plan (step 3) runs without the engine's lock too (tens of ms at 100
// DCs, seconds at 500): reports and reads are served while it runs. An
// engine stopped and started again while its plan runs drops that plan's
// result: the restarted engine plans again, and the round commits one
// decision, each DC acting once per step.
func TestEngineServesWhileThePlanRuns(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	h.eng.plan = func(ctx context.Context, s *placement.Snapshot, o placement.Options) (*placement.Decision, error) {
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		return placement.PlanContext(ctx, s, o)
	}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	first := goAdvance(h, 50*time.Second+100*time.Millisecond) // round 0 up to its plan
	releasePlan := releaser(t, release)
	select {
	case <-entered:
	case <-time.After(10 * time.Second): // deadlock guard, not a wait for an effect
		t.Fatal("round 0 did not reach its plan")
	}
	within(t, "ReportWorkload, Records and Running while the plan runs", func() {
		if err := h.eng.ReportWorkload(dpReport(h, 100)); err != nil {
			t.Error(err)
		}
		_ = h.eng.Records()
		if !h.eng.Running() {
			t.Error("engine not running")
		}
	})
	within(t, "Stop and Start while the plan runs", func() {
		h.eng.Stop()
		if err := h.eng.Start(); err != nil {
			t.Error(err)
		}
	})
	within(t, "the restarted engine's step 3", func() { h.clk.Advance(0) })
	if st := h.store.State(); st.Round == nil || st.Round.Done != protocol.StepCompute {
		t.Fatalf("round after the restarted engine's plan: %+v, want step 3 done", st.Round)
	}
	releasePlan()
	within(t, "the first plan's Advance", func() { <-first })
	h.runRounds(t, 1)
	if n := calls.Load(); n != 2 {
		t.Errorf("plan ran %d times, want 2 (the dropped one and the restarted engine's)", n)
	}
	if st := h.eng.Stats(); st.DroppedPlans != 1 || st.DroppedCommits != 0 {
		t.Errorf("stats %+v: want 1 dropped plan, no dropped commit", st)
	}
	recs := h.eng.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	computed := 0
	for _, s := range recs[0].Steps {
		if s.Step == protocol.StepCompute {
			computed++
		}
	}
	if computed != 1 {
		t.Errorf("round 0 record: step 3 done %d times, want once (%v)", computed, recs[0].Steps)
	}
	for dc, p := range h.parts {
		if p.maxActed() != 1 || p.actedCount(0, protocol.StepBroadcast) != 1 {
			t.Errorf("%s: acted %d times at most, %d times on round 0's step 4; want once", dc, p.maxActed(), p.actedCount(0, protocol.StepBroadcast))
		}
	}
}
