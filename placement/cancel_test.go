package placement

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// stepCtx is a context that counts its Err checks and is cancelled at the
// cancelAt-th (0: never): the plan's steps are counted, not timed. trace[i]
// is how many path searches stop had run at check i+1.
type stepCtx struct {
	context.Context
	stop             *stopper
	checks, cancelAt int
	trace            []int
	done             chan struct{}
}

// stepPlan plans s under a stepCtx cancelled at check cancelAt (0: never).
func stepPlan(s *Snapshot, opt Options, cancelAt int) (*Decision, *stepCtx, error) {
	c := &stepCtx{Context: context.Background(), cancelAt: cancelAt, done: make(chan struct{})}
	c.stop = &stopper{ctx: c}
	d, err := planStopping(c.stop, s, opt)
	return d, c, err
}

func (c *stepCtx) Done() <-chan struct{} { return c.done }

func (c *stepCtx) Err() error {
	c.checks++
	c.trace = append(c.trace, c.stop.searches)
	if c.cancelAt > 0 && c.checks == c.cancelAt {
		close(c.done)
	}
	if c.cancelAt > 0 && c.checks >= c.cancelAt {
		return context.Canceled
	}
	return nil
}

// A plan cancelled between its steps stops at the first check after the
// cancellation: no path search and no check after it, no decision, an error
// wrapping context.Canceled. Checked at points in Alg. 1's pair searches, a
// drained DC's pairs, the improvement phase and its second start; a context
// that is never cancelled gives Plan's decision.
func TestPlanContextStopsAtTheNextStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Snapshot
		opt  Options
	}{
		{"alg1", benchSnap(30, 3), Options{}},
		{"improve", benchSnap(30, 3), Options{Improve: ImproveOptions{Budget: 200}}},
		{"second start", benchSnap(12, 3), Options{Improve: ImproveOptions{Budget: 5000}}},
		{"drained", func() *Snapshot {
			s := benchSnap(30, 3)
			s.Excluded = make([]bool, s.N)
			s.Excluded[5], s.Excluded[17] = true, true
			return s
		}(), Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Plan(tc.s, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got, full, err := stepPlan(tc.s, tc.opt, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("PlanContext with a context never done planned differently from Plan")
			}
			n, searches := full.checks, full.stop.searches
			if n < 100 || searches < n/2 {
				t.Fatalf("a full plan made %d checks and %d searches: want ≥ 100 checks, about one per search", n, searches)
			}
			t.Logf("a full plan: %d checks, %d searches", n, searches)
			for _, at := range []int{1, 2, n / 3, n / 2, n - 1, n} {
				dec, c, err := stepPlan(tc.s, tc.opt, at)
				if !errors.Is(err, context.Canceled) || dec != nil {
					t.Fatalf("cancelled at check %d of %d: decision %v, err %v; want none and context.Canceled", at, n, dec != nil, err)
				}
				if c.checks != at {
					t.Errorf("cancelled at check %d of %d: the plan checked again, %d checks", at, n, c.checks)
				}
				// the uncancelled plan had run full.trace[at-1] searches at
				// this check: a stopped plan runs none after it
				if c.stop.searches != full.trace[at-1] {
					t.Errorf("cancelled at check %d of %d: %d searches run, want the %d before the check", at, n, c.stop.searches, full.trace[at-1])
				}
			}
		})
	}
}

// workCtx is cancelled once the plan's work reaches a point: a number of
// pairs visited by the passes over every pair, or of path searches. A real
// cancellation comes between two checks, not at one: the plan must then stop
// at its next check, within stopEvery pairs (a pass checks every stopEvery
// pairs, the CP sizing every ⌈stopEvery/N⌉ rows) and without a further
// search, except the rest of a group move of the improvement phase (fewer
// than DefaultMaxGroup).
type workCtx struct {
	context.Context
	stop            *stopper
	pairs, searches int // cancel once stop reached it (0: not on that count)
	cancelled       bool
	done            chan struct{}
}

func (c *workCtx) Done() <-chan struct{} { return c.done }

func (c *workCtx) Err() error {
	if !c.cancelled && (c.pairs > 0 && c.stop.pairs >= c.pairs || c.searches > 0 && c.stop.searches >= c.searches) {
		c.cancelled = true
		close(c.done)
	}
	if c.cancelled {
		return context.Canceled
	}
	return nil
}

func workPlan(s *Snapshot, opt Options, pairs, searches int) (*Decision, *workCtx, error) {
	c := &workCtx{Context: context.Background(), pairs: pairs, searches: searches, done: make(chan struct{})}
	c.stop = &stopper{ctx: c}
	d, err := planStopping(c.stop, s, opt)
	return d, c, err
}

// A cancellation at any point of the plan's work is seen within one step:
// at every 9th pair of Alg. 1's kept-path pass and of the CP sizing's rows
// (stopEvery lowered to 32 so that a 20-DC round has many steps there), and
// at every 5th search of the improvement phase. Each of the three checks that
// TestPlanContextStopsAtTheNextStep cannot pin (its cancellations come at a
// check, so a removed check only shifts them) fails this: without the kept
// pass's, the pass runs to its end; without the CP sizing's row check, no
// check follows and the plan returns a decision; without budgetLeft's, the
// improvement phase searches on to the end of its pass.
func TestPlanStopsWithinAStepOfTheCancel(t *testing.T) {
	defer func(n int) { stopEvery = n }(stopEvery)
	stopEvery = 32
	s := benchSnap(20, 3)
	for _, tc := range []struct {
		name string
		opt  Options
	}{{"alg1", Options{}}, {"improve", Options{Improve: ImproveOptions{Budget: 150}}}} {
		t.Run(tc.name, func(t *testing.T) {
			_, full, err := workPlan(s, tc.opt, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, alg1, err := workPlan(s, Options{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.opt.Improve.Budget > 0 && full.stop.searches < alg1.stop.searches+100 {
				t.Fatalf("the improvement phase ran %d searches: too few to cancel inside", full.stop.searches-alg1.stop.searches)
			}
			// a cancellation within the last step of the round lets it
			// finish: a decision, no error
			stoppedOrDone := func(what string, at int, dec *Decision, err error) {
				t.Helper()
				if errors.Is(err, context.Canceled) && dec == nil || err == nil && dec != nil {
					return
				}
				t.Fatalf("cancelled at %s %d: decision %v, err %v; want none and context.Canceled, or the finished round", what, at, dec != nil, err)
			}
			for at := 1; tc.opt.Improve.Budget == 0 && at <= full.stop.pairs; at += 9 {
				dec, c, err := workPlan(s, tc.opt, at, 0)
				stoppedOrDone("pair", at, dec, err)
				if over := c.stop.pairs - at; over > stopEvery+s.N {
					t.Fatalf("cancelled at pair %d of %d: %d more pairs visited, want at most %d (the next check)", at, full.stop.pairs, over, stopEvery+s.N)
				}
			}
			for at := alg1.stop.searches + 1; at <= full.stop.searches; at += 5 {
				dec, c, err := workPlan(s, tc.opt, 0, at)
				stoppedOrDone("search", at, dec, err)
				if over := c.stop.searches - at; over >= DefaultMaxGroup {
					t.Fatalf("cancelled at search %d of %d (the improvement phase): %d more searches, want fewer than %d (the rest of a group move)", at, full.stop.searches, over, DefaultMaxGroup)
				}
			}
		})
	}
}
