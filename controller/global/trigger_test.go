package global

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// checkRoundsOnce fails unless the records are rounds 0, 1, … in order,
// none resumed, each step done once, every DC acting once per step, and
// no commit dropped.
func checkRoundsOnce(t *testing.T, h *harness, rounds int) {
	t.Helper()
	recs := h.eng.Records()
	if len(recs) < rounds {
		t.Fatalf("%d records, want ≥ %d", len(recs), rounds)
	}
	for i, r := range recs {
		if r.Round != uint64(i) || r.Resumed {
			t.Errorf("record %d: round %d resumed %v; want round %d not resumed", i, r.Round, r.Resumed, i)
		}
		seen := map[protocol.Step]int{}
		for _, s := range r.Steps {
			seen[s.Step]++
		}
		for _, s := range []protocol.Step{protocol.StepPredict, protocol.StepAcquire, protocol.StepCompute, protocol.StepBroadcast, protocol.StepEnter} {
			if seen[s] != 1 {
				t.Errorf("round %d record: step %v done %d times, want once (%v)", r.Round, s, seen[s], r.Steps)
			}
		}
	}
	if st := h.eng.Stats(); st.DroppedCommits != 0 || st.Resumed != 0 || st.Rounds != len(recs) {
		t.Errorf("stats %+v: want no dropped commit, no resumed round, %d rounds", st, len(recs))
	}
	for dc, p := range h.parts {
		if p.maxActed() != 1 {
			t.Errorf("%s acted twice on a step", dc)
		}
	}
}

// Trigger refuses while a round's RoundStarted commit is in flight (no
// record exists yet, only the off-lock commit): starting the round again
// would commit RoundStarted twice and drop the first result.
func TestTriggerRefusesWhileRoundStartedCommits(t *testing.T) {
	var once sync.Once
	g := newGateStore(func(c fsm.Command) bool {
		held := false
		if _, ok := c.(fsm.RoundStarted); ok {
			once.Do(func() { held = true })
		}
		return held
	})
	h := newHarnessStore(t, 2, transportCfgNone, Hooks{}, nil, g)
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	clockDone := goAdvance(h, 50*time.Second) // round 0 starts at 50 s
	held := waitHeld(t, g, "round 0's RoundStarted")
	release := releaser(t, held.release)
	within(t, "Trigger while RoundStarted commits", func() {
		if h.eng.Trigger() {
			t.Error("Trigger started a round while round 0's RoundStarted commit is in flight")
		}
	})
	release()
	within(t, "the clock's Advance after the release", func() { <-clockDone })
	h.runRounds(t, 2)
	checkRoundsOnce(t, h, 2)
}

// firedClock is a Virtual clock that also keeps every AfterFunc callback,
// so a test can run one late: a timer that fired but whose callback waited
// for the engine's lock while something else ran (its Stop came too late).
type firedClock struct {
	*clock.Virtual
	mu  sync.Mutex
	fns []func()
}

func (c *firedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
	return c.Virtual.AfterFunc(d, f)
}

func (c *firedClock) last() func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fns[len(c.fns)-1]
}

// A periodic round timer that fired while Trigger held the lock (Trigger's
// Stop was too late, its callback waited for the lock) does nothing once
// Trigger has started the round: it neither resumes that round in parallel
// (a second record, every step sent twice) nor starts another one.
func TestLateRoundTimerAfterTrigger(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Duration // when the late callback runs, after Trigger
	}{
		{"while the round runs", 0},
		{"after the round", 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
			fc := &firedClock{Virtual: h.clk}
			h.eng.d.Clock = fc
			if err := h.eng.Start(); err != nil {
				t.Fatal(err)
			}
			periodic := fc.last() // Start's timer for round 0, due at 50 s
			h.clk.Advance(20 * time.Second)
			if !h.eng.Trigger() {
				t.Fatal("Trigger refused with no round in progress")
			}
			h.clk.Advance(tc.at)
			periodic() // fired just before Trigger's Stop
			h.runRounds(t, 1)
			if st := h.store.State(); st.Interval != 1 || st.Round != nil {
				t.Errorf("after Trigger's round and the late timer: interval %d, round %+v; want round 0 done, no round open", st.Interval, st.Round)
			}
			// the next round starts one interval after Trigger's
			h.clk.Advance(h.cfg.Interval - tc.at - 200*time.Millisecond)
			if st := h.store.State(); st.Interval != 1 || st.Round != nil {
				t.Errorf("before round 1 is due: interval %d, round %+v; want no round started early", st.Interval, st.Round)
			}
			h.runRounds(t, 2)
			checkRoundsOnce(t, h, 2)
		})
	}
}

// failFirst is a Store whose first Apply of a command fail picks fails (a
// commit that timed out without losing leadership).
type failFirst struct {
	Store
	mu     sync.Mutex
	fail   func(fsm.Command) bool
	failed bool
}

func (f *failFirst) Apply(c fsm.Command) error {
	f.mu.Lock()
	fail := !f.failed && f.fail(c)
	f.failed = f.failed || fail
	f.mu.Unlock()
	if fail {
		return errors.New("commit timed out")
	}
	return f.Store.Apply(c)
}

// The retry timer of a failed RoundStarted commit that fired while Trigger
// held the lock (Trigger's Stop came too late) does nothing once Trigger
// has started the round: it does not run the round's next step a second
// time in parallel (every request sent again, a participant answering
// duplicates).
func TestLateRetryTimerAfterTrigger(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	fc := &firedClock{Virtual: h.clk}
	h.eng.d.Clock = fc
	h.eng.d.Store = &failFirst{Store: h.store, fail: func(c fsm.Command) bool {
		_, ok := c.(fsm.RoundStarted)
		return ok
	}}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(50 * time.Second) // round 0's RoundStarted fails: a retry after Retransmit
	if st := h.store.State(); st.Round != nil {
		t.Fatalf("premise: round %+v open after the failed commit", st.Round)
	}
	retry := fc.last()
	if !h.eng.Trigger() {
		t.Fatal("Trigger refused with no round in progress")
	}
	retry() // fired just before Trigger's Stop
	h.runRounds(t, 2)
	checkRoundsOnce(t, h, 2)
	for dc, p := range h.parts {
		if _, _, dups := p.state(); dups != 0 {
			t.Errorf("%s answered %d duplicate requests, want none", dc, dups)
		}
	}
}
